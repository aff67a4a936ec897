package soak

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
)

// The full soak: `make soak`, or
//
//	go test ./internal/soak -run TestSoak -soak.full -timeout 60m -v
//
// (SOAK_FULL=1 does the same as -soak.full). Without it, the short soak runs
// (part of `go test ./...`). TestSoak runs one reconciler process at a time;
// TestSoakTwoReplicas two at once, against the same account.
var (
	full     = flag.Bool("soak.full", os.Getenv("SOAK_FULL") == "1", "run the full soak: 500 families, 1,000 services, minutes of chaos")
	seedFlag = flag.Uint64("soak.seed", 1, "seed of the world, the pipeline, the kills and the simulator's faults")
	chaosFor = flag.Duration("soak.chaos", 0, "length of the chaos phase (default: 20s short, 3m full)")
	attempts = flag.Int("soak.max-attempts", 5, "the reconciler's aws.maxAttempts (3, the default of the config, makes a restarted reconciler wait long for its first complete service sweep under the soak's faults)")
	keepLogs = flag.Bool("soak.keep-logs", false, "keep the reconcilers' logs (their paths are printed) even when the soak passes")
)

// bin is the reconciler, built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		if testing.Short() {
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "soak-reconciler-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "reconciler")
		root, err := moduleRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		build := exec.Command(goTool(), "build", "-o", bin, "./cmd/reconciler")
		build.Dir = root
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "soak: building the reconciler: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("soak: no go.mod above the test's directory")
		}
		dir = parent
	}
}

func soakParams(replicas int) params {
	base := awssim.Faults{ThrottleRate: 0.20, ErrorRate: 0.05, LatencyMax: 100 * time.Millisecond, DropRate: 0.02}
	// A dropped answer to a registration makes the SDK register again: the
	// path to duplicate twins, dropped more often to exercise their cleanup.
	register := base
	register.DropRate = 0.10
	faults := map[string]awssim.Faults{"*": base, "ecs:RegisterTaskDefinition": register}
	p := params{
		families: 50, services: 100, clusters: 3, replicas: replicas,
		chaos: 20 * time.Second, chaosMax: 150 * time.Second, armFor: 6 * time.Second, killMin: 3 * time.Second, killMax: 10 * time.Second,
		pipelineEvery: 150 * time.Millisecond, throttleScale: 20, faults: faults, visibility: 10 * time.Second,
		quiet: 16 * time.Second, phaseOps: 6,
		converge: 3 * time.Minute, seed: *seedFlag, logLevel: "debug", maxAttempts: *attempts,
	}
	if *full {
		p.families, p.services, p.clusters = 500, 1000, 10
		p.chaos, p.chaosMax, p.killMin, p.killMax = 3*time.Minute, 6*time.Minute, 3*time.Second, 25*time.Second
		p.pipelineEvery, p.converge, p.quiet, p.phaseOps = 60*time.Millisecond, 10*time.Minute, 30*time.Second, 30
	}
	if *chaosFor > 0 {
		p.chaos = *chaosFor
		p.chaosMax = max(p.chaosMax, p.chaos)
	}
	p.seed += uint64(replicas) * 1000 // the variants differ
	return p
}

func TestSoak(t *testing.T) { soak(t, soakParams(1)) }

// TestSoakTwoReplicas: two reconcilers at once (the reconciler's own
// deployment overlapping), each killed and restarted on its own: the outcome
// is the one of a single replica, and a duplicate twin made by their race is
// found and deregistered.
func TestSoakTwoReplicas(t *testing.T) { soak(t, soakParams(2)) }

// TestSoakThreeReplicas: three at once, in the full soak only (the short
// soak of `make test` runs one and two; three add minutes, not checks).
func TestSoakThreeReplicas(t *testing.T) {
	if !*full {
		t.Skip("three replicas run in the full soak (make soak)")
	}
	soak(t, soakParams(3))
}

