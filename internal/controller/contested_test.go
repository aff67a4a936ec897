package controller

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
)

// TestIaCThatRevertsEveryApplyEndsContested (issue 19): an IaC tool whose
// template names the source revision moves the service back after every
// move of the reconciler (terraform apply, a stack update). After
// ContestedAfter such reversions, read from ECS's service deployments, the
// service is left on its source, in state contested, with one audit
// action, and the reconciler writes nothing more, also after a restart. A
// new source revision (the IaC's next change) starts afresh.
func TestIaCThatRevertsEveryApplyEndsContested(t *testing.T) {
	ctx := context.Background()
	clock := awssim.NewFakeClock(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	w := newWorld(t, awssim.Options{Clock: clock, RolloutDelay: time.Minute})
	src := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
	w.createServiceWith(t, "web", src, strategies[0].cfg)
	settle(t, w, clock)
	arn := w.serviceArn(t, "web")
	var actions []Action
	opts := func(o *Options) {
		o.Now, o.ContestedAfter, o.ContestedWindow = clock.Now, 3, 24*time.Hour
		o.OnAction = func(a Action) { actions = append(actions, a) }
	}
	iacApply := func(td string) {
		t.Helper()
		if _, err := w.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{
			Cluster: aws.String(testCluster), Service: aws.String(arn), TaskDefinition: aws.String(td),
		}); err != nil {
			t.Fatal(err)
		}
		settle(t, w, clock)
	}
	c := w.controller(t, opts)
	moves := 0
	for round := range 6 {
		before := len(w.writes("UpdateService"))
		sweep(t, c)
		reconcile(t, c, "web")
		settle(t, w, clock)
		if len(w.writes("UpdateService")) > before {
			moves++
			if got := w.taskDefOf(t, "web"); got == src {
				t.Fatalf("round %d: the reconciler's move did not take", round)
			}
		}
		iacApply(src) // the IaC's template names the source
		clock.Advance(time.Hour)
	}
	if moves != 3 {
		t.Errorf("the reconciler moved the service %d times, want 3 (ContestedAfter) and then never again", moves)
	}
	sweep(t, c)
	reconcile(t, c, "web")
	for _, s := range coverage(c) {
		if s.Service == "web" && s.State != StateContested {
			t.Errorf("web's coverage state %q, want %q", s.State, StateContested)
		}
	}
	n := 0
	for _, a := range actions {
		if a.Kind == ActionServiceContested {
			n++
			if a.Service != arn || a.From != src || a.Twin == "" {
				t.Errorf("contested action %+v: want the service, its source and the twin", a)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d %s actions, want 1", n, ActionServiceContested)
	}

	// A restart remembers nothing: the service deployments say it all.
	writes := len(w.writes("UpdateService"))
	restarted := w.controller(t, opts)
	sweep(t, restarted)
	reconcile(t, restarted, "web")
	if got := len(w.writes("UpdateService")); got != writes {
		t.Errorf("the restarted process moved the contested service (%d UpdateService calls, want %d)", got, writes)
	}

	// The IaC's next change: a new source revision is a new twin.
	next := w.register(t, "web", "nginx:1.28", nil)
	iacApply(next)
	sweep(t, restarted)
	reconcile(t, restarted, "web")
	settle(t, w, clock)
	if got := w.taskDefOf(t, "web"); got == next {
		t.Errorf("after a new source the service stays on it; want it moved to the new source's twin")
	}

	// Out of the window, old reversions no longer count: the new twin is
	// reverted until contested, and a day later the reconciler tries again.
	for round := range 4 {
		iacApply(next)
		sweep(t, restarted)
		reconcile(t, restarted, "web")
		settle(t, w, clock)
		moved := w.taskDefOf(t, "web") != next
		if want := round < 2; moved != want {
			t.Fatalf("reversion %d of the new twin: moved %v, want %v (contested after 3)", round+1, moved, want)
		}
	}
	clock.Advance(25 * time.Hour)
	sweep(t, restarted)
	reconcile(t, restarted, "web")
	settle(t, w, clock)
	if got := w.taskDefOf(t, "web"); got == next {
		t.Errorf("the reversions are older than the window: want the service moved to its twin again")
	}
}
