package controller

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/ecsarn"
	"github.com/ecs-sidecar/reconciler/internal/patch"
	"github.com/ecs-sidecar/reconciler/internal/policy"
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

// rolloutWorld is a simulated account on a fake clock, with rollouts that
// take a minute, and n services web-0… of the opted-in family "web" whose
// own first deployments have completed.
func rolloutWorld(t *testing.T, n int) (*awssim.FakeClock, *world) {
	t.Helper()
	clock := awssim.NewFakeClock(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	w := newWorld(t, awssim.Options{Clock: clock, RolloutDelay: time.Minute})
	src := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
	for i := range n {
		w.createService(t, fmt.Sprintf("web-%d", i), src, types.DeploymentControllerTypeEcs)
	}
	clock.Advance(2 * time.Minute)
	w.sim.Step()
	return clock, w
}

func TestPacingNeverExceedsTheLimit(t *testing.T) {
	clock, w := rolloutWorld(t, 5)
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
	clock, w := rolloutWorld(t, 3)
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

func TestOptOutRestoresADeregisteredSource(t *testing.T) {
	w := newWorld(t)
	src := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true", "team": "payments"})
	w.createService(t, "web", src, types.DeploymentControllerTypeEcs)
	w.createService(t, "web-canary", src, types.DeploymentControllerTypeEcs)
	c := w.controller(t)
	sweep(t, c)
	reconcile(t, c, "web")
	twin := w.taskDefOf(t, "web")
	w.isTwinOf(t, twin, 1)
	registered := len(w.writes("RegisterTaskDefinition"))
	// The pipeline deregisters the old source, then registers a revision
	// that opts the family out (tags on twins never decide).
	w.must(t, func(ctx context.Context) error {
		_, err := w.ecs.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(src)})
		return err
	})
	w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "false"})
	fresh := w.controller(t)
	sweep(t, fresh)
	reconcile(t, fresh, "web")
	got := w.taskDefOf(t, "web")
	if got == twin || got == src {
		t.Fatalf("after opt-out the service runs %s; want a re-registered copy of the deregistered source", got)
	}
	// Both services return to one restored copy (the soak found one
	// registration per service).
	if canary := w.taskDefOf(t, "web-canary"); canary != got {
		t.Errorf("web runs %s, web-canary %s: want the same restored source", got, canary)
	}
	if n := len(w.writes("RegisterTaskDefinition")) - registered; n != 2 { // the pipeline's opt-out revision and one restore
		t.Errorf("%d registrations after the opt-out, want 2 (the pipeline's and one restore)", n)
	}
	out, err := w.ecs.DescribeTaskDefinition(context.Background(), &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String(got), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	orig, err := w.ecs.DescribeTaskDefinition(context.Background(), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(src)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(out.TaskDefinition.ContainerDefinitions, orig.TaskDefinition.ContainerDefinitions, cmpopts.IgnoreUnexported(types.ContainerDefinition{})); diff != "" {
		t.Errorf("restored source differs from the original (-got +want):\n%s", diff)
	}
	if class := patch.Classify(out.TaskDefinition, out.Tags, nil, patch.Options{}); class.Kind != patch.KindPlain {
		t.Errorf("the restored source is classified %s, want plain", class.Kind)
	}
}

func TestRemoveModeRestoresTheServices(t *testing.T) {
	w := newWorld(t)
	web := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
	api := w.register(t, "api", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
	w.createService(t, "web", web, types.DeploymentControllerTypeEcs)
	w.createService(t, "api", api, types.DeploymentControllerTypeEcs)
	before := map[string]string{"web": w.taskDefOf(t, "web"), "api": w.taskDefOf(t, "api")}
	c := w.controller(t)
	sweep(t, c)
	drain(t, c)
	for name := range before {
		if w.taskDefOf(t, name) == before[name] {
			t.Fatalf("%s was not instrumented", name)
		}
	}
	remover := w.controller(t, func(o *Options) { o.Mode = policy.ModeRemove; o.RevertOnOptOut = false })
	sweep(t, remover)
	drain(t, remover)
	for name, want := range before {
		if got := w.taskDefOf(t, name); got != want {
			t.Errorf("after remove, %s runs %s, want %s as before install", name, got, want)
		}
	}
}

func TestAuditModePlansEveryAction(t *testing.T) {
	w := newWorld(t)
	src := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
	w.createService(t, "web", src, types.DeploymentControllerTypeEcs)
	var actions []Action
	c := w.controller(t, func(o *Options) {
		o.Mode = policy.ModeAudit
		o.OnAction = func(a Action) { actions = append(actions, a) }
	})
	sweep(t, c)
	reconcile(t, c, "web")
	want := []Action{
		{Kind: ActionRegisterTwin, Planned: true, Family: "web", Source: src},
		{Kind: ActionUpdateService, Planned: true, Family: "web", From: src, To: plannedTwinArn(src)},
	}
	if diff := cmp.Diff(actions, want, cmpopts.IgnoreFields(Action{}, "Spec", "Containers", "Cluster", "Service")); diff != "" {
		t.Errorf("planned actions (-got +want):\n%s", diff)
	}
	for _, e := range w.sim.Journal() {
		if e.Call != nil && e.Call.Operation != "CreateCluster" && e.Call.Operation != "RegisterTaskDefinition" && e.Call.Operation != "CreateService" {
			t.Errorf("audit mode called %s", e.Call.Operation)
		}
	}
	if got := len(w.writes("RegisterTaskDefinition")); got != 1 {
		t.Errorf("audit mode registered %d task definitions beyond the test's own", got-1)
	}
}

// A long-running controller cached the source as ACTIVE; it was
// deregistered since. Opting out still returns the service, to a restored copy.
func TestOptOutAfterTheCachedSourceWasDeregistered(t *testing.T) {
	w := newWorld(t)
	src := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
	w.createService(t, "web", src, types.DeploymentControllerTypeEcs)
	c := w.controller(t)
	sweep(t, c)
	reconcile(t, c, "web")
	twin := w.taskDefOf(t, "web")
	w.must(t, func(ctx context.Context) error {
		_, err := w.ecs.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(src)})
		return err
	})
	w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "false"})
	sweep(t, c)
	reconcile(t, c, "web")
	if got := w.taskDefOf(t, "web"); got == twin || got == src {
		t.Fatalf("the service runs %s; want a restored copy of its source", got)
	}
}