// The phases' sweeps: fast in the chaos (and in the sweeps-only phase),
// an hour apart in the events-only phase, so that only the queue can bring
// a registration to the reconciler there.
var (
	chaosPhase  = phaseConfig{name: "chaos", servicesEvery: 3 * time.Second, famsEvery: 5 * time.Second}
	eventsPhase = phaseConfig{name: "events-only", servicesEvery: time.Hour, famsEvery: time.Hour}
	sweepsPhase = phaseConfig{name: "sweeps-only", servicesEvery: 3 * time.Second, famsEvery: 5 * time.Second}
)

// phaseReport is one line of the soak's figures.
type phaseReport struct {
	name       string
	took       time.Duration
	kills      map[string]int
	writes     map[string]int // the reconciler's, ok
	attempts   map[string]int
	violations int
	converged  time.Duration // -1: did not
	timeline   []string
	quiet      int // reconciler calls in the quiet phase
	note       string
}

func (r phaseReport) String() string {
	var kills []string
	for _, s := range killSteps {
		kills = append(kills, fmt.Sprintf("%s %d", s, r.kills[s]))
	}
	conv := "NOT converged"
	if r.converged >= 0 {
		conv = "converged in " + r.converged.Round(100*time.Millisecond).String()
	}
	return fmt.Sprintf("phase %-11s %6s: kills by interrupted step: %s; reconciler writes (ok/attempted): %s; violations %d; %s; quiet-phase writes %d%s",
		r.name, r.took.Round(time.Second), strings.Join(kills, ", "), writesLine(r.writes, r.attempts), r.violations, conv, r.quiet, r.note)
}

