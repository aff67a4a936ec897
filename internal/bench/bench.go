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
	"slices"
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
	// fleet (the idle sweeps measured are its second ones); longer than
	// the restart under RestartScale's buckets, so that the restart's
	// calls are its first sweeps' and its reconciles' only.
	SweepInterval time.Duration
	// RestartScale multiplies the refills of AWS's buckets (both the
	// simulator's and the process's, which takes the default share) for
	// the restart on the large fleet and everything measured after it.
	RestartScale float64
	// The first install: InstallFamilies families of
	// InstallServicesPerFamily services in InstallClusters clusters, time
	// scaled down by InstallScale, rollouts paced by InstallPacing (its
	// deadline is the default's, scaled); the run with a failure fails a
	// rollout once FailAt are in flight.
	InstallFamilies, InstallServicesPerFamily, InstallClusters int
	InstallScale                                               float64
	InstallPacing                                              RolloutPacing
	FailAt                                                     int
	InstallTimeout                                             time.Duration
	// BigFamilies, when set, runs a second fleet of BigFamilies families
	// (ServicesPerFamily services each) for its peak RSS.
	BigFamilies int
	// Latency samples on the large fleet.
	LatencySamples int
	LatencyTimeout time.Duration
	LatencyGap     time.Duration
	// Reconciler is the binary to run; empty: built from ./cmd/reconciler
	// into a temporary directory.
	Reconciler string
	// Only, when set, is a comma-separated list of the scenarios to run
	// (convergence, install, fleet, big); the table is then partial.
	Only string
	// Command is how the run was started, for the document.
	Command string
}

// DefaultOptions are the sizes issue 11 asks for.
func DefaultOptions() Options {
	return Options{
		ConvergeFamilies: 1000, ThrottleScale: 20, ConvergeTimeout: 5 * time.Minute,
		Families: 10000, ServicesPerFamily: 2, Clusters: 10, FleetTimeout: 6 * time.Minute, SweepInterval: 90 * time.Second,
		RestartScale:    50,
		InstallFamilies: 500, InstallServicesPerFamily: 2, InstallClusters: 10, InstallScale: 100,
		// The defaults' pacing (a ramp from 5 to 100, 20 a cluster), with
		// the canary on: slower than the default (off), so an upper bound.
		InstallPacing: RolloutPacing{MaxInFlight: config.DefaultMaxInFlight, PerCluster: config.DefaultMaxInFlightPerCluster,
			RampStart: config.DefaultRampStart, Canary: true}, FailAt: 30,
		InstallTimeout: 5 * time.Minute,
		LatencySamples: 200, LatencyTimeout: 10 * time.Second, LatencyGap: 100 * time.Millisecond,
	}
}

