package soak

import (
	"context"
	"flag"
	"fmt"
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
		chaos: 20 * time.Second, killMin: 3 * time.Second, killMax: 10 * time.Second,
		pipelineEvery: 150 * time.Millisecond, throttleScale: 20, faults: faults,
		converge: 3 * time.Minute, seed: *seedFlag, logLevel: "debug", maxAttempts: *attempts,
	}
	if *full {
		p.families, p.services, p.clusters = 500, 1000, 10
		p.chaos, p.killMin, p.killMax = 3*time.Minute, 3*time.Second, 25*time.Second
		p.pipelineEvery, p.converge = 60*time.Millisecond, 10*time.Minute
	}
	if *chaosFor > 0 {
		p.chaos = *chaosFor
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

func soak(t *testing.T, p params) {
	if testing.Short() {
		t.Skip("the chaos soak does not run with -short")
	}
	started := time.Now()
	w := newWorld(t, p)
	cfg := w.config()
	reps := make([]*replica, p.replicas)
	for i := range reps {
		reps[i] = &replica{id: i + 1, bin: bin, cfg: cfg, log: filepath.Join(w.dir, fmt.Sprintf("reconciler-%d.log", i+1))}
	}
	t.Cleanup(func() {
		for _, r := range reps {
			r.kill()
		}
	})
	t.Logf("world: %d families, %d services in %d clusters (plus the demo's), %d reconciler process(es) at once; seed %d; set up in %s",
		p.families, p.services, p.clusters, p.replicas, p.seed, time.Since(started).Round(time.Millisecond))

	// Chaos: faults and throttling on, the pipeline running, the
	// reconcilers killed with SIGKILL at random and restarted.
	w.sim.EnableThrottling(p.throttleScale)
	for k, f := range p.faults {
		if err := w.sim.SetFaults(k, f); err != nil {
			t.Fatal(err)
		}
	}
	ctx, stopChaos := context.WithTimeout(context.Background(), p.chaos)
	defer stopChaos()
	var wg sync.WaitGroup
	supErrs := make([]error, len(reps))
	for i, r := range reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			supErrs[i] = r.superviseChaos(ctx, rand.New(rand.NewPCG(p.seed, uint64(100+i))), p.killMin, p.killMax)
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
	chaosEnd := time.Now()
	statsChaos := fetchStats(t, w.endpoint)
	for k := range p.faults {
		if err := w.sim.SetFaults(k, awssim.Faults{}); err != nil {
			t.Fatal(err)
		}
	}

	// Convergence: the last processes run on, without faults, until the
	// state invariants hold on three polls in a row (the deadline only
	// guards against a run that never converges).
	var converged time.Duration
	var last []*invariant
	var timeline []string // when the set of unmet invariants changed
	prevUnmet := "?"
	streak := 0
	for deadline := time.Now().Add(p.converge); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		last = stateInvariants(viewOf(w.sim.State()))
		if u := unmet(last); u != prevUnmet {
			timeline = append(timeline, fmt.Sprintf("+%s %s", time.Since(chaosEnd).Round(100*time.Millisecond), u))
			prevUnmet = u
		}
		if failed(last) {
			streak = 0
			continue
		}
		if streak == 0 {
			converged = time.Since(chaosEnd)
		}
		if streak++; streak == 3 {
			break
		}
	}
	if streak < 3 {
		converged = -1
	}
	graceful := 0
	for _, r := range reps {
		if r.stop() {
			graceful++
		}
	}

	// The verdict, from the journal and the final state.
	st := w.sim.State()
	view := viewOf(st)
	finalState := stateInvariants(view)
	jr := journalInvariants(w.sim.Journal(), w)
	dlq, dlqMessages := dlqInvariant(context.Background(), w)
	var logs []string
	for _, r := range reps {
		logs = append(logs, r.log)
	}
	secrets := secretsInvariant(w, logs)
	procs := &invariant{name: "reconciler processes exited only when killed or stopped"}
	for _, r := range reps {
		for _, c := range r.crashes {
			procs.check(false, "%s", c)
		}
		procs.check(true, "")
	}
	all := append(append(append(finalState, jr.invariants...), dlq, secrets), procs)

	// Figures.
	var b strings.Builder
	fmt.Fprintf(&b, "chaos soak, %d reconciler process(es) at once, seed %d\n", p.replicas, p.seed)
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
	fmt.Fprintf(&b, "  chaos %s: faults %s, ECS buckets x%g; pipeline: %d revisions, %d deploys, %d rollbacks, %d scalings, %d opt-in flips, %d garbage messages (%d gave up after retries)\n",
		p.chaos, faultsLine(p.faults), p.throttleScale, pst.registered, pst.deployed, pst.rollbacks, pst.scales, pst.flips, pst.garbage, pst.failed)
	starts, kills := 0, 0
	for _, r := range reps {
		starts += r.starts
		kills += r.kills
	}
	swept, lives := 0, 0
	for _, r := range reps {
		n, l := sweptLives(r.log)
		swept, lives = swept+n, lives+l
	}
	fmt.Fprintf(&b, "  reconciler: %d starts, %d SIGKILLs, %d stopped gracefully at the end; %d of %d processes got ready (every cluster's services indexed; workers wait for it)\n", starts, kills, graceful, swept, lives)
	for _, who := range []string{"reconciler", "pipeline"} {
		fmt.Fprintf(&b, "  writes by the %s (ok/attempted): %s\n", who, writesLine(jr.writes[who], jr.attempts[who]))
	}
	fmt.Fprintf(&b, "  twins: %d registered (%d secret-token, %d plaintext-token), %d duplicates of a (source, spec) registered, %d twins deregistered, %d ACTIVE twins at the end\n",
		jr.twinsRegistered, jr.secretTwins, jr.plaintextTwins, jr.dupsRegistered, jr.twinsDeregister, activeTwins(view))
	fmt.Fprintf(&b, "  pipeline deploys overtaken by a concurrent reconciler write (ECS has no conditional update): %d\n", jr.raceOverwrites)
	fmt.Fprintf(&b, "  faults injected during the chaos (from /_sim/stats): %s\n", faultLine(statsChaos))
	if converged >= 0 {
		fmt.Fprintf(&b, "  converged %s after the pipeline stopped and the faults were lifted (unmet invariants: %s)\n", converged.Round(100*time.Millisecond), strings.Join(timeline, "; "))
	} else {
		fmt.Fprintf(&b, "  NOT converged within %s after the pipeline stopped\n", p.converge)
	}
	fmt.Fprintf(&b, "  DLQ: %d messages; total %s\n", dlqMessages, time.Since(started).Round(time.Second))
	for _, iv := range all {
		fmt.Fprintf(&b, "  %s\n", iv)
	}
	// Nothing printed may carry a token (a violation quoting a message or a
	// task definition could): redact both values wherever they would appear.
	redact := strings.NewReplacer(w.secretValue, "<token secret value>", w.plainToken, "<plaintext token>").Replace
	t.Log(redact(b.String()))
	if converged < 0 {
		t.Errorf("the reconciler did not converge within %s after the chaos; unmet at the last poll:", p.converge)
		for _, iv := range last {
			if len(iv.violations) > 0 {
				t.Errorf("  %s", redact(iv.String()))
			}
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
	if kills == 0 {
		t.Errorf("no reconciler process was killed: the chaos phase is too short for the kill intervals")
	}
	if t.Failed() || *keepLogs {
		for _, l := range logs {
			t.Logf("reconciler log kept for inspection: %s", keepLog(t, l))
		}
	}
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