func soak(t *testing.T, p params) {
	if testing.Short() {
		t.Skip("the chaos soak does not run with -short")
	}
	started := time.Now()
	w := newWorld(t, p)
	reps := make([]*replica, p.replicas)
	for i := range reps {
		reps[i] = newReplica(w, i+1, bin, p.seed)
		t.Cleanup(reps[i].srv.Close)
	}
	t.Cleanup(func() {
		for _, r := range reps {
			r.kill()
		}
	})
	setPhase := func(ph phaseConfig) {
		for _, r := range reps {
			cfg := w.config(r.srv.URL, ph, r.id)
			r.mu.Lock()
			r.cfg, r.phaseTag = cfg, ph.name
			r.mu.Unlock()
		}
	}
	totalKills := func(step string) int {
		n := 0
		for _, r := range reps {
			r.mu.Lock()
			n += r.killsBy[step]
			r.mu.Unlock()
		}
		return n
	}
	t.Logf("world: %d families, %d services in %d clusters (plus the demo's and %d hostile shapes), %d reconciler process(es) at once; seed %d; set up in %s",
		p.families, p.services, p.clusters, len(hostileShapes), p.replicas, p.seed, time.Since(started).Round(time.Millisecond))
	var reports []phaseReport
	var extra []*invariant // the phases' own checks

	// Phase 1, chaos: faults and throttling on, the pipeline running (with
	// hostile input), each process killed at a step of its work and
	// restarted. It runs for p.chaos, and on until every step was hit (at
	// most p.chaosMax).
	setPhase(chaosPhase)
	phaseStart, j0 := time.Now(), len(w.sim.Journal())
	w.sim.EnableThrottling(p.throttleScale)
	for k, f := range p.faults {
		if err := w.sim.SetFaults(k, f); err != nil {
			t.Fatal(err)
		}
	}
	ctx, stopChaos := context.WithCancel(context.Background())
	defer stopChaos()
	go func() {
		for tick := time.NewTicker(200 * time.Millisecond); ; <-tick.C {
			el := time.Since(phaseStart)
			all := true
			for _, s := range killSteps {
				all = all && totalKills(s) > 0
			}
			if el >= p.chaosMax || el >= p.chaos && all && w.hostileCovered() {
				stopChaos()
				tick.Stop()
				return
			}
		}
	}()
	var wg sync.WaitGroup
	supErrs := make([]error, len(reps))
	for i, r := range reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			supErrs[i] = r.superviseChaos(ctx, rand.New(rand.NewPCG(p.seed, uint64(100+i))), totalKills, p.armFor)
		}()
	}
	var pst pipelineStats
	wg.Add(1)
	go func() {
		defer wg.Done()
		pst = w.runPipeline(ctx, rand.New(rand.NewPCG(p.seed, 2)))
	}()
	wg.Wait()
	for _, err := range supErrs {
		if err != nil {
			t.Fatalf("starting the reconciler: %v", err)
		}
	}
	statsChaos := fetchStats(t, w.endpoint)
	for k := range p.faults {
		if err := w.sim.SetFaults(k, awssim.Faults{}); err != nil {
			t.Fatal(err)
		}
	}
	reports = append(reports, w.settle(t, "chaos", phaseStart, j0, p, reps, nil))
	valid := &invariant{name: "the chaos killed a process at every step (the run is valid)"}
	for _, s := range killSteps {
		valid.check(totalKills(s) > 0, "no kill interrupted the step %q in %s", s, time.Since(phaseStart).Round(time.Second))
	}
	hostile := &invariant{name: "the chaos met every kind of hostile input (the run is valid)"}
	w.mu.Lock()
	for k, n := range w.hostileDone {
		hostile.check(n > 0, "the hostile operation %d of %d never took place in %s", k, hostileKinds, time.Since(phaseStart).Round(time.Second))
	}
	w.mu.Unlock()
	extra = append(extra, valid, hostile)

	// Phase 2, events only: sweeps an hour apart (each process sweeps once
	// when it starts, before the registrations), no faults, no kills.
	// Every registration must reach the reconciler through the queue.
	restart := func(ph phaseConfig) {
		for _, r := range reps {
			r.stop()
		}
		setPhase(ph)
		for _, r := range reps {
			l, err := r.start()
			if err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			ok := r.waitReady(rctx, l)
			cancel()
			if !ok {
				t.Fatalf("phase %s: replica %d not ready within 2m (log %s)", ph.name, r.id, keepLog(t, r.log))
			}
		}
	}
	sweepCalls := func() int64 {
		// The family sweep lists families (ListTaskDefinitionFamilies) or,
		// in bulk (sweeps.families.taggingAPI), the tags of every task
		// definition (GetResources): a reconcile makes neither.
		return w.sim.CallCount("ecs", "ListServices", "ok") + w.sim.CallCount("ecs", "ListTaskDefinitionFamilies", "ok") +
			w.sim.CallCount("tagging", "GetResources", "ok")
	}
	restart(eventsPhase)
	// Each process's first family sweep runs beside its first service
	// sweep and can end after readiness, and a first sweep that failed
	// (throttled by the replicas' start together) is retried within
	// seconds: wait until every process logged both sweeps done, then for
	// no sweep call for 2 s, before counting.
	for _, r := range reps {
		r.mu.Lock()
		l := r.cur
		r.mu.Unlock()
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		ok := l != nil && r.waitLog(rctx, l, firstSweepsDone...)
		cancel()
		if !ok {
			t.Fatalf("phase %s: replica %d did not complete its first sweeps within 2m (log %s)", eventsPhase.name, r.id, keepLog(t, r.log))
		}
	}
	swept0 := sweepCalls()
	for still, deadline := 0, time.Now().Add(30*time.Second); still < 4 && time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		if n := sweepCalls(); n != swept0 {
			swept0, still = n, 0
		} else {
			still++
		}
	}
	phaseStart, j0 = time.Now(), len(w.sim.Journal())
	regs := w.runDeploys(t, rand.New(rand.NewPCG(p.seed, 3)), p.phaseOps)
	rep := w.settle(t, eventsPhase.name, phaseStart, j0, p, reps, nil)
	byEvents := &invariant{name: "events-only phase: every registration got its twin through the queue (no sweep ran)"}
	byEvents.check(sweepCalls() == swept0, "%d ListServices/ListTaskDefinitionFamilies/GetResources calls: a sweep ran", sweepCalls()-swept0)
	twinned(byEvents, viewOf(w.sim.State()), regs)
	rep.violations += len(byEvents.violations)
	reports, extra = append(reports, rep), append(extra, byEvents)

	// Phase 3, sweeps only: the reconciler listens to a queue the rule
	// does not deliver to (a rule that targets the wrong queue; the event
	// queue is purged as the phase goes), no faults, no kills.
	if _, err := w.sim.SQS().CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String("soak-no-events")}); err != nil {
		t.Fatal(err)
	}
	sweepsPhase.queueURL = w.sim.QueueURL(w.endpoint, "soak-no-events")
	restart(sweepsPhase)
	phaseStart, j0 = time.Now(), len(w.sim.Journal())
	purge := func() {
		_, _ = w.sim.SQS().PurgeQueue(context.Background(), &sqs.PurgeQueueInput{QueueUrl: aws.String(w.queueURL)})
	}
	regs = w.runDeploys(t, rand.New(rand.NewPCG(p.seed, 4)), p.phaseOps)
	rep = w.settle(t, sweepsPhase.name, phaseStart, j0, p, reps, purge)
	bySweeps := &invariant{name: "sweeps-only phase: every registration got its twin with no event delivered"}
	twinned(bySweeps, viewOf(w.sim.State()), regs)
	rep.violations += len(bySweeps.violations)
	reports, extra = append(reports, rep), append(extra, bySweeps)

	graceful := 0
	for _, r := range reps {
		if r.stop() {
			graceful++
		}
	}

	// The verdict, from the journal and the final state.
	st := w.sim.State()
	view := viewOf(st)
	entries := w.sim.Journal()
	finalState := stateInvariants(view)
	jr := journalInvariants(entries, w)
	var logs []string
	for _, r := range reps {
		logs = append(logs, r.log)
	}
	dlq, dlqMessages, dlqPoison, dlqOutlived := dlqReport(context.Background(), w, reps)
	secrets := secretsInvariant(w, logs)
	procs := &invariant{name: "reconciler processes exited only when killed or stopped"}
	for _, r := range reps {
		for _, c := range r.crashes {
			procs.check(false, "%s", c)
		}
		procs.check(true, "")
	}
	// Until the organization issue brings a single writer, replicas race
	// and registrations retried after a lost answer duplicate twins: each
	// replica's registration of a (source, spec) can be sent maxAttempts
	// times, and a kill right after one is served makes the next process
	// register again.
	bound := p.maxAttempts*p.replicas + totalKills("register")
	dups := &invariant{name: "duplicate twins stay bounded (registrations per (source, spec) <= maxAttempts x replicas + kills after a registration)"}
	dups.check(jr.maxPerKey <= bound, "%s source %d spec %s: %d twins registered, bound %d", jr.maxKey.family, jr.maxKey.source, jr.maxKey.spec, jr.maxPerKey, bound)
	quiet := &invariant{name: "quiet phases: no reconciler write once converged"}
	for _, r := range reports {
		quiet.check(r.quiet == 0, "phase %s: %d reconciler calls in the quiet phase", r.name, r.quiet)
	}
	all := append(append(append(append(finalState, jr.invariants...), hostileInvariants(entries, w, view)...), dlq, secrets, procs, quiet, dups), extra...)

	// Figures.
	var b strings.Builder
	fmt.Fprintf(&b, "chaos soak, %d reconciler process(es) at once, seed %d\n", p.replicas, p.seed)
	for _, r := range reports {
		fmt.Fprintf(&b, "  %s\n", r)
	}
	opted, ecsServices := 0, 0
	for _, s := range view.services {
		if s.Status != "ACTIVE" || s.Controller != "ECS" {
			continue
		}
		ecsServices++
		if rv := view.revs[s.TaskDefinition]; rv != nil && view.optedIn(rv.family) {
			opted++
		}
	}
	optedFams := 0
	for fam := range view.byFamily {
		if view.optedIn(fam) {
			optedFams++
		}
	}
	fmt.Fprintf(&b, "  families %d (opted in at the end %d, never opted in %d), services %d (ECS controller %d, opted in at the end %d), revisions %d\n",
		len(view.byFamily), optedFams, len(view.byFamily)-len(jr.everOptedIn), len(view.services), ecsServices, opted, len(view.revs))
	fmt.Fprintf(&b, "  chaos: faults %s, ECS buckets x%g; pipeline: %d revisions, %d deploys, %d rollbacks, %d scalings, %d opt-in flips, %d garbage messages, hostile %s (%d gave up after retries)\n",
		faultsLine(p.faults), p.throttleScale, pst.registered, pst.deployed, pst.rollbacks, pst.scales, pst.flips, pst.garbage, countsLine(pst.hostile), pst.failed)
	starts := 0
	for _, r := range reps {
		starts += r.starts
	}
	swept, lives := 0, 0
	for _, r := range reps {
		n, l := sweptLives(r.log)
		swept, lives = swept+n, lives+l
	}
	fmt.Fprintf(&b, "  reconciler: %d starts, %d stopped gracefully at the end; %d of %d processes got ready\n", starts, graceful, swept, lives)
	for _, who := range []string{"reconciler", "pipeline"} {
		fmt.Fprintf(&b, "  writes by the %s (ok/attempted): %s\n", who, writesLine(jr.writes[who], jr.attempts[who]))
	}
	fmt.Fprintf(&b, "  twins: %d registered (%d secret-token, %d plaintext-token), %d duplicates of a (source, spec) registered (at most %d for one), %d twins deregistered, %d ACTIVE twins at the end\n",
		jr.twinsRegistered, jr.secretTwins, jr.plaintextTwins, jr.dupsRegistered, jr.maxPerKey, jr.twinsDeregister, activeTwins(view))
	fmt.Fprintf(&b, "  pipeline deploys overtaken by a concurrent reconciler write (ECS has no conditional update): %d; reconciler moves made on a read another writer overtook (judged against what they read): %d\n", jr.raceOverwrites, jr.staleWrites)
	fmt.Fprintf(&b, "  faults injected during the chaos (from /_sim/stats): %s\n", faultLine(statsChaos))
	fmt.Fprintf(&b, "  DLQ: %d messages, %d of them the poison messages sent (%d), %d valid events each of whose %d receives a kill or an injected fault explains; total %s\n", dlqMessages, dlqPoison, len(w.poison), dlqOutlived, awssim.DemoMaxReceiveCount, time.Since(started).Round(time.Second))
	for _, iv := range all {
		fmt.Fprintf(&b, "  %s\n", iv)
	}
	// Nothing printed may carry a token (a violation quoting a message or a
	// task definition could): redact both values wherever they would appear.
	redact := strings.NewReplacer(w.secretValue, "<token secret value>", w.plainToken, "<plaintext token>").Replace
	t.Log(redact(b.String()))
	for _, r := range reports {
		if r.converged < 0 {
			t.Errorf("phase %s: the reconciler did not converge within %s; unmet invariants over time: %s", r.name, p.converge, strings.Join(r.timeline, "; "))
		}
	}
	for _, iv := range all {
		if len(iv.violations) > 0 {
			t.Errorf("invariant broken: %s: %d violations (see the figures above)", iv.name, len(iv.violations))
		}
	}
	if jr.plaintextTwins == 0 && p.families >= 20 {
		t.Errorf("no twin carries the plaintext token: the log check of the plaintext token proves nothing")
	}
	if len(w.poison) == 0 {
		t.Errorf("no poison message was sent: the DLQ check proves nothing")
	}
	if t.Failed() || *keepLogs {
		for _, l := range logs {
			t.Logf("reconciler log kept for inspection: %s", keepLog(t, l))
		}
	}
}