func TestProfileUpgradeMovesEveryServiceOnce(t *testing.T) {
	w := newWorld(t)
	src := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
	for i := range 3 {
		w.createService(t, fmt.Sprintf("web-%d", i), src, types.DeploymentControllerTypeEcs)
	}
	image := "lacework/datacollector:7.0-sidecar"
	profile := func(string) (patch.Profile, bool) {
		return patch.Profile{TokenSecretArn: tokenArn, SidecarImage: image}.WithDefaults(), true
	}
	c := w.controller(t, func(o *Options) { o.Profile = profile; o.MaxInFlightPerCluster = 5 })
	sweep(t, c)
	drain(t, c)
	w.sim.Step()
	first := len(w.writes("UpdateService"))
	if first != 3 {
		t.Fatalf("install moved %d services, want 3", first)
	}
	// A new sidecar image: a new spec. A restarted controller with the new
	// profile rebuilds the twin from its source and moves each service once.
	image = "lacework/datacollector:7.1-sidecar"
	upgraded := w.controller(t, func(o *Options) { o.Profile = profile; o.MaxInFlightPerCluster = 5 })
	for range 3 {
		sweep(t, upgraded)
		drain(t, upgraded)
		w.sim.Step()
	}
	if got := len(w.writes("UpdateService")) - first; got != 3 {
		t.Errorf("the upgrade made %d service updates, want exactly 3", got)
	}
	if got := len(w.writes("RegisterTaskDefinition")); got != 3 { // source, old twin, new twin
		t.Errorf("registrations = %d, want 3", got)
	}
	for i := range 3 {
		out, err := w.ecs.DescribeTaskDefinition(context.Background(), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(w.taskDefOf(t, fmt.Sprintf("web-%d", i)))})
		if err != nil {
			t.Fatal(err)
		}
		if img := aws.ToString(out.TaskDefinition.ContainerDefinitions[0].Image); img != image {
			t.Errorf("web-%d's sidecar image is %s, want %s", i, img, image)
		}
	}
}

func TestCleanUpDeregistersUnusedTwinsOfDeregisteredSources(t *testing.T) {
	w := newWorld(t)
	one := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
	w.createService(t, "web", one, types.DeploymentControllerTypeEcs)
	c := w.controller(t, func(o *Options) { o.DeregisterUnusedTwins = true })
	sweep(t, c)
	reconcile(t, c, "web") // twin web:2 of web:1
	two := w.register(t, "web", "nginx:1.28", nil)
	w.must(t, func(ctx context.Context) error {
		_, err := w.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(testCluster), Service: aws.String("web"), TaskDefinition: aws.String(two)})
		return err
	})
	w.sim.Step()
	sweep(t, c)
	reconcile(t, c, "web") // twin web:4 of web:3; the service moves to it
	w.sim.Step()
	// The pipeline deregisters web:1: its twin web:2 is now unused.
	w.must(t, func(ctx context.Context) error {
		_, err := w.ecs.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(one)})
		return err
	})
	sweep(t, c)
	reconcile(t, c, "web")
	deregs := w.writes("DeregisterTaskDefinition")
	if len(deregs) != 2 {
		t.Fatalf("deregistrations = %d, want 2 (the pipeline's and the unused twin)", len(deregs))
	}
	got := aws.ToString(deregs[1].Input.(*ecs.DeregisterTaskDefinitionInput).TaskDefinition)
	if ecsarn.Family(got) != "web" || revisionNumber(got) != 2 {
		t.Errorf("deregistered %s, want the twin web:2", got)
	}
}

