package controller

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
)

// inFlight counts the services of the simulator whose newest deployment
// is still rolling out.
func simInFlight(w *world) int {
	n := 0
	for _, c := range w.sim.State().Clusters {
		for _, s := range c.Services {
			for _, d := range s.Deployments {
				if d.Status == "PRIMARY" && d.RolloutState == string(types.DeploymentRolloutStateInProgress) {
					n++
				}
			}
		}
	}
	return n
}

func TestPacingNeverExceedsTheLimit(t *testing.T) {
	clock := awssim.NewFakeClock(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	w := newWorld(t, awssim.Options{Clock: clock, RolloutDelay: time.Minute})
	src := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
	for i := range 5 {
		w.createService(t, fmt.Sprintf("web-%d", i), src, types.DeploymentControllerTypeEcs)
	}
	clock.Advance(2 * time.Minute) // the services' own first deployments complete
	w.sim.Step()
	c := w.controller(t, func(o *Options) { o.MaxInFlight = 2; o.MaxInFlightPerCluster = 2; o.Now = clock.Now })
	sweep(t, c)
	for round := 0; ; round++ {
		reconcile(t, c, "web")
		if got := simInFlight(w); got > 2 {
			t.Fatalf("round %d: %d rollouts in flight, want at most 2", round, got)
		}
		if updates := len(w.writes("UpdateService")); updates == 5 {
			break
		} else if round > 10 {
			t.Fatalf("after %d rounds only %d of 5 services moved", round, updates)
		}
		clock.Advance(2 * time.Minute)
		w.sim.Step()
		sweep(t, c)
	}
	clock.Advance(2 * time.Minute)
	w.sim.Step()
	for i := range 5 {
		w.isTwinOf(t, w.taskDefOf(t, fmt.Sprintf("web-%d", i)), 1)
	}
}

func TestCanaryCompletesBeforeTheOthersMove(t *testing.T) {
	clock := awssim.NewFakeClock(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	w := newWorld(t, awssim.Options{Clock: clock, RolloutDelay: time.Minute})
	src := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
	for i := range 3 {
		w.createService(t, fmt.Sprintf("web-%d", i), src, types.DeploymentControllerTypeEcs)
	}
	clock.Advance(2 * time.Minute)
	w.sim.Step()
	c := w.controller(t, func(o *Options) { o.Canary = true; o.MaxInFlightPerCluster = 5; o.Now = clock.Now })
	sweep(t, c)
	reconcile(t, c, "web")
	reconcile(t, c, "web") // the canary is still rolling out: nothing more moves
	if n := len(w.writes("UpdateService")); n != 1 {
		t.Fatalf("with the canary in flight, %d services moved, want 1", n)
	}
	clock.Advance(2 * time.Minute)
	w.sim.Step()
	sweep(t, c)
	reconcile(t, c, "web")
	if n := len(w.writes("UpdateService")); n != 3 {
		t.Fatalf("after the canary completed, %d services moved, want 3", n)
	}
}

// Without the circuit breaker a failing rollout never reports FAILED: the
// deadline ends it, marks the twin and returns the service to its source,
// also when the process that started the rollout is gone.
func TestDeadlineWithoutCircuitBreakerSurvivesARestart(t *testing.T) {
	clock := awssim.NewFakeClock(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	w := newWorld(t, awssim.Options{Clock: clock, RolloutDelay: time.Minute})
	w.sim.SetRollout(time.Minute, awssim.FailImages(regexp.MustCompile(`datacollector`)))
	src := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
	w.createServiceCB(t, "web", src, types.DeploymentControllerTypeEcs, false)
	clock.Advance(2 * time.Minute)
	w.sim.Step()
	first := w.controller(t, func(o *Options) { o.RolloutDeadline = 10 * time.Minute; o.Now = clock.Now })
	sweep(t, first)
	reconcile(t, first, "web")
	if n := len(w.writes("UpdateService")); n != 1 {
		t.Fatalf("UpdateService calls = %d, want 1", n)
	}
	clock.Advance(5 * time.Minute)
	w.sim.Step()
	sweep(t, first)
	reconcile(t, first, "web")
	if n := len(w.writes("TagResource")); n != 0 {
		t.Fatalf("marked failed before the deadline")
	}
	// The process dies; a new one starts after the deadline.
	clock.Advance(10 * time.Minute)
	w.sim.Step()
	second := w.controller(t, func(o *Options) { o.RolloutDeadline = 10 * time.Minute; o.Now = clock.Now })
	sweep(t, second)
	reconcile(t, second, "web")
	tags := w.writes("TagResource")
	if len(tags) != 1 {
		t.Fatalf("TagResource calls = %d, want the one deadline mark", len(tags))
	}
	in := tags[0].Input.(*ecs.TagResourceInput)
	if aws.ToString(in.Tags[0].Key) != "ecs-sidecar/failed" || aws.ToString(in.Tags[0].Value) != FailedDeadline {
		t.Errorf("mark = %s=%s, want ecs-sidecar/failed=%s", aws.ToString(in.Tags[0].Key), aws.ToString(in.Tags[0].Value), FailedDeadline)
	}
	if got := w.taskDefOf(t, "web"); got != src {
		t.Errorf("after the deadline the service runs %s, want its source %s", got, src)
	}
	// Not retried.
	sweep(t, second)
	reconcile(t, second, "web")
	if n := len(w.writes("UpdateService")); n != 2 {
		t.Errorf("UpdateService calls = %d, want 2 (the move and the return)", n)
	}
}

// A later good revision of a family whose twin failed goes through.
func TestLaterGoodRevisionAfterAFailure(t *testing.T) {
	w := newWorld(t)
	w.sim.SetRollout(0, awssim.FailImages(regexp.MustCompile(`broken`)))
	src := w.register(t, "web", "broken:1", map[string]string{"ecs-sidecar/inject": "true"})
	w.createService(t, "web", src, types.DeploymentControllerTypeEcs)
	c := w.controller(t)
	sweep(t, c)
	reconcile(t, c, "web")
	w.sim.Step()
	sweep(t, c)
	reconcile(t, c, "web")
	if n := len(w.writes("TagResource")); n != 1 {
		t.Fatalf("failed marks = %d, want 1", n)
	}
	// The pipeline fixes the image and deploys it.
	fixed := w.register(t, "web", "fixed:2", nil)
	w.must(t, func(ctx context.Context) error {
		_, err := w.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(testCluster), Service: aws.String("web"), TaskDefinition: aws.String(fixed)})
		return err
	})
	w.sim.Step()
	sweep(t, c)
	drain(t, c)
	w.sim.Step()
	w.isTwinOf(t, w.taskDefOf(t, "web"), 3)
}