// settle ends a phase: the last processes run on, without faults, until
// the state invariants hold on three polls in a row (before runs ahead of
// each poll), then a quiet phase of p.quiet counts the reconciler's calls.
func (w *world) settle(t *testing.T, name string, start time.Time, j0 int, p params, reps []*replica, before func()) phaseReport {
	t.Helper()
	rep := phaseReport{name: name, kills: map[string]int{}, converged: -1}
	end := time.Now()
	prevUnmet := "?"
	streak := 0
	var last []*invariant
	for deadline := time.Now().Add(p.converge); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if before != nil {
			before()
		}
		last = stateInvariants(viewOf(w.sim.State()))
		if u := unmet(last); u != prevUnmet {
			rep.timeline = append(rep.timeline, fmt.Sprintf("+%s %s", time.Since(end).Round(100*time.Millisecond), u))
			prevUnmet = u
		}
		if failed(last) {
			streak = 0
			continue
		}
		if streak == 0 {
			rep.converged = time.Since(end)
		}
		if streak++; streak == 3 {
			break
		}
	}
	if streak < 3 {
		rep.converged = -1
	}
	q0 := len(w.sim.Journal())
	time.Sleep(p.quiet)
	if before != nil {
		before()
	}
	entries := w.sim.Journal()
	var firstQuiet []string
	rep.quiet, firstQuiet = reconcilerCalls(entries[q0:])
	if rep.quiet > 0 {
		rep.note = " (" + strings.Join(firstQuiet, ", ") + ")"
	}
	rep.writes, rep.attempts = map[string]int{}, map[string]int{}
	for _, e := range entries[j0:q0] {
		if c := e.Call; c != nil && caller(c) == "reconciler" {
			rep.attempts[c.Operation]++
			if c.Err == nil {
				rep.writes[c.Operation]++
			}
		}
	}
	for _, r := range reps {
		r.mu.Lock()
		maps.Copy(rep.kills, r.byPhase[name])
		r.mu.Unlock()
	}
	for _, iv := range append(append(stateInvariants(viewOf(w.sim.State())), journalInvariants(entries, w).invariants...), hostileInvariants(entries, w, viewOf(w.sim.State()))...) {
		rep.violations += len(iv.violations)
	}
	rep.took = time.Since(start)
	t.Logf("%s; unmet invariants over time: %s", rep, strings.Join(rep.timeline, "; "))
	return rep
}

