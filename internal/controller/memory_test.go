package controller

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// BenchmarkCacheBytes measures what the controller keeps in memory for each
// service of an instrumented fleet, as a restarted process finds it: 500
// opted-in families of two services each, every service on its family's
// twin. Each iteration starts a fresh controller, runs a service sweep and
// reconciles every family (describing 1,000 revisions over HTTP with the
// SDK, as in an account), then weighs the controller: the heap in use after
// a collection with the controller alive, minus the same without it.
// Reported per service (B/service) and per family (B/family); the process's
// peak is about twice the live heap with GOGC=100 (docs/benchmarks.md).
func BenchmarkCacheBytes(b *testing.B) {
	const families = 500
	w := newWorld(b)
	for i := range families {
		family := fmt.Sprintf("app-%03d", i)
		src := w.register(b, family, "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
		w.createService(b, family+"-a", src, types.DeploymentControllerTypeEcs)
		w.createService(b, family+"-b", src, types.DeploymentControllerTypeEcs)
	}
	// Instrument the fleet once, every service at once, and let the
	// rollouts complete.
	first := w.controller(b, func(o *Options) { o.MaxInFlight, o.MaxInFlightPerCluster, o.Canary = 1<<20, 1<<20, false })
	sweep(b, first)
	drain(b, first)
	w.sim.Step()
	if n := len(w.writes("UpdateService")); n != 2*families {
		b.Fatalf("%d services moved to twins, want %d", n, 2*families)
	}
	first = nil

	var retained float64
	for b.Loop() {
		c := w.controller(b)
		sweep(b, c)
		if n := len(drain(b, c)); n != families {
			b.Fatalf("reconciled %d families, want %d", n, families)
		}
		if c.QueueLen() != 0 {
			b.Fatalf("%d families still queued", c.QueueLen())
		}
		with := heapAfterGC()
		runtime.KeepAlive(c)
		c = nil
		retained = float64(with) - float64(heapAfterGC())
	}
	b.ReportMetric(retained/(2*families), "B/service")
	b.ReportMetric(retained/families, "B/family")
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC() // the second one frees what the first one's finalizers let go
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
