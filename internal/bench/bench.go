// Package bench is the harness behind `make bench` (issue 11): it serves
// awssim on 127.0.0.1, runs the reconciler against it (as a process, built
// from ./cmd/reconciler, and in this process through internal/controller),
// and measures convergence under AWS's throttle buckets, the calls of idle
// sweeps, event-to-UpdateService latency, the peak RSS of the process and
// what a naive scanner costs on the same fleet. It prints one table and
// writes it, with how it was made, to docs/benchmarks.md.
//
// Nothing is hard-coded: every number comes from a run. The pure parts
// (bounds, minimums, percentiles) are tested; the harness itself is not run
// by `go test`.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ecs-sidecar/reconciler/internal/config"
)

// Options of a run; DefaultOptions are issue 11's.
type Options struct {
	// Convergence: this many newly opted-in families of one service each,
	// under AWS's buckets with refill rates multiplied by ThrottleScale.
	ConvergeFamilies int
	ThrottleScale    float64
	ConvergeTimeout  time.Duration
	// The large fleet: Families families of ServicesPerFamily services
	// each, spread over Clusters clusters.
	Families, ServicesPerFamily, Clusters int
	FleetTimeout                          time.Duration
	// SweepInterval is both sweeps' interval in the process on the large
	// fleet (the idle sweeps measured are its second ones).
	SweepInterval time.Duration
	// Latency samples on the large fleet.
	LatencySamples int
	LatencyTimeout time.Duration
	LatencyGap     time.Duration
	// Reconciler is the binary to run; empty: built from ./cmd/reconciler
	// into a temporary directory.
	Reconciler string
	// Command is how the run was started, for the document.
	Command string
}

// DefaultOptions are the sizes issue 11 asks for.
func DefaultOptions() Options {
	return Options{
		ConvergeFamilies: 1000, ThrottleScale: 20, ConvergeTimeout: 5 * time.Minute,
		Families: 10000, ServicesPerFamily: 2, Clusters: 10, FleetTimeout: 6 * time.Minute, SweepInterval: time.Minute,
		LatencySamples: 200, LatencyTimeout: 10 * time.Second, LatencyGap: 50 * time.Millisecond,
	}
}

// Targets of issue 11.
const (
	TargetConvergenceRatio = 1.2
	TargetP99              = 50 * time.Millisecond
	TargetRSS              = 128 << 20
)

// Row is one line of the table.
type Row struct {
	Metric, Value, Target string
	// Status is "pass", "FAIL" or "info".
	Status string
}

// Report is a whole run.
type Report struct {
	Rows     []Row
	Started  time.Time
	Wall     time.Duration
	Machine  string
	Command  string
	Options  Options
	conv     convergence
	fleet    fleetResult
	Failures int
	// Notes are written under the table (findings of the run).
	Notes []string
}

func status(ok bool) string {
	if ok {
		return "pass"
	}
	return "FAIL"
}