// reconcilerCalls counts the reconciler's calls (attempts) in entries, and
// names the first three.
func reconcilerCalls(entries []awssim.Entry) (n int, first []string) {
	for _, e := range entries {
		if e.Call != nil && caller(e.Call) == "reconciler" {
			n++
			if len(first) < 3 {
				first = append(first, fmt.Sprintf("#%d %s", e.Call.Seq, e.Call.Operation))
			}
		}
	}
	return n, first
}

// runDeploys registers a revision of n distinct opted-in families (demo
// shaped, not fragile) and deploys each to its services, 300 ms apart; it
// returns the new revisions.
func (w *world) runDeploys(t *testing.T, rng *rand.Rand, n int) []string {
	t.Helper()
	cfg := w.sdkConfig()
	ecsc := ecs.NewFromConfig(cfg, func(o *ecs.Options) { o.BaseEndpoint = aws.String(w.endpoint) })
	// Opted in as AWS says, not as the pipeline recorded its flips: a flip
	// whose answer a dropped connection lost is applied all the same.
	v := viewOf(w.sim.State())
	var fams []*family
	for _, f := range w.fams {
		if f.kind == "" && v.optedIn(f.name) && !fragile(f.name) && len(f.svcs) > 0 {
			fams = append(fams, f)
		}
	}
	rng.Shuffle(len(fams), func(i, j int) { fams[i], fams[j] = fams[j], fams[i] })
	var out []string
	ctx := context.Background()
	for i, f := range fams[:min(n, len(fams))] {
		arn, err := registerRevision(ctx, ecsc, f.name, 100000+i, nil)
		if err != nil {
			t.Fatal(err)
		}
		f.revs = append(f.revs, arn)
		out = append(out, arn)
		for _, s := range f.svcs {
			if s.codeDeploy {
				continue
			}
			if _, err := ecsc.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(s.cluster), Service: aws.String(s.name), TaskDefinition: aws.String(arn)}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	return out
}

// twinned checks that each revision has an ACTIVE twin.
func twinned(iv *invariant, v *stateView, revs []string) {
	for _, arn := range revs {
		fam, num := parseRevisionArn(arn)
		found := false
		for _, r := range v.byFamily[fam] {
			found = found || r.twin && r.active && r.source == num
		}
		iv.check(found, "%s has no ACTIVE twin", short(arn))
	}
}

func countsLine(m map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// unmet names the invariants with violations, with their counts.
func unmet(ivs []*invariant) string {
	var out []string
	for _, iv := range ivs {
		if len(iv.violations) > 0 {
			out = append(out, fmt.Sprintf("%q x%d", iv.name, len(iv.violations)))
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// sweptLives counts the processes in a replica's log, and those that logged
// a completed service sweep.
func sweptLives(path string) (swept, lives int) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	done := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.Contains(line, `"msg":"reconciler starting"`):
			if lives > 0 && done {
				swept++
			}
			lives, done = lives+1, false
		case strings.Contains(line, `"msg":"ready: `):
			done = true
		}
	}
	if lives > 0 && done {
		swept++
	}
	return swept, lives
}

func faultsLine(m map[string]awssim.Faults) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+" "+m[k].String())
	}
	return strings.Join(parts, "; ")
}

