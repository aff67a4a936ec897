package bench

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/cloud"
	"github.com/ecs-sidecar/reconciler/internal/config"
	"github.com/ecs-sidecar/reconciler/internal/controller"
)

// fleetResult is what the runs on the large fleet measured.
type fleetResult struct {
	services, families int
	clusters           int

	serviceSweep, serviceMin CallCounts
	familySweep, familyMin   CallCounts
	sweepQueued              int64 // families the idle sweeps queued
	sweepReconciles          int64 // reconciles while they ran
	// What the simulator served the reconciler in the same windows: more
	// than its calls when an attempt was retried after a transport error.
	serviceServed, familyServed CallCounts

	processDescribes, processReDescribes int

	naive, dedup  CallCounts
	distinctInUse int // distinct task definitions the fleet's services run

	// The restart, under AWS's buckets with refills scaled by restartScale
	// and the default share: the reconciler's calls from its start until
	// it was first idle, and that time.
	restartScale    float64
	restartCalls    CallCounts
	restartMeasured time.Duration
	restartSweeps   int // service sweeps ended by then
	throttled       int // calls the simulator refused for their rate, over the process's life

	// The idle sweeps' durations (sweep_last_duration_seconds).
	serviceSweepTime, familySweepTime time.Duration

	latencies           []time.Duration
	sweepsDuringSamples int
	missed              int // samples with no UpdateService within the timeout

	peakRSS, rss int64
	settle       time.Duration // restart to idle, process
	setupToIdle  time.Duration // seeding until the restarted process was idle
}

// sweepKey marks the context of a sweep whose calls are counted.
type sweepKey struct{}

// opCounter counts the calls made under a marked context, by mark and operation.
type opCounter struct {
	mu sync.Mutex
	m  map[string]CallCounts
}

func (c *opCounter) get(mark string) CallCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[mark].clone()
}