// Targets of issue 11.
const (
	TargetConvergenceRatio = 1.2
	TargetP99              = 50 * time.Millisecond
	TargetRSS              = 128 << 20
	// Issue 21's.
	TargetRestartCalls  = 13000
	TargetRestartRatio  = 1.1
	TargetFamilyCalls   = 2000
	TargetSweepServices = 50000
	TargetInstall       = 90 * time.Minute
	TargetScannerRatio  = 3.0
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
	installs []installResult
	big      bigFleet
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

// runs says whether a scenario is to run (Only empty: all of them).
func (o Options) runs(scenario string) bool {
	return o.Only == "" || slices.Contains(strings.Split(o.Only, ","), scenario)
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
	if os.Getenv("BENCH_KEEP") == "" { // BENCH_KEEP=1 keeps the processes' configs and logs
		defer os.RemoveAll(dir)
	}
	bin := o.Reconciler
	if bin == "" {
		logf("building ./cmd/reconciler")
		if bin, err = buildReconciler(ctx, dir); err != nil {
			return nil, err
		}
	}
	if o.runs("convergence") {
		if r.conv, err = runConvergence(ctx, o, bin, dir, logf); err != nil {
			return nil, fmt.Errorf("convergence: %w", err)
		}
	}
	logf("convergence: %v for a bound of %v (ratio %.3f), %d throttled", r.conv.measured.Round(time.Millisecond), r.conv.bound, r.conv.ratio(), r.conv.throttled)
	for _, fail := range []bool{false, true} {
		if !o.runs("install") {
			break
		}
		in, err := runInstall(ctx, o, bin, dir, fail, logf)
		if err != nil {
			return nil, fmt.Errorf("first install: %w", err)
		}
		r.installs = append(r.installs, in)
	}
	if o.runs("fleet") {
		if r.fleet, err = runFleet(ctx, o, bin, dir, logf); err != nil {
			return nil, fmt.Errorf("fleet: %w", err)
		}
	}
	if o.BigFamilies > 0 && o.runs("big") {
		if r.big, err = runBigFleet(ctx, o, bin, dir, logf); err != nil {
			return nil, fmt.Errorf("big fleet: %w", err)
		}
	}
	r.Wall = time.Since(r.Started)
	r.rows()
	return r, nil
}

// notes explain what the numbers of this run imply; each is written only
// when the run showed it.
func (r *Report) notes() {
	o, c, f := r.Options, r.conv, r.fleet
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
		"(nothing to change); the first installs measure instrumenting through the real path.", fleetBatch, f.services)
	if n := ECSCalls(f.restartCalls); n > TargetRestartCalls {
		note("The restart makes %d ECS calls where the target is %d: %s. It describes %d task definitions for %d distinct "+
			"revisions in use (a family's source and its twin) and makes %d DescribeServices calls where one service sweep makes %d. "+
			"The first reconciles take the first service sweep's reads and one account-wide listing of revisions; what is left is "+
			"the source read: a twin in use is checked against its source's content, so each family's source is described too.",
			n, TargetRestartCalls, f.restartCalls, f.restartCalls["DescribeTaskDefinition"], f.distinctInUse,
			f.restartCalls["DescribeServices"], f.serviceMin["DescribeServices"])
	}
	if f.restartMeasured > o.SweepInterval {
		note("The restart took longer than the process's sweep interval (%v): its calls and its bound include those of the "+
			"service sweeps after the first that ran until it was idle (%d had ended by then; a sweep is %d calls), so the "+
			"restart proper made up to that many calls fewer.", o.SweepInterval, f.restartSweeps, f.serviceMin.Total())
	}
	if sb := BucketBound(f.serviceSweep, DefaultShare, f.restartScale); sb > 0 && f.serviceSweepTime > sb*3/2 {
		note("The idle service sweep took %.1fs at x%g against a bucket bound of %.1fs: its calls run one after another, so on this "+
			"machine their latency, not the bucket, sets its pace at x%g. At AWS's rates each call waits about 100 ms for a token and "+
			"the bucket decides: the additive conversion (bound + the measured excess) is then the estimate, the proportional one its "+
			"upper end.", f.serviceSweepTime.Seconds(), f.restartScale, sb.Seconds(), f.restartScale)
	}
	for _, in := range r.installs {
		if in.withFailure && in.lowAfterFailure > in.pacing.RampStart {
			note("After the failure the window went back to %d, but each completion of a rollout admitted before it widens the "+
				"window by one again: %d rollouts were in flight at the failure and the fewest within two rollout times after it were "+
				"%d; the brake slows the install (%s against %s without the failure) rather than stopping it.",
				in.pacing.RampStart, in.atFailure, in.lowAfterFailure, Minutes(in.real()), Minutes(r.installs[0].real()))
			continue
		}
		if in.withFailure {
			continue
		}
		note("The first installs convert by multiplying the measured time by %g: whatever the machine adds to each round of "+
			"rollouts (an event's way through the queue, a reconcile) is multiplied too, so the real times are upper estimates. "+
			"Their rollouts are %v long here.", in.scale, scaledDown(realRollout, in.scale))
		perService := float64(ByBucket(in.calls)["service read"]) / float64(max(1, in.services))
		note("The first install's reconciler made %.0f service-read calls (DescribeServices, ListServiceDeployments, ListServices) per service (%s in all): "+
			"at AWS's rates and share 0.5 that bucket alone takes %s, so at a larger ceiling it, not the rollouts, would bound a "+
			"first install.", perService, in.calls, Minutes(BucketBound(CallCounts{"DescribeServices": ByBucket(in.calls)["service read"]}, DefaultShare, 1)))
	}
	if p99 := Percentile(f.latencies, 99); p99 >= TargetP99 {
		note("The latency p99 (%v) misses its target in this run. The samples ran on the throttled process (buckets x%g, share 0.5, "+
			"the tokens of one sample's calls well within the bursts), on a machine shared with other work (the load average is in "+
			"the header): the p50 is %v.", p99.Round(100*time.Microsecond), f.restartScale, Percentile(f.latencies, 50).Round(100*time.Microsecond))
	}
	if r.big.services == 0 {
		note("Peak RSS at %d services is not measured by default: its own fleet costs the seeding and the in-process "+
			"instrumenting of %d services, a restart with nothing cached and one more sweep; the %d-service fleet's took %v "+
			"here, and the larger one scales with its services (about %.1f times), more than `make bench`'s 10 minutes allow "+
			"on this machine. `go run ./cmd/bench --reconciler bin/reconciler --only big --big-families %d --out FILE` runs it alone.",
			TargetSweepServices, TargetSweepServices, f.services, f.setupToIdle.Round(time.Second),
			float64(TargetSweepServices)/float64(max(1, f.services)), TargetSweepServices/2)
	} else {
		note("The %d-service fleet for peak RSS took %v of the run (seeding, instrumenting, restart to idle in %v, one sweep).",
			r.big.services, r.big.cost.Round(time.Second), r.big.settle.Round(time.Second))
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
	S := f.restartScale

	// Convergence.
	realConv := ConvergenceBound(c.families, ClientBucket(scaledBucket("RegisterTaskDefinition", 1), DefaultShare, 1),
		ClientBucket(scaledBucket("UpdateService", 1), DefaultShare, 1))
	add(fmt.Sprintf("convergence: %d newly opted-in families (1 service each), buckets x%g, share 1.0, no canary: time to full coverage / bucket bound",
		c.families, c.scale),
		fmt.Sprintf("%.2fs / %.2fs = %.3f; at AWS's rates and share %g: %s (bound %s)", c.measured.Seconds(), c.bound.Seconds(), c.ratio(),
			DefaultShare, realRange(c.measured, c.bound, realConv), Minutes(realConv)),
		fmt.Sprintf("<= %.1f", TargetConvergenceRatio), status(c.ratio() <= TargetConvergenceRatio))
	add("convergence: RegisterTaskDefinition / UpdateService calls; throttled responses",
		fmt.Sprintf("%d / %d; %d", c.registers, c.updates, c.throttled), fmt.Sprintf("%d / %d", c.families, c.families),
		status(c.registers == c.families && c.updates == c.families))

	// First install.
	for _, in := range r.installs {
		r.installRows(add, in)
	}
	if len(r.installs) > 0 {
		in := r.installs[0]
		rounds := (in.services + 4) / 5
		add(fmt.Sprintf("first install of %d services at the previous defaults (maxInFlight 5, no ramp), computed: %d rounds of 5 rollouts x %v",
			in.services, rounds, realRollout),
			Minutes(time.Duration(rounds)*realRollout), fmt.Sprintf("<= %v", TargetInstall), status(time.Duration(rounds)*realRollout <= TargetInstall))
	}

	// The restart.
	rb, rr := BucketBound(f.restartCalls, DefaultShare, S), BucketBound(f.restartCalls, DefaultShare, 1)
	tdReads := f.restartCalls["DescribeTaskDefinition"]
	add(fmt.Sprintf("restart on %d services (%d families), buckets x%g, share %g: ECS calls until idle, by bucket", f.services, f.families, S, DefaultShare),
		fmt.Sprintf("%d (%s; besides, %d tag:GetResources)", ECSCalls(f.restartCalls), ecsOnly(ByBucket(f.restartCalls)), f.restartCalls["GetResources"]),
		fmt.Sprintf("<= %d", TargetRestartCalls), status(ECSCalls(f.restartCalls) <= TargetRestartCalls))
	add("restart: DescribeTaskDefinition calls / distinct task definitions the services run",
		fmt.Sprintf("%d / %d = %.2f (over the process's whole life, latency samples included: %d distinct revisions described)",
			tdReads, f.distinctInUse, ratio(tdReads, f.distinctInUse), f.processDescribes),
		"<= 1.00", status(f.distinctInUse > 0 && tdReads <= f.distinctInUse))
	add(fmt.Sprintf("restart: start to idle, measured at x%g / bound of its calls at x%g (slowest bucket: %s)", S, S, SlowestBucket(f.restartCalls, DefaultShare, S)),
		fmt.Sprintf("%.1fs / %.1fs = %.2f; at AWS's rates: %s (bound %s)", f.restartMeasured.Seconds(), rb.Seconds(), ratioD(f.restartMeasured, rb),
			realRange(f.restartMeasured, rb, rr), Minutes(rr)),
		fmt.Sprintf("<= %.1f", TargetRestartRatio), status(rb > 0 && ratioD(f.restartMeasured, rb) <= TargetRestartRatio))
	ideal := BucketBound(CallCounts{"DescribeTaskDefinition": f.distinctInUse}, DefaultShare, 1)
	add(fmt.Sprintf("restart at AWS's rates vs the issue's bound (one read per distinct revision in use, %d reads at share %g)", f.distinctInUse, DefaultShare),
		fmt.Sprintf("%s / %s = %.2f", Minutes(ToRealAdditive(f.restartMeasured, rb, rr)), Minutes(ideal), ratioD(ToRealAdditive(f.restartMeasured, rb, rr), ideal)),
		fmt.Sprintf("<= %.1f", TargetRestartRatio), status(ideal > 0 && ratioD(ToRealAdditive(f.restartMeasured, rb, rr), ideal) <= TargetRestartRatio))

	// Idle sweeps.
	add(fmt.Sprintf("idle service sweep, %d services in %d clusters: calls / minimum", f.services, f.clusters),
		fmt.Sprintf("%d / %d (attempts served: %d)", f.serviceSweep.Total(), f.serviceMin.Total(), f.serviceServed.Total()), "= minimum", status(equal(f.serviceSweep, f.serviceMin)))
	sb, sr := BucketBound(f.serviceSweep, DefaultShare, S), BucketBound(f.serviceSweep, DefaultShare, 1)
	add(fmt.Sprintf("idle service sweep: duration at x%g / bound; at AWS's rates, share %g, vs its interval", S, DefaultShare),
		fmt.Sprintf("%.1fs / %.1fs = %.2f; %s (bound %s) / %v", f.serviceSweepTime.Seconds(), sb.Seconds(), ratioD(f.serviceSweepTime, sb),
			realRange(f.serviceSweepTime, sb, sr), Minutes(sr), realServiceInterval),
		fmt.Sprintf("< %v", realServiceInterval), status(ToRealAdditive(f.serviceSweepTime, sb, sr) < realServiceInterval))
	big := ServiceSweepMinimum(spread(TargetSweepServices, f.clusters))
	bigReal := BucketBound(big, DefaultShare, 1)
	add(fmt.Sprintf("service sweep of %d services in %d clusters, computed (the minimum, which the %d-service sweep met): calls; bound at AWS's rates, share %g, vs its interval",
		TargetSweepServices, f.clusters, f.services, DefaultShare),
		fmt.Sprintf("%d (%s); %s / %v = %.2f", big.Total(), ecsOnly(ByBucket(big)), Minutes(bigReal), realServiceInterval, ratioD(bigReal, realServiceInterval)),
		fmt.Sprintf("< %v", realServiceInterval), status(bigReal < realServiceInterval))
	add(fmt.Sprintf("idle family sweep, %d families, default config (tag:GetResources): ECS calls / minimum", f.families),
		fmt.Sprintf("%d / %d (%s; attempts served: %d)", ECSCalls(f.familySweep), ECSCalls(f.familyMin), f.familySweep, f.familyServed.Total()),
		fmt.Sprintf("<= %d", TargetFamilyCalls), status(equal(f.familySweep, f.familyMin) && ECSCalls(f.familySweep) <= TargetFamilyCalls))
	famReal := DrainTime(f.familySweep.Total(), Bucket{Burst: 1, Refill: DefaultFamilyRate})
	add(fmt.Sprintf("idle family sweep: duration at %g calls/s (the default %g, x%g); at the default rate vs its interval", DefaultFamilyRate*S, DefaultFamilyRate, S),
		fmt.Sprintf("%.1fs; %s / %v = %.3f", f.familySweepTime.Seconds(), Minutes(famReal), realFamilyInterval, ratioD(famReal, realFamilyInterval)),
		fmt.Sprintf("< %v", realFamilyInterval), status(famReal < realFamilyInterval))
	add("families queued / reconciles while the idle sweeps ran", fmt.Sprintf("%d / %d", f.sweepQueued, f.sweepReconciles), "0 / 0",
		status(f.sweepQueued == 0 && f.sweepReconciles == 0))
	re := c.reDescribes + f.processReDescribes
	add("DescribeTaskDefinition of a revision the same process had described before (convergence run + 20,000-service run)",
		fmt.Sprintf("%d (%d + %d; of %d + %d revisions described)", re, c.reDescribes, f.processReDescribes,
			c.describes, f.processDescribes), "0", status(re == 0))

	// Latency and memory.
	p50, p99 := Percentile(f.latencies, 50), Percentile(f.latencies, 99)
	add(fmt.Sprintf("event-to-UpdateService latency, idle fleet of %d services, buckets x%g, share %g: p50", f.services, S, DefaultShare),
		ms(p50), "", "info")
	add(fmt.Sprintf("event-to-UpdateService latency: p99 (%d samples, %d missed, %d sweeps ran during them)", len(f.latencies), f.missed, f.sweepsDuringSamples),
		ms(p99), fmt.Sprintf("< %v", TargetP99), status(f.missed == 0 && len(f.latencies) > 0 && p99 < TargetP99))
	add(fmt.Sprintf("peak RSS (VmHWM) of the reconciler process at %d services", f.services),
		fmt.Sprintf("%.1f MiB", float64(f.peakRSS)/(1<<20)), "< 128 MiB", status(f.peakRSS > 0 && f.peakRSS < TargetRSS))
	if b := r.big; b.services > 0 {
		add(fmt.Sprintf("peak RSS (VmHWM) of the reconciler process at %d services (restart to idle, one idle service sweep)", b.services),
			fmt.Sprintf("%.1f MiB", float64(b.peakRSS)/(1<<20)), "< 128 MiB", status(b.peakRSS > 0 && b.peakRSS < TargetRSS))
	} else {
		add(fmt.Sprintf("peak RSS at %d services", TargetSweepServices), "not run (`--big-families 25000`, see the notes)", "< 128 MiB", "info")
	}

	// Scanners.
	add("naive scanner (lists every service, describes every service's task definition) vs the reconciler's service sweep: calls per sweep",
		fmt.Sprintf("%d / %d = %.1fx", f.naive.Total(), f.serviceSweep.Total(), ratio(f.naive.Total(), f.serviceSweep.Total())), "", "info")
	add("de-duplicating scanner (describes each distinct task definition once per sweep): calls per sweep",
		fmt.Sprintf("%d (%s)", f.dedup.Total(), f.dedup), "", "info")
	recon := PerHour(f.serviceSweep.Total(), realServiceInterval) + PerHour(f.familySweep.Total(), realFamilyInterval)
	scan := PerHour(f.dedup.Total(), realServiceInterval)
	add(fmt.Sprintf("calls per hour at the default intervals: de-duplicating scanner every %v / reconciler (service sweep every %v + family sweep every %v, GetResources included)",
		realServiceInterval, realServiceInterval, realFamilyInterval),
		fmt.Sprintf("%.0f / %.0f = %.2fx", scan, recon, scan/recon), fmt.Sprintf(">= %.0fx", TargetScannerRatio), status(recon > 0 && scan/recon >= TargetScannerRatio))
}

// installRows are the rows of one first install.
func (r *Report) installRows(add func(metric, value, target, st string), in installResult) {
	p := in.pacing
	what := fmt.Sprintf("first install of %d services (%d families x %d, %d clusters), real path (events, sweeps), canary first, ramp %d -> ceiling %d (%d per cluster), %v rollouts, time ÷%g",
		in.services, in.families, in.services/max(1, in.families), in.clusters, p.RampStart, p.MaxInFlight, p.PerCluster, realRollout, in.scale)
	if !in.withFailure {
		add(what+": measured; real (x"+fmt.Sprint(in.scale)+")",
			fmt.Sprintf("%.1fs; %s (%d covered, at most %d in flight; calls %s, %d throttled; their bound alone at AWS's rates: %s, %s)",
				in.measured.Seconds(), Minutes(in.real()), in.covered, in.maxInFlight, ecsOnly(ByBucket(in.calls)), in.throttled,
				Minutes(BucketBound(in.calls, DefaultShare, 1)), SlowestBucket(in.calls, DefaultShare, 1)),
			fmt.Sprintf("<= %v", TargetInstall), status(in.covered == in.services && in.real() <= TargetInstall))
		return
	}
	// Braked: the process said so, and the rollouts in flight came down to
	// the start within two rollout times (those admitted before the failure
	// drain; no new ones are admitted until fewer than the window are).
	braked := len(in.brakes) > 0 && strings.HasSuffix(in.brakes[0], fmt.Sprintf("→ %d", p.RampStart)) && in.lowAfterFailure <= p.RampStart
	add("the same with one failing rollout (circuit breaker, rollback) once "+fmt.Sprint(r.Options.FailAt)+" are in flight: rollouts in flight at the failure -> fewest within 2 rollout times after -> most later; window",
		fmt.Sprintf("%d -> %d -> %d; window braked %s; %s real (%.1fs); %d of %d covered (the failed family's services that had not completed stay on its source)",
			in.atFailure, in.lowAfterFailure, in.maxAfterFailure, strings.Join(in.brakes, ", "), Minutes(in.real()), in.measured.Seconds(), in.covered, in.services),
		// The failed family's services that had not completed a rollout of
		// its twin before the failure stay on the source: at most all of
		// them (the canary failed), at least one (the failed rollout).
		fmt.Sprintf("brakes to %d", p.RampStart), status(braked && in.covered >= in.services-in.services/max(1, in.families) && in.covered < in.services))
}

// real is a time measured against scaled bound sb converted to AWS's
// rates (real bound rb): the additive estimate, to the proportional one.
func realRange(measured, sb, rb time.Duration) string {
	lo, hi := ToRealAdditive(measured, sb, rb), ToReal(measured, sb, rb)
	if Minutes(lo) == Minutes(hi) {
		return Minutes(lo)
	}
	return Minutes(lo) + " to " + Minutes(hi)
}

// ecsOnly drops the pseudo bucket of calls that are not ECS's.
func ecsOnly(byBucket CallCounts) CallCounts {
	out := byBucket.clone()
	delete(out, Tagging)
	return out
}

// spread puts n services in k clusters as evenly as possible.
func spread(n, k int) []int {
	out := make([]int, k)
	for i := range out {
		out[i] = n / k
		if i < n%k {
			out[i]++
		}
	}
	return out
}

func ratioD(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
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
	S := f.restartScale
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
EventBridge, Secrets Manager, the Resource Groups Tagging API) in its own process, seeds it through the
simulator's Go API, and runs the reconciler as a separate process (%s, `+"`reconciler run --config FILE`"+`,
images.resolve off: the seeded task definitions state their command) against it over HTTP. Rollouts
complete on the wall clock.

