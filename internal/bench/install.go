package bench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
)

// The real times the install runs scale down (issue 21): a rollout takes
// five minutes; the sweeps run at their default intervals; a rollout
// without an outcome fails after the default deadline.
const (
	realRollout         = 5 * time.Minute
	realServiceInterval = 5 * time.Minute
	realFamilyInterval  = 30 * time.Minute
	realDeadline        = 30 * time.Minute
	realPoll            = 15 * time.Second // rollouts.poll's default
)

// installResult is one first install.
type installResult struct {
	services, families, clusters int
	scale                        float64 // time scale: real = measured × scale
	pacing                       RolloutPacing
	withFailure                  bool

	measured  time.Duration // process start to the last rollout's end
	covered   int           // services on a twin at the end
	calls     CallCounts    // the reconciler's calls, by operation
	throttled int
	// The rollouts in flight over time: the most before the failure, at
	// it, the fewest in the rollout time after it and the most after.
	maxInFlight                                 int
	atFailure, lowAfterFailure, maxAfterFailure int
	failedFamily                                string
	failedAt                                    time.Duration
	brakes                                      []string // the process's "rollout window braked" lines (from → to)
}

func (r installResult) real() time.Duration { return time.Duration(float64(r.measured) * r.scale) }

// scaled is a real duration on the run's clock.
func scaledDown(d time.Duration, scale float64) time.Duration {
	return time.Duration(float64(d) / scale)
}

// twinRule fails the first twin rollout to reach a checkpoint once armed,
// and every later twin rollout of that family (the canary's rollback to the
// source succeeds).
type twinRule struct {
	mu     sync.Mutex
	armed  bool
	family string
	at     time.Time
}

func (t *twinRule) arm() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.armed = true
}

func (t *twinRule) picked() (string, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.family, t.at
}

func (t *twinRule) rule(td *types.TaskDefinition) string {
	if len(td.ContainerDefinitions) < 2 { // a source revision: no sidecar
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	fam := aws.ToString(td.Family)
	if t.family == "" && t.armed {
		t.family, t.at = fam, time.Now()
	}
	if fam != "" && fam == t.family {
		return "ECS deployment circuit breaker: tasks failed to start."
	}
	return ""
}

// runInstall is a first install through the real path: o.InstallFamilies
// families of o.InstallServicesPerFamily services, opted in by tag, none
// instrumented, the process started on them with the default config scaled
// down in time by o.InstallScale (buckets' refills ×scale, the default
// share; rollouts, sweep intervals and the deadline ÷scale), rollouts paced
// by o.InstallPacing, canary first. With fail, the first twin rollout to end
// once o.FailAt rollouts are in flight fails (circuit breaker, rollback).
func runInstall(ctx context.Context, o Options, bin, dir string, fail bool, logf func(string, ...any)) (installResult, error) {
	k := o.InstallScale
	res := installResult{families: o.InstallFamilies, services: o.InstallFamilies * o.InstallServicesPerFamily,
		clusters: o.InstallClusters, scale: k, pacing: o.InstallPacing, withFailure: fail}
	res.pacing.deadline = scaledDown(realDeadline, k)
	res.pacing.poll = scaledDown(realPoll, k)
	rule := &twinRule{}
	s, secret, err := startSeededSim(ctx, awssim.Options{RolloutDelay: scaledDown(realRollout, k), RolloutRule: rule.rule})
	if err != nil {
		return res, err
	}
	defer s.stop()
	name := "install"
	if fail {
		name = "install-failure"
	}
	f, err := s.seedFleetWith(ctx, "inst", o.InstallClusters, o.InstallFamilies, o.InstallServicesPerFamily, true)
	if err != nil {
		return res, err
	}
	queue, err := s.seedQueue(ctx)
	if err != nil {
		return res, err
	}
	// The services' own first deployments end before the process starts:
	// the rollouts in flight are then the reconciler's.
	for wait := time.Now(); s.sim.State().Pending > 0; {
		if time.Since(wait) > time.Minute {
			return res, fmt.Errorf("%s: the seeded services' deployments did not end", name)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	s.countRun(name)
	s.sim.EnableThrottling(k)
	start := time.Now()
	p, err := startProcess(bin, dir, name, processConfig{
		endpoint: s.endpoint, queueURL: queue, secretArn: secret, bucketScale: k, share: defaultShare,
		serviceInterval: scaledDown(realServiceInterval, k), familyInterval: scaledDown(realFamilyInterval, k),
		familyRate: DefaultFamilyRate * k, rollouts: &res.pacing,
	})
	if err != nil {
		return res, err
	}
	defer p.stop()
	logf("%s: reconciler pid %d on %d services of %d families, time ÷%g (rollouts %v)", name, p.cmd.Process.Pid,
		res.services, res.families, k, scaledDown(realRollout, k))
	expectLeft := 0
	if fail {
		expectLeft = o.InstallServicesPerFamily // the failed family stays on its source
	}
	deadline := start.Add(o.InstallTimeout)
	lastLog := start
	var end time.Time
	for {
		if err := p.alive(); err != nil {
			return res, err
		}
		left, pending := s.uncovered(f)
		now := time.Now()
		fam, at := rule.picked()
		switch {
		case fam == "":
			res.maxInFlight = max(res.maxInFlight, pending)
			if fail && pending >= o.FailAt {
				rule.arm()
			}
		case res.failedFamily == "":
			res.failedFamily, res.failedAt, res.atFailure, res.lowAfterFailure = fam, at.Sub(start), pending, pending
		case now.Sub(at) < 2*scaledDown(realRollout, k):
			res.lowAfterFailure = min(res.lowAfterFailure, pending)
		default:
			res.maxAfterFailure = max(res.maxAfterFailure, pending)
		}
		if left <= expectLeft && pending == 0 && (!fail || res.failedFamily != "") {
			end = now
			res.covered = res.services - left
			break
		}
		if now.After(deadline) {
			return res, fmt.Errorf("%s: %d of %d services uncovered, %d rollouts pending after %v", name, left, res.services, pending, o.InstallTimeout)
		}
		if now.Sub(lastLog) > 15*time.Second {
			logf("%s: %d services uncovered, %d rollouts in flight after %v", name, left, pending, now.Sub(start).Round(time.Second))
			lastLog = now
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	res.measured = end.Sub(start)
	res.calls = s.reconcilerCalls(name)
	res.throttled = s.throttled()
	if err := p.stop(); err != nil {
		return res, err
	}
	if b, err := os.ReadFile(p.logPath); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "rollout window braked") {
				res.brakes = append(res.brakes, jsonField(line, "from")+" → "+jsonField(line, "to"))
			}
		}
	}
	logf("%s: %d of %d services covered in %v (real %v); %d rollouts in flight at most; failure %q at %v with %d in flight, %d after, %d later; brakes %v",
		name, res.covered, res.services, res.measured.Round(time.Millisecond), res.real().Round(time.Second), res.maxInFlight,
		res.failedFamily, res.failedAt.Round(time.Millisecond), res.atFailure, res.lowAfterFailure, res.maxAfterFailure, res.brakes)
	return res, nil
}

// jsonField is the raw value of a top-level number field of a JSON log line
// ("" when absent).
func jsonField(line, key string) string {
	_, rest, ok := strings.Cut(line, `"`+key+`":`)
	if !ok {
		return ""
	}
	end := strings.IndexAny(rest, ",}")
	if end < 0 {
		return rest
	}
	return rest[:end]
}
