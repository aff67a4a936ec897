package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/lease"
	"github.com/ecs-sidecar/reconciler/internal/moto"
)

// leaseGate is the wiring's adapter (cmd/reconciler) from *lease.Manager to
// Leases, here for the tests.
type leaseGate struct{ m *lease.Manager }

func (g leaseGate) ShardFor(family string) string { return g.m.ShardFor(family) }

func (g leaseGate) Owns(family string) (Fence, bool) {
	f, ok := g.m.Owns(family)
	return Fence(f), ok
}

func (g leaseGate) Check(ctx context.Context, f Fence) error {
	err := g.m.Check(ctx, lease.Fence(f))
	if errors.Is(err, lease.ErrLeaseLost) {
		return fmt.Errorf("%w: %w", ErrLeaseLost, err)
	}
	return err
}

// held is what the manager holds, as the controller's fences.
func held(m *lease.Manager) []Fence {
	var out []Fence
	for _, f := range m.Held() {
		out = append(out, Fence(f))
	}
	return out
}

// leaseTable is a lease table in a moto_server of the test's own.
type leaseTable struct {
	client *dynamodb.Client
	name   string
}

func newLeaseTable(t *testing.T) *leaseTable {
	t.Helper()
	client := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(moto.Start(t)),
	})
	lt := &leaseTable{client: client, name: "ecs-sidecar-leases"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := client.CreateTable(ctx, lease.CreateTableInput(lt.name)); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	return lt
}

const testShards = 8