// Run runs every measure and returns the report; progress goes to logw.
func Run(ctx context.Context, o Options, logw io.Writer) (*Report, error) {
	r := &Report{Started: time.Now(), Options: o, Command: o.Command, Machine: machine()}
	logf := func(format string, args ...any) {
		fmt.Fprintf(logw, "bench %6.1fs  %s\n", time.Since(r.Started).Seconds(), fmt.Sprintf(format, args...))
	}
	dir, err := os.MkdirTemp("", "reconciler-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := o.Reconciler
	if bin == "" {
		logf("building ./cmd/reconciler")
		if bin, err = buildReconciler(ctx, dir); err != nil {
			return nil, err
		}
	}
	if r.conv, err = runConvergence(ctx, o, bin, dir, logf); err != nil {
		return nil, fmt.Errorf("convergence: %w", err)
	}
	logf("convergence: %v for a bound of %v (ratio %.3f), %d throttled", r.conv.measured.Round(time.Millisecond), r.conv.bound, r.conv.ratio(), r.conv.throttled)
	if r.fleet, err = runFleet(ctx, o, bin, dir, logf); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	r.Wall = time.Since(r.Started)
	r.rows()
	return r, nil
}

// notes explain what the numbers of this run imply; each is written only
// when the run showed it.
func (r *Report) notes() {
	c, f := r.conv, r.fleet
	note := func(format string, args ...any) { r.Notes = append(r.Notes, fmt.Sprintf(format, args...)) }
	if d := f.serviceServed.Total() + f.familyServed.Total() - f.serviceSweep.Total() - f.familySweep.Total(); d != 0 {
		note("In the idle-sweep windows the simulator answered %d attempts more than the calls the process counts as answered: "+
			"the process's SDK reported a transport error (`ecs_sidecar_aws_api_calls_total{error_code=\"Transport\"}`) on a response the "+
			"simulator had written in full, and retried. Most likely the client-side race known as aws/aws-sdk-go-v2#2737 (`StatusCode: 200 "+
			"... deserialization failed, read tcp ...: use of closed network connection`: the client's transport closes the connection it "+
			"is reading a complete answer from), which the SDK retries since aws/aws-sdk-go-v2#2949; the controller's tests, which allow "+
			"one attempt, have shown that error against the simulator. So the table counts calls (answered attempts) and shows the served "+
			"attempts beside them.", d)
	}
	note("The 20,000-service fleet is instrumented before the measured process starts, by controller.Reconcile in batches of %d "+
		"families with a fresh controller each, so that the measured process is a restart on an instrumented fleet of %d services "+
		"(nothing to change) and the harness does not wait for %d paced rollouts.", fleetBatch, f.services, f.services)
	if f.settle > time.Minute {
		note("The restart took %v to reach idle on %d services with nothing to change: a cold start describes every revision "+
			"in use once and reconciles every family once; more than a minute is worth a profile.", f.settle.Round(time.Second), f.services)
	}
	if f.peakRSS >= TargetRSS {
		note("Peak RSS %.0f MiB misses the target. What the process keeps grows with the fleet (each service with its trimmed "+
			"deployments, each source revision with its content packed as JSON, %d revisions described here; "+
			"`go test -run '^$' -bench CacheBytes ./internal/controller` weighs it per service); the peak also holds the garbage "+
			"of the cold start's describes until the collector runs (GOGC 100 lets the heap reach twice what is live).",
			float64(f.peakRSS)/(1<<20), f.processDescribes)
	}
	for _, k := range []string{"GOMEMLIMIT", "GOGC"} {
		if v := os.Getenv(k); v != "" {
			note("The reconciler process ran with %s=%s, from the harness's environment (the Go runtime's default otherwise).", k, v)
		}
	}
	if c.throttled > 0 {
		note("%d calls of the convergence run were throttled by the simulator although the client-side buckets equal its buckets: "+
			"the two clocks start a few milliseconds apart; the SDK retried them.", c.throttled)
	}
}

func (r *Report) rows() {
	defer r.notes()
	c, f := r.conv, r.fleet
	add := func(metric, value, target, st string) {
		r.Rows = append(r.Rows, Row{metric, value, target, st})
		if st == "FAIL" {
			r.Failures++
		}
	}
	add(fmt.Sprintf("convergence: %d newly opted-in families (1 service each), buckets x%g, share 1.0, no canary: time to full coverage / bucket bound",
		c.families, c.scale),
		fmt.Sprintf("%.2fs / %.2fs = %.3f", c.measured.Seconds(), c.bound.Seconds(), c.ratio()),
		fmt.Sprintf("<= %.1f", TargetConvergenceRatio), status(c.ratio() <= TargetConvergenceRatio))
	add("convergence: RegisterTaskDefinition / UpdateService calls; throttled responses",
		fmt.Sprintf("%d / %d; %d", c.registers, c.updates, c.throttled), fmt.Sprintf("%d / %d", c.families, c.families),
		status(c.registers == c.families && c.updates == c.families))
	add(fmt.Sprintf("idle service sweep, %d services in %d clusters: calls / minimum", f.services, f.clusters),
		fmt.Sprintf("%d / %d (attempts served: %d)", f.serviceSweep.Total(), f.serviceMin.Total(), f.serviceServed.Total()), "= minimum", status(equal(f.serviceSweep, f.serviceMin)))
	add(fmt.Sprintf("idle family sweep, %d families: calls / minimum", f.families),
		fmt.Sprintf("%d / %d (attempts served: %d)", f.familySweep.Total(), f.familyMin.Total(), f.familyServed.Total()), "= minimum", status(equal(f.familySweep, f.familyMin)))
	add("families queued / reconciles while the idle sweeps ran", fmt.Sprintf("%d / %d", f.sweepQueued, f.sweepReconciles), "0 / 0",
		status(f.sweepQueued == 0 && f.sweepReconciles == 0))
	re := c.reDescribes + f.processReDescribes
	add("DescribeTaskDefinition of a revision the same process had described before (convergence run + 20,000-service run)",
		fmt.Sprintf("%d (%d + %d; of %d + %d revisions described)", re, c.reDescribes, f.processReDescribes,
			c.describes, f.processDescribes), "0", status(re == 0))
	p50, p99 := Percentile(f.latencies, 50), Percentile(f.latencies, 99)
	add(fmt.Sprintf("event-to-UpdateService latency, idle fleet of %d services, no throttling: p50", f.services),
		ms(p50), "", "info")
	add(fmt.Sprintf("event-to-UpdateService latency: p99 (%d samples, %d missed, %d sweeps ran during them)", len(f.latencies), f.missed, f.sweepsDuringSamples),
		ms(p99), fmt.Sprintf("< %v", TargetP99), status(f.missed == 0 && len(f.latencies) > 0 && p99 < TargetP99))
	add(fmt.Sprintf("restart on %d services: process start to idle (every family reconciled once)", f.services),
		fmt.Sprintf("%.1fs", f.settle.Seconds()), "", "info")
	add(fmt.Sprintf("peak RSS (VmHWM) of the reconciler process at %d services", f.services),
		fmt.Sprintf("%.1f MiB", float64(f.peakRSS)/(1<<20)), "< 128 MiB", status(f.peakRSS > 0 && f.peakRSS < TargetRSS))
	add("naive scanner (lists every service, describes every task definition) vs the reconciler's service sweep: calls per sweep",
		fmt.Sprintf("%d / %d = %.1fx", f.naive.Total(), f.serviceSweep.Total(), ratio(f.naive.Total(), f.serviceSweep.Total())), "", "info")
	add("naive scanner vs the reconciler's service sweep + family sweep",
		fmt.Sprintf("%d / %d = %.2fx", f.naive.Total(), f.serviceSweep.Total()+f.familySweep.Total(),
			ratio(f.naive.Total(), f.serviceSweep.Total()+f.familySweep.Total())), "", "info")
}

func equal(a, b CallCounts) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func machine() string {
	goVersion := runtime.Version()
	if out, err := exec.Command("go", "version").Output(); err == nil {
		goVersion = strings.TrimSpace(string(out))
	}
	host := runtime.GOOS + "/" + runtime.GOARCH
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				host += ", " + strings.TrimSpace(v)
				break
			}
		}
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = "; load average at the start " + strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return fmt.Sprintf("%d CPUs (nproc), %s; %s%s", runtime.NumCPU(), host, goVersion, load)
}

