package awssim

import (
	"sync"
	"time"
)

// FakeTimers is a time.After on a FakeClock, for the After options of the
// controller and the consumer: a wait ends when Advance moves the clock to
// its end, never on the wall clock. Each wait is reported as it starts, so
// that a test knows a loop waits (NextWait).
type FakeTimers struct {
	clock *FakeClock
	waits chan time.Duration

	mu      sync.Mutex
	pending []fakeTimer
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

// NewFakeTimers returns timers on clock.
func NewFakeTimers(clock *FakeClock) *FakeTimers {
	return &FakeTimers{clock: clock, waits: make(chan time.Duration, 1000)}
}

// After returns a channel that receives once the clock has moved d on.
func (f *FakeTimers) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	f.mu.Lock()
	f.pending = append(f.pending, fakeTimer{f.clock.Now().Add(d), ch})
	f.mu.Unlock()
	f.waits <- d
	return ch
}

// Advance moves the clock on by d and ends the waits due by then.
func (f *FakeTimers) Advance(d time.Duration) {
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

// NextWait returns the duration of the next wait to start; fatal (a
// test's Fatal) is called if none starts within a minute, a guard against
// a hang, not a timing.
func (f *FakeTimers) NextWait(fatal func(args ...any)) time.Duration {
	select {
	case d := <-f.waits:
		return d
	case <-time.After(time.Minute):
		fatal("no wait started within a minute")
		return 0
	}
}