func (lt *leaseTable) manager(t *testing.T, owner string, clock func() time.Time) *lease.Manager {
	t.Helper()
	m, err := lease.New(lease.Options{Client: lt.client, Table: lt.name, Owner: owner, Shards: testShards, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func leaseRound(t *testing.T, m *lease.Manager) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.Round(ctx); err != nil {
		t.Fatalf("%s: Round: %v", m.Owner(), err)
	}
}

// balance runs rounds of every manager until each shard has one holder and
// every manager holds its share (on a clock that does not move, so that no
// lease runs out meanwhile).
func balance(t *testing.T, ms ...*lease.Manager) {
	t.Helper()
	share := (testShards + len(ms) - 1) / len(ms)
	for range 10 {
		for _, m := range ms {
			leaseRound(t, m)
		}
		total, ok := 0, true
		for _, m := range ms {
			n := len(m.Held())
			total += n
			ok = ok && n >= share-1
		}
		if ok && total == testShards {
			return
		}
	}
	t.Fatal("the managers did not share the shards in 10 rounds")
}

// Three replicas of the controller, each with its lease manager on one
// table, run at once against one account: every opted-in family converges
// and each source gets exactly one twin (no duplicate registration in the
// simulator's journal), each family written by the replica that owns it.
func TestReplicasWithLeasesWriteEachFamilyOnce(t *testing.T) {
	w := newWorld(t)
	lt := newLeaseTable(t)
	const families = 24
	var names []string
	for i := range families {
		f := fmt.Sprintf("app-%02d", i)
		names = append(names, f)
		src := w.register(t, f, "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
		w.createService(t, f, src, types.DeploymentControllerTypeEcs)
	}
	clock := awssim.NewFakeClock(time.UnixMilli(1_800_000_000_000))
	var managers []*lease.Manager
	for i := range 3 {
		managers = append(managers, lt.manager(t, fmt.Sprintf("replica-%d", i), clock.Now))
	}
	balance(t, managers...)

	var mu sync.Mutex
	wrote := map[string]map[string]bool{} // replica -> families it registered a twin of
	var ctls []*Controller
	for _, m := range managers {
		owner := m.Owner()
		wrote[owner] = map[string]bool{}
		c := w.controller(t, func(o *Options) {
			o.Leases = leaseGate{m}
			o.Workers = 3
			o.MaxInFlight, o.MaxInFlightPerCluster = families, families
			o.ServiceSweep, o.FamilySweep = time.Hour, time.Hour
			o.OnAction = func(a Action) {
				if a.Kind == ActionRegisterTwin {
					mu.Lock()
					wrote[owner][a.Family] = true
					mu.Unlock()
				}
			}
		})
		c.LeasesChanged(held(m))
		ctls = append(ctls, c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, c := range ctls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(ctx); err != nil {
				t.Errorf("Run: %v", err)
			}
		}()
	}
	converged := func() bool {
		out, err := w.ecs.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String(testCluster), Services: names[:10]})
		if err != nil {
			t.Fatal(err)
		}
		for start := 10; start < len(names); start += 10 {
			more, err := w.ecs.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String(testCluster), Services: names[start:min(start+10, len(names))]})
			if err != nil {
				t.Fatal(err)
			}
			out.Services = append(out.Services, more.Services...)
		}
		for _, s := range out.Services {
			if revisionNumber(aws.ToString(s.TaskDefinition)) < 2 {
				return false
			}
		}
		return len(out.Services) == len(names)
	}
	bound := time.Now().Add(60 * time.Second) // a bound on the wait, not a timing assertion
	for !converged() {
		if time.Now().After(bound) {
			cancel()
			wg.Wait()
			t.Fatal("the families did not converge")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()

	registered := map[string]int{} // family:source -> twin registrations
	for _, call := range w.writes("RegisterTaskDefinition") {
		in := call.Input.(*ecs.RegisterTaskDefinitionInput)
		for _, tag := range in.Tags {
			if aws.ToString(tag.Key) == "ecs-sidecar/source" {
				registered[aws.ToString(in.Family)+":"+aws.ToString(tag.Value)]++
			}
		}
	}
	if len(registered) != families {
		t.Errorf("twins registered for %d sources, want %d: %v", len(registered), families, registered)
	}
	dups, twins := 0, 0
	for key, n := range registered {
		twins += n
		if n != 1 {
			dups += n - 1
			t.Errorf("%s: %d twin registrations, want 1", key, n)
		}
	}
	for i, m := range managers {
		for f := range wrote[m.Owner()] {
			if _, ok := m.Owns(f); !ok {
				t.Errorf("replica %d registered a twin of %s, whose shard %s it does not hold", i, f, m.ShardFor(f))
			}
		}
	}
	t.Logf("%d families, 3 replicas: %d twin registrations, %d duplicates", families, twins, dups)
}

// pauseHook runs once, during the first ListTaskDefinitions of a reconcile:
// between the start of the reconcile (where the fence was taken) and its
// first write.
type pauseHook struct {
	ECSAPI
	once sync.Once
	f    func()
}

func (p *pauseHook) ListTaskDefinitions(ctx context.Context, in *ecs.ListTaskDefinitionsInput, optFns ...func(*ecs.Options)) (*ecs.ListTaskDefinitionsOutput, error) {
	p.once.Do(p.f)
	return p.ECSAPI.ListTaskDefinitions(ctx, in, optFns...)
}

// A replica whose lease was taken while it was paused (its renewals
// stopped; the other replica's clock went past the lease) still trusts its
// lease by its own clock, but the check before the write batch reads the
// table: it writes nothing, does not retry, says so (OnNotOwned), and the
// new owner reconciles the family.
func TestLeaseTakenDuringAPauseStopsTheWrites(t *testing.T) {
	w := newWorld(t)
	lt := newLeaseTable(t)
	src := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
	w.createService(t, "web", src, types.DeploymentControllerTypeEcs)
	start := time.UnixMilli(1_800_000_000_000)
	clockA, clockB := awssim.NewFakeClock(start), awssim.NewFakeClock(start)
	a, b := lt.manager(t, "a", clockA.Now), lt.manager(t, "b", clockB.Now)
	leaseRound(t, a) // a alone: every shard
	if _, ok := a.Owns("web"); !ok {
		t.Fatal("a does not own web")
	}
	var mu sync.Mutex
	var told []string
	hook := &pauseHook{ECSAPI: w.ecs, f: func() {
		// a is paused here: it renews nothing while b's clock passes the
		// lease period, and b takes the shards.
		clockB.Advance(lease.DefaultDuration + time.Second)
		leaseRound(t, b)
	}}
	ca := w.controller(t, func(o *Options) {
		o.ECS = hook
		o.Leases = leaseGate{a}
		o.OnNotOwned = func(_ context.Context, family, reason string) {
			mu.Lock()
			told = append(told, family+"="+reason)
			mu.Unlock()
		}
	})
	sweep(t, ca)
	if ca.QueueLen() != 1 {
		t.Fatalf("queue holds %d families, want web", ca.QueueLen())
	}
	before := w.callEntries()
	if !ca.processNext(context.Background()) {
		t.Fatal("queue shut down")
	}
	if _, ok := b.Owns("web"); !ok {
		t.Fatal("b did not take web's shard")
	}
	if n := w.callEntries() - before; n != 0 {
		t.Errorf("a made %d writes after its lease was taken: %v", n, w.sim.Journal()[len(w.sim.Journal())-n:])
	}
	if got := w.taskDefOf(t, "web"); got != src {
		t.Errorf("web runs %s, want still %s", got, src)
	}
	if n := ca.queue.NumRequeues("web"); n != 0 || ca.QueueLen() != 0 {
		t.Errorf("web requeued %d times, queue %d: a family of another replica must not be retried", n, ca.QueueLen())
	}
	mu.Lock()
	if len(told) != 1 || told[0] != "web="+NotOwnedLost {
		t.Errorf("OnNotOwned told %v, want [web=%s]", told, NotOwnedLost)
	}
	mu.Unlock()
	if _, ok := a.Owns("web"); ok {
		t.Error("a still trusts web's lease after the check saw b's")
	}
	// Asked again (an event, a sweep), a does not even queue it.
	ca.Enqueue("web")
	if ca.QueueLen() != 0 {
		t.Error("a queued a family whose lease it lost")
	}

	// The new owner instruments it.
	cb := w.controller(t, func(o *Options) { o.Leases = leaseGate{b} })
	cb.LeasesChanged(held(b))
	sweep(t, cb)
	drain(t, cb)
	w.isTwinOf(t, w.taskDefOf(t, "web"), 1)
}

// When a replica gains a shard, the families of that shard it knows of
// (from its services index, or left to another replica before) are
// reconciled at once, without waiting for a sweep: after the owner gave
// its shards back (SIGTERM), and after its leases ran out (SIGKILL: no
// renewal for a lease period, by the taker's clock).
func TestGainedShardQueuesItsFamilies(t *testing.T) {
	for _, how := range []string{"released", "expired"} {
		t.Run(how, func(t *testing.T) {
			w := newWorld(t)
			lt := newLeaseTable(t)
			src := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
			w.createService(t, "web", src, types.DeploymentControllerTypeEcs)
			clock := awssim.NewFakeClock(time.UnixMilli(1_800_000_000_000))
			a, b := lt.manager(t, "a", clock.Now), lt.manager(t, "b", clock.Now)
			leaseRound(t, a) // a holds every shard
			leaseRound(t, b) // b holds none: a's are unexpired
			cb := w.controller(t, func(o *Options) { o.Leases = leaseGate{b} })
			cb.LeasesChanged(held(b))
			sweep(t, cb)
			if cb.QueueLen() != 0 {
				t.Fatalf("b queued %d families it does not own", cb.QueueLen())
			}
			switch how {
			case "released":
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				if err := a.Release(ctx); err != nil {
					t.Fatal(err)
				}
			case "expired":
				// a is gone without a word; one renew period short of the
				// lease, its shards are still its own.
				clock.Advance(lease.DefaultDuration - lease.DefaultDuration/3)
				leaseRound(t, b)
				cb.LeasesChanged(held(b))
				if len(b.Held()) != 0 || cb.QueueLen() != 0 {
					t.Fatalf("b took %d shards, queued %d families before a's leases ran out", len(b.Held()), cb.QueueLen())
				}
				clock.Advance(lease.DefaultDuration/3 + time.Millisecond)
			}
			leaseRound(t, b)
			cb.LeasesChanged(held(b))
			if got := drain(t, cb); len(got) != 1 || got[0] != "web" {
				t.Fatalf("reconciled %v after the gain, want [web]", got)
			}
			w.isTwinOf(t, w.taskDefOf(t, "web"), 1)
		})
	}
}
