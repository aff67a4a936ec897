package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/config"
)

// bigFleet is the optional run on a second, larger fleet: its peak RSS.
type bigFleet struct {
	services, families int
	settle             time.Duration
	peakRSS            int64
	cost               time.Duration // the run's wall time, seeding included
}

// runBigFleet seeds o.BigFamilies families of o.ServicesPerFamily services
// in o.Clusters clusters, instruments them as runFleet does, restarts the
// process on them (no throttling: only memory is measured), waits until it
// is idle and one more service sweep has ended, and reads VmHWM.
func runBigFleet(ctx context.Context, o Options, bin, dir string, logf func(string, ...any)) (bigFleet, error) {
	t0 := time.Now()
	res := bigFleet{families: o.BigFamilies, services: o.BigFamilies * o.ServicesPerFamily}
	s, secret, err := startSeededSim(ctx, awssim.Options{NoJournal: true})
	if err != nil {
		return res, err
	}
	defer s.stop()
	f, err := s.seedFleet(ctx, "big", o.Clusters, o.BigFamilies, o.ServicesPerFamily)
	if err != nil {
		return res, err
	}
	bo := o
	bo.FleetTimeout = 3 * o.FleetTimeout
	if err := instrumentFleet(ctx, bo, s, f, secret, logf); err != nil {
		return res, err
	}
	queue, err := s.seedQueue(ctx)
	if err != nil {
		return res, err
	}
	start := time.Now()
	proc, err := startProcess(bin, dir, "big", processConfig{endpoint: s.endpoint, queueURL: queue, secretArn: secret,
		bucketScale: config.MaxBucketScale, sweepInterval: o.SweepInterval, familyRate: 20 * config.MaxBucketScale})
	if err != nil {
		return res, err
	}
	defer proc.stop()
	logf("big: reconciler pid %d restarted on %d services", proc.cmd.Process.Pid, res.services)
	var sweeps0 float64 = -1
	for {
		if err := proc.alive(); err != nil {
			return res, err
		}
		if time.Since(start) > bo.FleetTimeout {
			return res, fmt.Errorf("the reconciler on %d services was not idle after %v", res.services, bo.FleetTimeout)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(time.Second):
		}
		m, err := proc.scrape(ctx)
		if err != nil {
			continue
		}
		idle := m.sum("ecs_sidecar_reconcile_total", `result="success"`) >= float64(res.families) &&
			m.sum("ecs_sidecar_workqueue_depth") == 0 && m.sum("ecs_sidecar_workqueue_unfinished_work_seconds") == 0
		n := m.sum("ecs_sidecar_sweeps_total", `sweep="services"`)
		switch {
		case idle && sweeps0 < 0:
			res.settle, sweeps0 = time.Since(start), n
		case sweeps0 >= 0 && n > sweeps0:
			if res.peakRSS, _, err = proc.memory(); err != nil {
				return res, err
			}
			res.cost = time.Since(t0)
			logf("big: idle after %v; peak RSS %.1f MiB at %d services", res.settle.Round(time.Second), float64(res.peakRSS)/(1<<20), res.services)
			return res, proc.stop()
		}
	}
}