func failed(ivs []*invariant) bool {
	for _, iv := range ivs {
		if len(iv.violations) > 0 {
			return true
		}
	}
	return false
}

func activeTwins(v *stateView) int {
	n := 0
	for _, ts := range v.twins {
		n += len(ts)
	}
	return n
}

func writesLine(ok, attempted map[string]int) string {
	var parts []string
	for _, op := range sortedKeys(attempted) {
		parts = append(parts, fmt.Sprintf("%s %d/%d", op, ok[op], attempted[op]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func fetchStats(t *testing.T, endpoint string) awssim.Stats {
	t.Helper()
	st, err := awssim.FetchStats(context.Background(), endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// faultLine sums the counters by result: injected throttling (the buckets'
// refusals apart), server errors, dropped connections, and all calls.
func faultLine(st awssim.Stats) string {
	var calls, throttled, serverErrs, dropped int64
	byService := map[string]int64{}
	for _, c := range st.Calls {
		calls += c.Count
		switch c.Result {
		case "ThrottlingException", "RequestThrottled":
			throttled += c.Count
		case "ServerException", "InternalFailure", "InternalServiceError":
			serverErrs += c.Count
		case "dropped":
			dropped += c.Count
		default:
			continue
		}
		byService[c.Service] += c.Count
	}
	var refused int64
	for _, b := range st.Buckets {
		refused += b.Refused
	}
	var svc []string
	for _, s := range sortedKeys(byService) {
		svc = append(svc, s+" "+strconv.FormatInt(byService[s], 10))
	}
	sort.Strings(svc)
	return fmt.Sprintf("%d calls; %d throttled (%d by ECS's token buckets, %d injected), %d server errors, %d dropped connections (by service: %s)",
		calls, throttled, refused, throttled-refused, serverErrs, dropped, strings.Join(svc, ", "))
}

// keepLog copies a failed run's log out of the test's temporary directory.
func keepLog(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return path + " (unreadable: " + err.Error() + ")"
	}
	f, err := os.CreateTemp("", "soak-"+filepath.Base(path)+"-")
	if err != nil {
		return path
	}
	defer f.Close()
	_, _ = f.Write(b)
	return f.Name()
}