// PrintTable writes the table for a terminal.
func (r *Report) PrintTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tVALUE\tTARGET\tRESULT")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", row.Metric, row.Value, dash(row.Target), row.Status)
	}
	tw.Flush()
	fmt.Fprintf(w, "wall time %v; %d target(s) missed\n", r.Wall.Round(time.Second), r.Failures)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Markdown renders docs/benchmarks.md.
func (r *Report) Markdown() string {
	o, c, f := r.Options, r.conv, r.fleet
	var b strings.Builder
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("Written by `make bench` (cmd/bench, internal/bench); do not edit by hand, run it again.\n\n")
	fmt.Fprintf(&b, "- command: `%s`\n", r.Command)
	fmt.Fprintf(&b, "- date: %s\n", r.Started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- machine: %s\n", r.Machine)
	fmt.Fprintf(&b, "- wall time of the run: %v\n\n", r.Wall.Round(time.Second))
	b.WriteString("| metric | value | target | result |\n|---|---|---|---|\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", row.Metric, row.Value, dash(row.Target), row.Status)
	}
	b.WriteString("\n## How each number is made\n\n")
	reg, upd := scaledBucket("RegisterTaskDefinition", c.scale), scaledBucket("UpdateService", c.scale)
	fmt.Fprintf(&b, `Everything runs on 127.0.0.1 and stops by itself: the harness serves internal/awssim (ECS, SQS,
EventBridge, Secrets Manager) in its own process, seeds it through the simulator's Go API, and runs
the reconciler as a separate process (%[1]s, `+"`reconciler run --config FILE`"+`, images.resolve off:
the seeded task definitions state their command) against it over HTTP. Rollouts complete on the
wall clock. Every measure below is of that process, except where it says otherwise.

- **Convergence.** %[2]d families, each with one revision tagged `+"`ecs-sidecar/inject=true`"+` and one
  Fargate service on it, none instrumented yet (newly opted in). Then the simulator's ECS throttle
  buckets are turned on (AWS's bursts, refill rates x%[3]g, full) and the process starts with
  `+"`aws.apiBudget: {share: 1, bucketScale: %[3]g}`"+` (client-side buckets equal to the simulator's),
  `+"`rollouts: {maxInFlight: %[2]d, maxInFlightPerCluster: %[2]d, canary: false}`"+`, the queue fed by
  the EventBridge rule, other keys at their defaults. Time to full coverage runs from the process's
  start to the journal time of the last UpdateService, once every service runs a twin. The bound is
  what the buckets allow for %[2]d RegisterTaskDefinition calls (burst %[4]g, %[5]g/s) and %[2]d
  UpdateService calls (burst %[6]g, %[7]g/s) running in parallel: max over the two of
  max(0, N - burst) / refill = %.2[8]fs.
- **The 20,000-service fleet.** %[9]d families of %[10]d services each in %[11]d clusters, opted in by
  tag, instrumented first by the reconciler's own code (controller.Reconcile in the harness, over
  the simulator's Go API, in batches of %[12]d families each with a fresh controller; see the notes).
  Then the process starts on it: a restart, nothing cached. Keys:
  `+"`aws.apiBudget: {share: 1, bucketScale: %[13]d}`"+` (no throttling anywhere),
  `+"`sweeps: {services: {interval: %[14]v, jitter: 0}, families: {interval: %[14]v, jitter: 0, maxCallsPerSecond: %[15]d}}`"+`,
  the queue, other keys at their defaults. It was idle (every family reconciled once, nothing queued or in progress) %[16]v
  after it started.
- **Idle sweeps.** On the idle process, the next complete service sweep and family sweep (each
  ended by `+"`ecs_sidecar_sweeps_total`"+`), counted by operation from the process's own
  `+"`ecs_sidecar_aws_api_calls_total`"+` (attempts answered without an error: calls, not counting an
  attempt retried after a transport error); the two sweeps use disjoint operations, and no reconcile
  ran meanwhile. Beside it, "attempts served" is what the simulator answered the reconciler (a
  handler in front of it counts the reconciler's calls by user agent) in the same windows: more than
  the calls when an attempt was retried after a transport error (see the notes). Minimums: the service sweep, ListClusters pages of 100 + ListServices pages
  of 100 per cluster + DescribeServices by 10 (%[17]s); the family sweep as DESIGN.md defines it,
  ListTaskDefinitionFamilies pages of 100 + each family's newest revisions (one ListTaskDefinitions)
  and their tags (one ListTagsForResource) (%[18]s). Measured: service sweep %[19]s; family sweep %[20]s.
- **DescribeTaskDefinition of seen revisions.** The same handler reads the revision of each
  DescribeTaskDefinition and counts the successful ones by revision, per process (the restarted
  process starts with an empty cache, so each process is counted on its own): a describe of a
  revision that process had described before counts, over each process's whole life.
- **Latency** (the same process, idle, no throttling), taken right after the idle sweeps, in the gap
  before the next ones (the table says how many sweeps ended during the samples). %[21]d samples, %[22]v apart: a pipeline
  registers a new untagged revision of a family (it inherits the opt-in) and updates one service to
  it, as CI does, through the simulator's Go API. Latency runs from the journal time of the
  pipeline's UpdateService to the journal time of the reconciler's UpdateService of that service to
  the new twin: the event's way through EventBridge and SQS, the reconcile, the twin's
  RegisterTaskDefinition and the UpdateService.
- **Peak RSS.** VmHWM from /proc/PID/status of that same process after the samples: it went through
  the first sweeps, %[9]d reconciles from a cold cache, the idle sweeps and the samples.
- **Naive scanner** (in the harness, on the same fleet, same run): what existing scanners do on
  every sweep, ListClusters, ListServices (all pages), DescribeServices by 10 and
  DescribeTaskDefinition of every service's task definition (%[23]s), counted by the scanner and
  checked against the simulator's counters. Compared with the reconciler's service sweep (the
  frequent one, default every 5m) and with a service sweep plus a family sweep (the slow one,
  default every 30m).
`, processDescription(o), c.families, c.scale, reg.Burst, reg.Refill, upd.Burst, upd.Refill, c.bound.Seconds(),
		f.families, o.ServicesPerFamily, f.clusters, fleetBatch, maxBucketScale(), o.SweepInterval, 20*maxBucketScale(),
		f.settle.Round(time.Second), f.serviceMin, f.familyMin, f.serviceSweep, f.familySweep,
		o.LatencySamples, o.LatencyGap, f.naive)
	if len(r.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

func processDescription(o Options) string {
	if o.Reconciler != "" {
		return "`" + o.Reconciler + "`"
	}
	return "a binary"
}

func maxBucketScale() int { return config.MaxBucketScale }