**Times at AWS's rates.** The simulator has ECS's buckets of reference/aws-facts.md §2 (AWS's bursts,
refill rates multiplied by a scale S) and the process takes its share of the same scaled buckets
(`+"`aws.apiBudget: {share, bucketScale: S}`"+`). Each run's calls are counted by the bucket they draw from
(tag:GetResources draws from none of ECS's: its own quota). The bound of a run is the least time its
calls take through the process's buckets, which drain in parallel: the largest over the buckets of
max(0, calls - burst x share) / (refill x share x S) (internal/bench/calc.go, BucketBound). A time
measured at scale S is converted to AWS's rates two ways, which bracket the real time: bound(1) +
(measured - bound(S)), the time beyond the bound taken as the machine's overhead, which does not
scale (ToRealAdditive), to measured / bound(S) x bound(1), the run's ratio to its bound kept at AWS's
rates (ToReal). Rows with a target show the measured ratio to the bound at S. The
first installs scale time itself (rollouts, sweep intervals, the rollout deadline and poll divided by S,
refills multiplied by S): their real time is measured x S.

- **Convergence.** %d families, each with one revision tagged `+"`ecs-sidecar/inject=true`"+` and one
  Fargate service on it, none instrumented yet. The simulator's buckets at x%g, the process at
  `+"`aws.apiBudget: {share: 1, bucketScale: %g}`"+`, `+"`rollouts: {maxInFlight: %d, maxInFlightPerCluster: %d, canary: false}`"+`.
  Time to full coverage runs from the process's start to the journal time of the last UpdateService.
  The bound: %d RegisterTaskDefinition calls (burst %g, %g/s) and %d UpdateService calls (burst %g,
  %g/s) in parallel = %.2fs. At AWS's rates and the default share 0.5 the same calls take the bound
  of the task definition modify bucket at 10 tokens, 0.5/s.
`, processDescription(o), c.families, c.scale, c.scale, c.families, c.families, c.families, reg.Burst, reg.Refill,
		c.families, upd.Burst, upd.Refill, c.bound.Seconds())
	if len(r.installs) > 0 {
		in := r.installs[0]
		p := in.pacing
		fmt.Fprintf(&b, `- **First install** (both runs). %d families of %d services in %d clusters, opted in by tag, each service
  with the deployment circuit breaker and rollback, nothing instrumented. Time divided by %g: the
  simulator's rollouts take %v (5 minutes), its buckets and the process's refill x%g; the process has the
  default config but for `+"`sweeps: {services: {interval: %v}, families: {interval: %v, maxCallsPerSecond: %g}}`"+`
  (the defaults' 5m, 30m and 2/s, scaled) and `+"`rollouts: {canary: true, rampStart: %d, maxInFlight: %d, maxInFlightPerCluster: %d, deadline: %v, poll: %v}`"+`
  (the defaults' ramp and bounds, with the canary on, which the default leaves off: an upper
  bound for the defaults; the previous defaults, 5 at once with no ramp, are the computed row). It finds the work through
  its first sweeps and ECS's deployment events on the queue, as in an account. Measured from the
  process's start until every service runs a twin (the failure run: all but the failed family's) and
  no rollout is in flight; polled every 50ms, like the rollouts in flight (the simulator's pending
  rollouts). The failure run arms the simulator's rollout rule once %d rollouts are in flight: the
  next twin rollout to reach its outcome fails (circuit breaker, rollback to the source), and so do
  later twin rollouts of that family. "Window braked" is the process's own log line
  (`+"`rollout window braked after a failed rollout`"+`, from -> to). The previous defaults' row is
  computed: services / 5 in flight x 5 minutes, with no overhead.
`, in.families, in.services/max(1, in.families), in.clusters, in.scale, scaledDown(realRollout, in.scale), in.scale,
			scaledDown(realServiceInterval, in.scale), scaledDown(realFamilyInterval, in.scale), DefaultFamilyRate*in.scale,
			p.RampStart, p.MaxInFlight, p.PerCluster, p.deadline, p.poll, o.FailAt)
	}
	fmt.Fprintf(&b, `- **The 20,000-service fleet.** %d families of %d services each in %d clusters, opted in by
  tag, instrumented first by the reconciler's own code (controller.Reconcile in the harness, over the
  simulator's Go API, in batches of %d families each with a fresh controller; see the notes). Then the
  simulator's buckets are turned on at x%g and the process starts on the fleet: a restart, nothing
  cached, with `+"`aws.apiBudget: {bucketScale: %g}`"+` (the default share, 0.5),
  `+"`sweeps: {services: {interval: %v, jitter: 0}, families: {interval: %v, jitter: 0, maxCallsPerSecond: %g}}`"+`
  (the family sweep's default rate x%g; taggingAPI at its default, on), the queue, other keys at their
  defaults. The restart's calls are what the simulator answered the process (a handler in front of it
  counts the reconciler's calls by user agent, tag:GetResources included) from its start until it was
  first idle (every family reconciled once, nothing queued or in progress, polled every second); its
  time runs to that poll. "Distinct task definitions the services run" is what the de-duplicating
  scanner found (the twins).
- **Idle sweeps.** On the idle process, the next complete service sweep and family sweep (each ended
  by `+"`ecs_sidecar_sweeps_total`"+`), counted by operation from the process's own
  `+"`ecs_sidecar_aws_api_calls_total`"+` (answered attempts), durations from
  `+"`ecs_sidecar_sweep_last_duration_seconds`"+`. Minimums: the service sweep, ListClusters pages of 100 +
  ListServices pages of 100 per cluster + DescribeServices by 10 (%s); the family sweep through
  tag:GetResources, ListTaskDefinitions pages of 100 over the account's ACTIVE revisions + GetResources
  pages of 100 per opt-in tag key (inject, profile) over the revisions carrying it (%s). Measured:
  service sweep %s; family sweep %s. The family sweep paces all its calls (GetResources included) at
  maxCallsPerSecond, so at the default 2/s its time is its calls / 2 s. The 50,000-service sweep is
  computed, not run: the minimum for 50,000 services in the same %d clusters, which the measured
  sweep met exactly, through the service read bucket at share 0.5 (50 tokens, 10/s).
- **Latency** (the same process, idle, buckets x%g, share 0.5), right after the idle sweeps. %d samples,
  %v apart: a pipeline registers a new untagged revision of a family and updates one service to it;
  latency runs from the journal time of the pipeline's UpdateService to that of the reconciler's
  UpdateService of that service to the new twin.
- **Peak RSS.** VmHWM from /proc/PID/status of that same process after the samples.
- **Scanners** (in the harness, on the same fleet, before the restart, no throttling). The naive one
  lists every service (ListClusters, ListServices, DescribeServices by 10) and describes every
  service's task definition (%s); the de-duplicating one describes each distinct task definition once
  per sweep (%s). Calls per hour at the default intervals: the scanner every 5 minutes (as often as the
  reconciler's service sweep) against the reconciler's service sweep every 5 minutes and family sweep
  every 30 minutes (GetResources counted as calls).
`, f.families, o.ServicesPerFamily, f.clusters, fleetBatch, S, S, o.SweepInterval, o.SweepInterval, DefaultFamilyRate*S, S,
		f.serviceMin, f.familyMin, f.serviceSweep, f.familySweep, f.clusters,
		S, o.LatencySamples, o.LatencyGap, f.naive, f.dedup)
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