// TestFailureMarkThatFailsOnceIsWrittenByTheRetry: a TagResource that fails
// once (a 500) must not leave the failure believed in memory only: the
// retry writes the mark, and the service goes back to its source.
func TestFailureMarkThatFailsOnceIsWrittenByTheRetry(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rollback bool // the circuit breaker's rollback: ECS returns the service itself
	}{{"failed, no rollback", false}, {"rolled back", true}} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.sim.SetRollout(0, awssim.FailImages(regexp.MustCompile(`datacollector`)))
			var tagCalls atomic.Int32
			w.sim.AddGate(func(_ context.Context, r awssim.Request) error {
				if r.Operation == "TagResource" && tagCalls.Add(1) == 1 {
					return errors.New("injected: internal failure")
				}
				return nil
			})
			src := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
			if tc.rollback {
				w.createService(t, "web", src, types.DeploymentControllerTypeEcs)
			} else {
				w.createServiceBreaker(t, "web", src, types.DeploymentControllerTypeEcs, true, false)
			}
			c := w.controller(t)
			sweep(t, c)
			reconcile(t, c, "web")
			moves := w.writes("UpdateService")
			if len(moves) != 1 {
				t.Fatalf("%d UpdateService calls, want 1", len(moves))
			}
			twin := aws.ToString(moves[0].Input.(*ecs.UpdateServiceInput).TaskDefinition)
			w.isTwinOf(t, twin, 1)
			w.sim.Step() // the rollout fails
			if _, err := c.Reconcile(context.Background(), "web"); err == nil {
				t.Fatal("the reconcile whose TagResource failed reported no error")
			}
			for range 3 {
				sweep(t, c)
				if _, err := c.Reconcile(context.Background(), "web"); err != nil {
					t.Fatalf("retry: %v", err)
				}
				w.sim.Step()
			}
			out, err := w.ecs.ListTagsForResource(context.Background(), &ecs.ListTagsForResourceInput{ResourceArn: aws.String(twin)})
			if err != nil {
				t.Fatal(err)
			}
			if v, ok := tagOf(out.Tags, "ecs-sidecar/failed"); !ok || v == "" {
				t.Errorf("the twin has no failed mark in AWS after the retry (tags %v)", out.Tags)
			}
			if got := w.taskDefOf(t, "web"); got != src {
				t.Errorf("the service runs %s, want its source %s", got, src)
			}
			if n := len(w.writes("UpdateService")); n > 2 {
				t.Errorf("%d UpdateService calls, want the move and at most one return", n)
			}
		})
	}
}

func tagOf(tags []types.Tag, key string) (string, bool) {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value), true
		}
	}
	return "", false
}

// The ramp (Options.RampStart): rollouts in flight start at RampStart and
// gain a place for each one that completes, up to MaxInFlight; the first
// failure brings the window back to RampStart.
func TestRampWidensOnSuccessesAndBrakesOnAFailure(t *testing.T) {
	clock, w := rolloutWorld(t, 9)
	bad := w.register(t, "bad", "broken:1", map[string]string{"ecs-sidecar/inject": "true"})
	w.createService(t, "bad-0", bad, types.DeploymentControllerTypeEcs)
	clock.Advance(2 * time.Minute) // its own first deployment completes
	w.sim.Step()
	// From now on, a revision with the broken image fails to start: the
	// twin of "bad" does (its source's deployment has completed).
	w.sim.SetRollout(time.Minute, awssim.FailImages(regexp.MustCompile(`^broken`)))
	c := w.controller(t, func(o *Options) {
		o.MaxInFlight, o.MaxInFlightPerCluster, o.RampStart, o.Now = 6, 6, 1, clock.Now
	})
	sweep(t, c)
	var inFlight []int
	next := func() {
		clock.Advance(2 * time.Minute)
		w.sim.Step()
		sweep(t, c)
	}
	for round := 0; len(w.writes("UpdateService")) < 9; round++ {
		if round > 8 {
			t.Fatalf("after %d rounds only %d of 9 services moved; in flight by round %v", round, len(w.writes("UpdateService")), inFlight)
		}
		reconcile(t, c, "web")
		inFlight = append(inFlight, simInFlight(w))
		next()
	}
	// 1; its success makes 2; theirs 4; the last two (the ceiling, 6, is
	// not needed).
	if d := cmp.Diff(inFlight, []int{1, 2, 4, 2}); d != "" {
		t.Errorf("rollouts in flight by round (-got +want):\n%s", d)
	}
	reconcile(t, c, "web") // the last two completed: 6, the ceiling
	if got := c.st.window; got != 6 {
		t.Errorf("window after 9 completed rollouts = %d, want the ceiling 6", got)
	}
	reconcile(t, c, "bad")
	if got := simInFlight(w); got != 1 {
		t.Fatalf("the bad family's service is not rolling out (%d in flight)", got)
	}
	next()
	reconcile(t, c, "bad") // ECS's circuit breaker failed it: marked, braked
	if n := len(w.writes("TagResource")); n != 1 {
		t.Errorf("failure marks = %d, want 1", n)
	}
	if got := c.st.window; got != 1 {
		t.Errorf("window after a failed rollout = %d, want RampStart 1", got)
	}
}