// middleware counts each call (not each attempt: the simulator is not
// throttled in these runs) made with a marked context.
func (c *opCounter) middleware(st *middleware.Stack) error {
	return st.Initialize.Add(middleware.InitializeMiddlewareFunc("BenchCount",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if mark, ok := ctx.Value(sweepKey{}).(string); ok {
				op := awsmiddleware.GetOperationName(ctx)
				c.mu.Lock()
				if c.m[mark] == nil {
					c.m[mark] = CallCounts{}
				}
				c.m[mark][op]++
				c.mu.Unlock()
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
}

// ecsClient is an SDK client of the simulator through internal/cloud, as the
// reconciler builds it, with an unlimited budget.
func ecsClient(ctx context.Context, endpoint, appID string, counter *opCounter) (*ecs.Client, error) {
	cfg, _, err := cloud.New(ctx, cloud.Options{
		Region: awssim.DefaultRegion, Endpoint: endpoint,
		StaticCredentials: &aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test", Source: "bench"},
		MaxAttempts:       10, BudgetShare: 1, Buckets: cloud.ScaledBuckets(config.MaxBucketScale), AppID: appID,
	})
	if err != nil {
		return nil, err
	}
	cfg.APIOptions = append(cfg.APIOptions, counter.middleware)
	return ecs.NewFromConfig(cfg), nil
}

// runFleet seeds the large fleet, has the reconciler's own Reconcile
// instrument it, runs the naive scanner on it, then starts the reconciler
// process on it (a restart) and measures its idle sweeps, its event latency
// and its peak RSS.
func runFleet(ctx context.Context, o Options, bin, dir string, logf func(string, ...any)) (fleetResult, error) {
	res := fleetResult{families: o.Families, services: o.Families * o.ServicesPerFamily, clusters: o.Clusters}
	s, secret, err := startSeededSim(ctx, awssim.Options{})
	if err != nil {
		return res, err
	}
	defer s.stop()
	t0 := time.Now()
	f, err := s.seedFleet(ctx, "fleet", o.Clusters, o.Families, o.ServicesPerFamily)
	if err != nil {
		return res, err
	}
	logf("fleet: seeded %d services of %d families in %d clusters in %v", res.services, res.families, o.Clusters, time.Since(t0).Round(time.Millisecond))
	if err := instrumentFleet(ctx, o, s, f, secret, logf); err != nil {
		return res, err
	}
	if err := naiveSweep(ctx, s, &res, false, logf); err != nil {
		return res, err
	}
	if err := naiveSweep(ctx, s, &res, true, logf); err != nil {
		return res, err
	}
	if err := restartedProcess(ctx, o, bin, dir, s, f, secret, &res, t0, logf); err != nil {
		return res, err
	}
	return res, nil
}

// fleetBatch is how many families one short-lived controller instruments.
const fleetBatch = 500

// instrumentFleet brings the fleet to the state a reconciler leaves it in:
// every family has its twin and every service runs it, made by
// controller.Reconcile itself (through the simulator's Go API, for speed).
// A fresh controller per batch of families, whose cache holds only that
// batch's services (ResolveService), keeps each move cheap: the
// controller's admission of a move scans every service it has cached.
func instrumentFleet(ctx context.Context, o Options, s *simServer, f *fleet, secret string, logf func(string, ...any)) error {
	cfg := config.Default()
	p := cfg.Profiles[config.BuiltinProfile]
	p.TokenSecretArn = secret
	cfg.Profiles[config.BuiltinProfile] = p
	start := time.Now()
	for lo := 0; lo < len(f.families); lo += fleetBatch {
		ctl, err := controller.New(controller.Options{
			ECS: s.sim.ECS(), TagPrefix: cfg.TagPrefix, Profile: cfg.Profile, DefaultProfile: cfg.DefaultProfile, Mode: cfg.Mode,
			MaxInFlight: len(f.families) * o.ServicesPerFamily, MaxInFlightPerCluster: len(f.families) * o.ServicesPerFamily,
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			return err
		}
		batch := f.families[lo:min(lo+fleetBatch, len(f.families))]
		for _, family := range batch {
			for _, ref := range f.services[family] {
				if _, err := ctl.ResolveService(ctx, ref.cluster, ref.name); err != nil {
					return fmt.Errorf("resolve %s: %w", ref.name, err)
				}
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, len(batch))
		next := make(chan string)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for family := range next {
					if _, err := ctl.Reconcile(ctx, family); err != nil {
						errs <- fmt.Errorf("reconcile %s: %w", family, err)
					}
				}
			}()
		}
		for _, family := range batch {
			next <- family
		}
		close(next)
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
	}
	for {
		left, pending := s.uncovered(f)
		if left == 0 && pending == 0 {
			break
		}
		if time.Since(start) > o.FleetTimeout {
			return fmt.Errorf("instrumenting the fleet: %d services uncovered, %d rollouts pending after %v", left, pending, o.FleetTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	logf("fleet: controller.Reconcile instrumented %d families and %d services in %v", len(f.families), len(f.families)*o.ServicesPerFamily, time.Since(start).Round(time.Millisecond))
	return nil
}

// naiveSweep does what existing scanners do on every sweep: list every
// service of every cluster, describe them, and describe every service's
// task definition; with dedup, each distinct task definition once.
func naiveSweep(ctx context.Context, s *simServer, res *fleetResult, dedup bool, logf func(string, ...any)) error {
	mark := "naive"
	if dedup {
		mark = "dedup"
	}
	described := map[string]bool{}
	counter := &opCounter{m: map[string]CallCounts{}}
	client, err := ecsClient(ctx, s.endpoint, "bench-naive-scanner", counter)
	if err != nil {
		return err
	}
	before := s.calls()
	start := time.Now()
	ctx = context.WithValue(ctx, sweepKey{}, mark)
	var clusters []string
	for p := ecs.NewListClustersPaginator(client, &ecs.ListClustersInput{MaxResults: aws.Int32(100)}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("naive: %w", err)
		}
		clusters = append(clusters, page.ClusterArns...)
	}
	for _, cluster := range clusters {
		var arns []string
		for p := ecs.NewListServicesPaginator(client, &ecs.ListServicesInput{Cluster: aws.String(cluster), MaxResults: aws.Int32(100)}); p.HasMorePages(); {
			page, err := p.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("naive: %w", err)
			}
			arns = append(arns, page.ServiceArns...)
		}
		for i := 0; i < len(arns); i += 10 {
			out, err := client.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: arns[i:min(i+10, len(arns))]})
			if err != nil {
				return fmt.Errorf("naive: %w", err)
			}
			for _, sv := range out.Services {
				td := aws.ToString(sv.TaskDefinition)
				if dedup && described[td] {
					continue
				}
				described[td] = true
				if _, err := client.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
					TaskDefinition: sv.TaskDefinition, Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
				}); err != nil {
					return fmt.Errorf("naive: %w", err)
				}
			}
		}
	}
	got := counter.get(mark)
	if dedup {
		res.dedup, res.distinctInUse = got, len(described)
	} else {
		res.naive = got
	}
	after := s.calls()
	for op, n := range got {
		if got := after[op] - before[op]; got != n {
			return fmt.Errorf("naive: the simulator served %d %s, the scanner counted %d", got, op, n)
		}
	}
	logf("fleet: %s scanner: %d calls in %v (%s)", mark, got.Total(), time.Since(start).Round(time.Millisecond), got)
	return nil
}

