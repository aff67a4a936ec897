package watch

import (
	"sync"
	"testing"
	"time"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
)

// fakeTimers is ConsumerOptions.After on a fake clock: a wait ends when
// Advance moves the clock to its end, never on the wall clock. Each wait is
// reported on waits as it starts, so that a test knows a loop waits.
type fakeTimers struct {
	clock *awssim.FakeClock
	waits chan time.Duration

	mu      sync.Mutex
	pending []fakeTimer
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeTimers(clock *awssim.FakeClock) *fakeTimers {
	return &fakeTimers{clock: clock, waits: make(chan time.Duration, 1000)}
}

// After returns a channel that receives once the clock has moved d on.
func (f *fakeTimers) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	f.mu.Lock()
	f.pending = append(f.pending, fakeTimer{f.clock.Now().Add(d), ch})
	f.mu.Unlock()
	f.waits <- d
	return ch
}

// Advance moves the clock on by d and ends the waits due by then.
func (f *fakeTimers) Advance(d time.Duration) {
	f.clock.Advance(d)
	now := f.clock.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	keep := f.pending[:0]
	for _, p := range f.pending {
		if p.at.After(now) {
			keep = append(keep, p)
		} else {
			p.ch <- now
		}
	}
	clear(f.pending[len(keep):])
	f.pending = keep
}

// nextWait returns the duration of the next wait to start. The minute is a
// guard against a hang, not a timing.
func (f *fakeTimers) nextWait(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-f.waits:
		return d
	case <-time.After(time.Minute):
		t.Fatal("no wait started within a minute")
		return 0
	}
}

// nextWaitOf returns once a wait of d has started, passing over (and
// logging) waits of other durations.
func (f *fakeTimers) nextWaitOf(t *testing.T, d time.Duration) {
	t.Helper()
	for {
		got := f.nextWait(t)
		if got == d {
			return
		}
		t.Logf("passing over a wait of %v", got)
	}
}