// Without RampStart the window is MaxInFlight from the start.
func TestNoRampAdmitsUpToMaxInFlight(t *testing.T) {
	st := newState()
	p := pacing{maxInFlight: 5, perCluster: 5}
	for i := range 6 {
		s := &service{arn: fmt.Sprintf("arn:aws:ecs:us-east-1:1:service/c/s%d", i), cluster: "c"}
		ok, why, _ := st.admit(s, nil, nil, p, "twin")
		if want := i < 5; ok != want {
			t.Fatalf("admission %d: %v (%s), want %v", i+1, ok, why, want)
		}
		if i == 5 && why != "max_in_flight" {
			t.Errorf("refused with %q, want max_in_flight", why)
		}
	}
	if was, now := st.rampDone(p, false); was != 5 || now != 5 {
		t.Errorf("a failure without a ramp moved the window %d -> %d", was, now)
	}
}

// A family whose move waits for a place is not read again while every place
// is taken, and the end of a rollout queues as many waiting families as it
// freed places for, first come first. make bench's first install made 26
// service-read calls a service because every deferred family was
// reconciled (and its service read again before the refusal) each
// RolloutPoll for as long as the window stayed full.
func TestWaitingFamiliesAreQueuedWhenAPlaceFrees(t *testing.T) {
	clock := awssim.NewFakeClock(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	w := newWorld(t, awssim.Options{Clock: clock, RolloutDelay: time.Minute})
	for i := range 6 {
		src := w.register(t, fmt.Sprintf("f%d", i), "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
		w.createService(t, fmt.Sprintf("f%d-0", i), src, types.DeploymentControllerTypeEcs)
	}
	clock.Advance(2 * time.Minute) // the sources' own deployments complete
	w.sim.Step()
	c := w.controller(t, func(o *Options) {
		o.MaxInFlight, o.MaxInFlightPerCluster, o.Canary, o.Now = 2, 2, false, clock.Now
	})
	sweep(t, c)
	before := w.count("DescribeServices")
	if got := drain(t, c); len(got) != 6 {
		t.Fatalf("first reconciles: %v, want the 6 families", got)
	}
	moved := w.writes("UpdateService")
	if len(moved) != 2 {
		t.Fatalf("%d services moved, want 2 (MaxInFlight)", len(moved))
	}
	// The two moves each read their service again before UpdateService; the
	// four that found no place read nothing (the sweep's read decided).
	if n := w.count("DescribeServices") - before; n != 2 {
		t.Errorf("DescribeServices during the first reconciles = %d, want 2 (one before each move)", n)
	}
	if c.QueueLen() != 0 {
		t.Fatalf("%d families queued while both places are taken", c.QueueLen())
	}
	for _, f := range []string{"f2", "f3", "f4", "f5"} {
		if !c.st.waitingFor(f) {
			t.Errorf("%s does not wait for a place", f)
		}
	}
	// Both rollouts complete; their families' next reconciles (a deployment
	// event, or the poll) see it and queue two waiting families.
	clock.Advance(2 * time.Minute)
	w.sim.Step()
	reconcile(t, c, "f0")
	reconcile(t, c, "f1")
	if got := drain(t, c); !slices.Equal(got, []string{"f2", "f3"}) {
		t.Errorf("queued after two rollouts ended: %v, want [f2 f3] (the first to wait)", got)
	}
	if n := len(w.writes("UpdateService")); n != 4 {
		t.Errorf("%d services moved, want 4", n)
	}
	if c.st.waitingFor("f2") || !c.st.waitingFor("f4") {
		t.Errorf("waiting after the second round: f2 %v, f4 %v; want false, true", c.st.waitingFor("f2"), c.st.waitingFor("f4"))
	}
}