// restartedProcess starts the reconciler process on the converged fleet (a
// restart: nothing cached), waits until it is idle, measures
// event-to-UpdateService latency, and reads its peak RSS.
func restartedProcess(ctx context.Context, o Options, bin, dir string, s *simServer, f *fleet, secret string, res *fleetResult, t0 time.Time, logf func(string, ...any)) error {
	queue, err := s.seedQueue(ctx)
	if err != nil {
		return err
	}
	// The latency probe watches UpdateService calls (observers run under
	// the simulator's lock: quick, no calls back).
	var probe atomic.Pointer[latencyProbe]
	s.sim.OnCall(func(c awssim.Call) {
		p := probe.Load()
		if p == nil || c.Operation != "UpdateService" || c.Err != nil {
			return
		}
		in, ok := c.Input.(*ecs.UpdateServiceInput)
		if !ok {
			return
		}
		svc := aws.ToString(in.Service)
		if svc != p.service && !strings.HasSuffix(svc, "/"+p.service) {
			return
		}
		if aws.ToString(in.TaskDefinition) == p.pipelineTD {
			p.origin.CompareAndSwap(nil, &c.Time)
			return
		}
		if p.origin.Load() != nil {
			select {
			case p.reconciled <- c.Time:
			default:
			}
		}
	})

	s.countRun("process")
	// AWS's buckets, refills scaled by RestartScale, on both sides: the
	// simulator's whole buckets, the process's default share of them.
	res.restartScale = o.RestartScale
	s.sim.EnableThrottling(o.RestartScale)
	start := time.Now()
	proc, err := startProcess(bin, dir, "fleet", processConfig{endpoint: s.endpoint, queueURL: queue, secretArn: secret,
		bucketScale: o.RestartScale, share: defaultShare, sweepInterval: o.SweepInterval, familyRate: DefaultFamilyRate * o.RestartScale})
	if err != nil {
		return err
	}
	defer proc.stop()
	logf("fleet: reconciler pid %d restarted on %d services, buckets x%g, share %g", proc.cmd.Process.Pid, res.services, o.RestartScale, DefaultShare)
	// Idle: every family reconciled, nothing queued or in progress, twice
	// in a row.
	calm := 0
	for calm < 2 {
		if err := proc.alive(); err != nil {
			return err
		}
		if time.Since(start) > o.FleetTimeout {
			return fmt.Errorf("the restarted reconciler was not idle after %v", o.FleetTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		m, err := proc.scrape(ctx)
		if err != nil {
			calm = 0
			continue
		}
		ok := m.sum("ecs_sidecar_reconcile_total", `result="success"`) >= float64(res.families) &&
			m.sum("ecs_sidecar_workqueue_depth") == 0 && m.sum("ecs_sidecar_workqueue_unfinished_work_seconds") == 0
		if ok {
			if calm == 0 {
				res.restartMeasured = time.Since(start)
				res.restartCalls = s.reconcilerCalls("process")
				res.restartSweeps = int(m.sum("ecs_sidecar_sweeps_total", `sweep="services"`))
			}
			calm++
		} else {
			calm = 0
		}
	}
	res.settle = time.Since(start)
	res.setupToIdle = time.Since(t0)
	logf("fleet: restart: %d ECS calls (%s) in %v; bound at x%g %v", ECSCalls(res.restartCalls), ByBucket(res.restartCalls),
		res.restartMeasured.Round(time.Millisecond), o.RestartScale, BucketBound(res.restartCalls, DefaultShare, o.RestartScale).Round(time.Millisecond))
	logf("fleet: the restarted reconciler was idle after %v", res.settle.Round(time.Second))
	if err := idleSweeps(ctx, o, s, f, proc, res, logf); err != nil {
		return err
	}

	before, err := proc.scrape(ctx)
	if err != nil {
		return err
	}
	// Samples: a pipeline registers a new revision of a family (untagged:
	// it inherits the opt-in) and moves one service to it, as CI does.
	e := s.sim.ECS()
	step := max(1, len(f.families)/o.LatencySamples)
	for k := range o.LatencySamples {
		family := f.families[(k*step)%len(f.families)]
		ref := f.services[family][0]
		reg, err := e.RegisterTaskDefinition(ctx, taskDefinition(family, fmt.Sprintf("nginx:1.27.%d", k+1), nil))
		if err != nil {
			return fmt.Errorf("latency: register: %w", err)
		}
		td := fmt.Sprintf("%s:%d", family, reg.TaskDefinition.Revision)
		p := &latencyProbe{service: ref.name, pipelineTD: td, reconciled: make(chan time.Time, 1)}
		probe.Store(p)
		if _, err := e.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(ref.cluster), Service: aws.String(ref.name), TaskDefinition: aws.String(td)}); err != nil {
			return fmt.Errorf("latency: update: %w", err)
		}
		select {
		case at := <-p.reconciled:
			res.latencies = append(res.latencies, at.Sub(*p.origin.Load()))
		case <-time.After(o.LatencyTimeout):
			res.missed++
		case <-ctx.Done():
			return ctx.Err()
		}
		probe.Store(nil)
		time.Sleep(o.LatencyGap)
	}
	if after, err := proc.scrape(ctx); err == nil {
		res.sweepsDuringSamples = int(after.sum("ecs_sidecar_sweeps_total") - before.sum("ecs_sidecar_sweeps_total"))
	}
	logf("fleet: %d latency samples, %d missed: p50 %v, p99 %v", len(res.latencies), res.missed,
		Percentile(res.latencies, 50), Percentile(res.latencies, 99))
	time.Sleep(time.Second) // the samples' rollouts and their events
	if err := proc.alive(); err != nil {
		return err
	}
	if res.peakRSS, res.rss, err = proc.memory(); err != nil {
		return err
	}
	res.processDescribes, res.processReDescribes = s.describes("process")
	res.throttled = s.throttled()
	return proc.stop()
}

