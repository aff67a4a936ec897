package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/time/rate"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
)

// Issue 21: the first reconcile after a service sweep takes the sweep's
// read of the family's services instead of describing them again; the
// next one, with no sweep in between, describes them itself.
func TestReconcileTakesTheSweepsRead(t *testing.T) {
	w, c, _ := instrumentedWeb(t, []string{"web", "web-2"})
	w.sim.Step() // the rollouts complete
	sweep(t, c)
	before := w.count("DescribeServices")
	reconcile(t, c, "web") // both services on the twin: nothing to write
	if got := w.count("DescribeServices") - before; got != 0 {
		t.Errorf("the reconcile after a sweep made %d DescribeServices calls, want 0 (the sweep's read)", got)
	}
	before = w.count("DescribeServices")
	reconcile(t, c, "web")
	if got := w.count("DescribeServices") - before; got != 1 {
		t.Errorf("a second reconcile made %d DescribeServices calls, want 1: the sweep's read is used once", got)
	}
}

// A return to the source decided on the sweep's read reads the service
// again first: a pipeline that deployed since is not undone.
func TestReturnToSourceReadsTheServiceAgain(t *testing.T) {
	w, c, twin := instrumentedWeb(t, []string{"web"})
	w.sim.Step()
	w.must(t, func(ctx context.Context) error { // opts the family out
		_, err := w.ecs.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(arnOfRevision(twin, 1)),
			Tags: []types.Tag{{Key: aws.String("ecs-sidecar/inject"), Value: aws.String("false")}}})
		return err
	})
	sweep(t, c) // reads web on its twin
	two := w.register(t, "web", "nginx:1.28", nil)
	w.must(t, func(ctx context.Context) error { // the pipeline deploys after the sweep
		_, err := w.sim.ECS().UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(testCluster), Service: aws.String("web"), TaskDefinition: aws.String(two)})
		return err
	})
	if _, err := c.Reconcile(context.Background(), "web"); !errors.Is(err, errChanged) {
		t.Errorf("Reconcile: %v, want the service found changed", err)
	}
	if got := w.taskDefOf(t, "web"); got != two {
		t.Fatalf("web runs %s, want the pipeline's %s", got, two)
	}
	reconcile(t, c, "web") // reads the service afresh: an opted-out source, left alone
	if got := w.taskDefOf(t, "web"); got != two {
		t.Errorf("web runs %s, want the pipeline's %s", got, two)
	}
}

// Deregistrations decided on the sweep's read read the services again
// first: a duplicate twin a service moved to since the sweep is kept.
func TestDeregistrationReadsTheServicesAgain(t *testing.T) {
	w, c, twin := instrumentedWeb(t, []string{"web"})
	w.sim.Step()
	dup := w.duplicate(t, twin)
	sweep(t, c)                                 // reads web on the twin
	w.must(t, func(ctx context.Context) error { // moved to the duplicate since
		_, err := w.sim.ECS().UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(testCluster), Service: aws.String("web"), TaskDefinition: aws.String(dup)})
		return err
	})
	reconcile(t, c, "web")
	active, _ := w.twinsOf(t, "web")
	var all []string
	for _, arns := range active {
		all = append(all, arns...)
	}
	if !slices.Contains(all, dup) {
		t.Errorf("the duplicate %s that web runs was deregistered (active twins %v)", dup, all)
	}
}

