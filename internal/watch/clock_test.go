package watch

import (
	"testing"
	"time"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
)

// nextWaitOf returns once a wait of d has started, passing over (and
// logging) waits of other durations.
func nextWaitOf(t *testing.T, f *awssim.FakeTimers, d time.Duration) {
	t.Helper()
	for {
		got := f.NextWait(t.Fatal)
		if got == d {
			return
		}
		t.Logf("passing over a wait of %v", got)
	}
}