type latencyProbe struct {
	service, pipelineTD string
	origin              atomic.Pointer[time.Time]
	reconciled          chan time.Time
}

// The operations of each sweep (disjoint sets: with no reconcile under way,
// the calls of each set are that sweep's).
var (
	serviceSweepOps = []string{"ListClusters", "ListServices", "DescribeServices"}
	familySweepOps  = []string{"ListTaskDefinitionFamilies", "ListTaskDefinitions", "ListTagsForResource", "GetResources"}
)

// processCalls reads the process's answered ECS calls by operation: its
// attempts that got an answer (ecs_sidecar_aws_api_calls_total with no
// error code), i.e. its calls, not counting attempts retried after a
// transport error.
func processCalls(m promText) CallCounts {
	out := CallCounts{}
	for _, op := range append(append([]string{}, serviceSweepOps...), familySweepOps...) {
		if CategoryOf(op) == Tagging {
			out[op] = int(m.sum("ecs_sidecar_aws_api_calls_total", `error_code=""`, `operation="`+op+`"`))
			continue
		}
		out[op] = int(m.sum("ecs_sidecar_aws_api_calls_total", `error_code=""`, `operation="`+op+`"`, `service="ECS"`))
	}
	return out
}

// idleSweeps counts, on the idle process, the calls of the next complete
// service sweep and family sweep: the process's own count of its answered
// calls by operation (and, beside it, what the simulator served it), with
// the process's sweeps_total saying when a sweep ends. Reconciles and workqueue adds over the windows must stay 0.
func idleSweeps(ctx context.Context, o Options, s *simServer, f *fleet, proc *process, res *fleetResult, logf func(string, ...any)) error {
	type window struct {
		name               string
		ops                []string
		start, servedStart CallCounts
		begun              float64 // sweeps_total at the window's start
		got, served        CallCounts
	}
	wins := []*window{{name: "services", ops: serviceSweepOps}, {name: "families", ops: familySweepOps}}
	sweeps := func(m promText, name string) float64 {
		return m.sum("ecs_sidecar_sweeps_total", `sweep="`+name+`"`)
	}
	first, err := proc.scrape(ctx)
	if err != nil {
		return err
	}
	reconciles0 := first.sum("ecs_sidecar_reconcile_total")
	adds0 := first.sum("ecs_sidecar_workqueue_adds_total")
	last := map[string]float64{"services": sweeps(first, "services"), "families": sweeps(first, "families")}
	deadline := time.Now().Add(3*o.SweepInterval + time.Minute)
	for {
		done := true
		for _, w := range wins {
			done = done && w.got != nil
		}
		if done {
			break
		}
		if err := proc.alive(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("idle sweeps: no complete sweep of each kind within %v", 3*o.SweepInterval+time.Minute)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		m, err := proc.scrape(ctx)
		if err != nil {
			return err
		}
		calls, served := processCalls(m), s.reconcilerCalls("process")
		for _, w := range wins {
			n := sweeps(m, w.name)
			if n == last[w.name] || w.got != nil {
				continue
			}
			last[w.name] = n
			if w.start == nil {
				// A sweep ended: the next one is the window.
				w.start, w.servedStart, w.begun = calls, served, n
				continue
			}
			if n != w.begun+1 {
				return fmt.Errorf("idle sweeps: %v %s sweeps ended in one poll", n-w.begun, w.name)
			}
			w.got, w.served = CallCounts{}, CallCounts{}
			for _, op := range w.ops {
				if d := calls[op] - w.start[op]; d > 0 {
					w.got[op] = d
				}
				if d := served[op] - w.servedStart[op]; d > 0 {
					w.served[op] = d
				}
			}
		}
	}
	m, err := proc.scrape(ctx)
	if err != nil {
		return err
	}
	res.sweepQueued = int64(m.sum("ecs_sidecar_workqueue_adds_total") - adds0)
	res.sweepReconciles = int64(m.sum("ecs_sidecar_reconcile_total") - reconciles0)
	res.serviceSweep, res.familySweep = wins[0].got, wins[1].got
	res.serviceServed, res.familyServed = wins[0].served, wins[1].served
	res.serviceMin, res.familyMin = ServiceSweepMinimum(f.servicesPerCluster), s.bulkFamilyMinimum()
	res.serviceSweepTime = time.Duration(m.sum("ecs_sidecar_sweep_last_duration_seconds", `sweep="services"`) * float64(time.Second))
	res.familySweepTime = time.Duration(m.sum("ecs_sidecar_sweep_last_duration_seconds", `sweep="families"`) * float64(time.Second))
	logf("fleet: idle service sweep %d calls (minimum %d: %s; got %s), family sweep %d calls (minimum %d); %d families queued, %d reconciles meanwhile",
		res.serviceSweep.Total(), res.serviceMin.Total(), res.serviceMin, res.serviceSweep, res.familySweep.Total(), res.familyMin.Total(), res.sweepQueued, res.sweepReconciles)
	return nil
}