// restartedFleet: families fam0..fam5, each opted in by tag with one
// service, instrumented by one controller; returns the world and the
// family names. The next controller is a restart on a covered fleet.
func restartedFleet(t *testing.T, opts ...awssim.Options) (*world, []string) {
	t.Helper()
	w := newWorld(t, opts...)
	var families []string
	for f := range 6 {
		fam := fmt.Sprintf("fam%d", f)
		families = append(families, fam)
		src := w.register(t, fam, "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
		w.createService(t, "svc-"+fam, src, types.DeploymentControllerTypeEcs)
	}
	first := w.controller(t, func(o *Options) { o.MaxInFlight, o.MaxInFlightPerCluster = 100, 100 })
	sweep(t, first)
	drain(t, first)
	w.sim.Step()
	for _, fam := range families {
		w.isTwinOf(t, w.taskDefOf(t, "svc-"+fam), 1)
	}
	return w, families
}

// Issue 21, at the level of Run: a restart on a covered fleet, with
// tag:GetResources, lists the account's revisions once, beside the first
// service sweep; the first reconciles take their families' revisions from
// that listing and their services from the sweep's read; the first family
// sweep takes the same listing.
func TestRestartListsTheAccountOnce(t *testing.T) {
	clock := awssim.NewFakeClock(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	timers := awssim.NewFakeTimers(clock)
	w, families := restartedFleet(t, awssim.Options{Clock: clock})
	ops := []string{"ListTaskDefinitions", "DescribeServices", "ListServices", "GetResources", "DescribeTaskDefinition", "ListTagsForResource"}
	before := map[string]int64{}
	for _, op := range ops {
		before[op] = w.count(op)
	}
	c := w.controller(t, func(o *Options) {
		o.Tagging, o.FamilySweepRate = resourcegroupstaggingapi.NewFromConfig(w.cfg), 10000
		o.ServiceSweep, o.FamilySweep = 5*time.Minute, time.Hour
		o.Now, o.After = clock.Now, timers.After
	})
	runInBackground(t, c)
	// Both sweeps have run once and wait for their intervals.
	timers.NextWait(t.Fatal)
	timers.NextWait(t.Fatal)
	deadline := time.Now().Add(20 * time.Second)
	for {
		reconciled := 0
		for _, fam := range families {
			if _, ok := c.st.family(fam); ok {
				reconciled++
			}
		}
		if reconciled == len(families) && c.QueueLen() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d families reconciled within 20s", reconciled, len(families))
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := map[string]int64{}
	for _, op := range ops {
		got[op] = w.count(op) - before[op]
	}
	// One page lists the 12 revisions; the sweep describes the 6 services
	// in one call; GetResources: one page per opt-in tag key; each twin
	// (the prefetch) and each source (its reconcile) is described once.
	want := map[string]int64{"ListTaskDefinitions": 1, "DescribeServices": 1, "ListServices": 1, "GetResources": 2,
		"DescribeTaskDefinition": 12, "ListTagsForResource": 0}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("calls of the restart (-got +want):\n%s", diff)
	}
	for _, s := range coverage(c) {
		if s.State != StateCovered {
			t.Errorf("after the restart %s is %s, want covered", s.Service, s.State)
		}
	}
}

// The listing a family sweep kept serves a family's first reconcile only
// while nothing outside said the family changed: a family queued by an
// event, during the listing or after it, lists its revisions itself and
// sees a revision registered meanwhile.
func TestAnEventMakesAReconcileListAfresh(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	for f := range 3 {
		w.register(t, fmt.Sprintf("fam%d", f), "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
	}
	c := w.controller(t, func(o *Options) {
		o.Tagging, o.FamilySweepRate = resourcegroupstaggingapi.NewFromConfig(w.cfg), 10000
	})
	var mu sync.Mutex
	var during string
	w.sim.AddGate(func(_ context.Context, r awssim.Request) error {
		mu.Lock()
		first := r.Operation == "ListTaskDefinitions" && during == ""
		if first {
			during = "registering"
		}
		mu.Unlock()
		if first {
			// An event of fam1 arrives while the sweep lists.
			arn := w.register(t, "fam1", "nginx:1.28", nil)
			mu.Lock()
			during = arn
			mu.Unlock()
			c.Enqueue("fam1")
		}
		return nil
	})
	sweep(t, c)
	if err := c.SweepFamilies(ctx); err != nil {
		t.Fatal(err)
	}
	after := w.register(t, "fam2", "nginx:1.28", nil)
	c.Enqueue("fam2") // an event after the listing
	lists := w.count("ListTaskDefinitions")
	got := drain(t, c)
	slices.Sort(got)
	if want := []string{"fam0", "fam1", "fam2"}; !slices.Equal(got, want) {
		t.Fatalf("reconciled %v, want %v", got, want)
	}
	if n := w.count("ListTaskDefinitions") - lists; n != 2 {
		t.Errorf("the reconciles made %d ListTaskDefinitions calls, want 2 (fam1 and fam2; fam0 takes the sweep's listing)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	for fam, newest := range map[string]string{"fam1": during, "fam2": after} {
		st, _ := c.st.family(fam)
		if st == nil || st.newestSource != newest {
			t.Errorf("%s: the reconcile found %+v as the newest source, want %s", fam, st, newest)
		}
	}
}

// The restart's prefetch (Run sets Controller.prefetch): the first service
// sweep describes the revisions the services run in the background, each
// once, and a family's first reconcile that takes the account listing counts
// their tags as its own read; one that an event queued reads them again.
func TestPrefetchDescribesWhatTheServicesRun(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	for f := range 3 {
		fam := fmt.Sprintf("fam%d", f)
		src := w.register(t, fam, "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
		w.createService(t, "svc-"+fam, src, types.DeploymentControllerTypeEcs)
	}
	c := w.controller(t, func(o *Options) {
		o.Tagging, o.MaxInFlight, o.MaxInFlightPerCluster = resourcegroupstaggingapi.NewFromConfig(w.cfg), 100, 100
	})
	c.prefetch = make(chan struct{}, 2) // as Run does
	l, err := c.listAccount(ctx, rate.NewLimiter(rate.Inf, 1))
	if err != nil {
		t.Fatal(err)
	}
	c.keepListing(l)
	sweep(t, c)
	c.prefetchWG.Wait()
	if n := w.count("DescribeTaskDefinition"); n != 3 {
		t.Fatalf("the first sweep's prefetch described %d revisions, want the 3 the services run", n)
	}
	c.Enqueue("fam0") // an event: fam0 lists, and reads its source's tags, afresh
	tags := w.count("ListTagsForResource")
	drain(t, c)
	if n := w.count("DescribeTaskDefinition"); n != 3 {
		t.Errorf("%d DescribeTaskDefinition calls in all, want 3: each revision once", n)
	}
	if n := w.count("ListTagsForResource") - tags; n != 1 {
		t.Errorf("the reconciles made %d ListTagsForResource calls, want 1 (fam0's)", n)
	}
	for f := range 3 {
		w.isTwinOf(t, w.taskDefOf(t, fmt.Sprintf("svc-fam%d", f)), 1)
	}
}

// Callers that want the same uncached revision at once share one
// DescribeTaskDefinition.
func TestConcurrentReadsOfARevisionShareADescribe(t *testing.T) {
	w := newWorld(t)
	src := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
	c := w.controller(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	w.sim.AddGate(func(_ context.Context, r awssim.Request) error {
		if r.Operation == "DescribeTaskDefinition" {
			once.Do(func() { close(entered); <-release })
		}
		return nil
	})
	errs := make(chan error, 2)
	read := func() {
		_, _, err := c.revision(context.Background(), src)
		errs <- err
	}
	go read()
	<-entered // the first describe is under way
	go read()
	// The second caller either waits for the first describe or makes its
	// own call; the count below tells which.
	time.Sleep(100 * time.Millisecond)
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := w.count("DescribeTaskDefinition"); n != 1 {
		t.Errorf("two concurrent reads of one revision made %d DescribeTaskDefinition calls, want 1", n)
	}
}

// The restart's listing stands for the per-family listings of the first
// reconciles, which wait for it: it is not paced at the family sweep's rate
// (here one call in 100 s; the listing has two pages).
func TestRestartListingIsNotPacedLikeTheFamilySweep(t *testing.T) {
	w := newWorld(t)
	src := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
	for range 100 {
		w.register(t, "web", "nginx:1.27", nil)
	}
	w.createService(t, "web", src, types.DeploymentControllerTypeEcs)
	c := w.controller(t, func(o *Options) {
		o.Tagging, o.FamilySweepRate = resourcegroupstaggingapi.NewFromConfig(w.cfg), 0.01
	})
	runInBackground(t, c)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, ok := c.st.family("web"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("web not reconciled within 20s: its reconcile waited for a listing paced at the family sweep's rate")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runInBackground runs c until the test ends.
func runInBackground(t *testing.T, c *Controller) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}
