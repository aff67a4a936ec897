package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
)

// convergence is the result of the convergence run.
type convergence struct {
	families    int
	scale       float64
	measured    time.Duration
	bound       time.Duration
	throttled   int
	registers   int
	updates     int
	describes   int // revisions described
	reDescribes int // describes of a revision already described
}

func (c convergence) ratio() float64 { return c.measured.Seconds() / c.bound.Seconds() }

// scaledBucket returns the simulator's bucket of an ECS action, scaled.
func scaledBucket(action string, scale float64) Bucket {
	for _, c := range awssim.ECSThrottleCategories {
		for _, a := range c.Actions {
			if a == action {
				return Bucket{Burst: c.Burst, Refill: c.Refill * scale}
			}
		}
	}
	panic("bench: no bucket for " + action)
}

// runConvergence seeds n families of one service each, opted in by tag,
// turns on AWS's buckets scaled by scale, starts the reconciler process with
// share 1.0 of the same buckets, and times full coverage.
func runConvergence(ctx context.Context, o Options, bin, dir string, logf func(string, ...any)) (convergence, error) {
	res := convergence{families: o.ConvergeFamilies, scale: o.ThrottleScale}
	s, secret, err := startSeededSim(ctx, awssim.Options{RolloutDelay: time.Second})
	if err != nil {
		return res, err
	}
	defer s.stop()
	f, err := s.seedFleet(ctx, "conv", 1, o.ConvergeFamilies, 1)
	if err != nil {
		return res, err
	}
	queue, err := s.seedQueue(ctx)
	if err != nil {
		return res, err
	}
	before := s.calls()
	s.countRun("convergence")
	// The buckets start full now; the reconciler's own start full too.
	s.sim.EnableThrottling(o.ThrottleScale)
	start := time.Now()
	p, err := startProcess(bin, dir, "convergence", processConfig{
		endpoint: s.endpoint, queueURL: queue, secretArn: secret, bucketScale: o.ThrottleScale,
		maxInFlight: o.ConvergeFamilies,
	})
	if err != nil {
		return res, err
	}
	defer p.stop()
	logf("convergence: reconciler pid %d started on %d families, buckets x%g", p.cmd.Process.Pid, o.ConvergeFamilies, o.ThrottleScale)
	deadline := start.Add(o.ConvergeTimeout)
	lastLog := start
	for {
		if err := p.alive(); err != nil {
			return res, err
		}
		left, _ := s.uncovered(f)
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("convergence: %d of %d services still uncovered after %v", left, o.ConvergeFamilies, o.ConvergeTimeout)
		}
		if time.Since(lastLog) > 15*time.Second {
			logf("convergence: %d services uncovered after %v", left, time.Since(start).Round(time.Second))
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	last, err := s.lastUpdate()
	if err != nil {
		return res, err
	}
	res.measured = last.Sub(start)
	res.bound = ConvergenceBound(o.ConvergeFamilies, scaledBucket("RegisterTaskDefinition", o.ThrottleScale), scaledBucket("UpdateService", o.ThrottleScale))
	after := s.calls()
	res.registers = after["RegisterTaskDefinition"] - before["RegisterTaskDefinition"]
	res.updates = after["UpdateService"] - before["UpdateService"]
	res.throttled = s.throttled()
	res.describes, res.reDescribes = s.describes("convergence")
	if err := p.stop(); err != nil {
		return res, err
	}
	return res, nil
}
