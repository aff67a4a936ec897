package controller

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
)

// BenchmarkFamilySweep measures the calls of an idle family sweep of 2,000
// reconciled families (one in four opted in, so 2,500 ACTIVE revisions with
// the twins), per-family and in bulk (tag:GetResources), side by side:
//
//	go test -run '^$' -bench BenchmarkFamilySweep -benchtime 3x ./internal/controller
//
// The calls are counted, not timed: against awssim on loopback a call is
// not what it costs at AWS's 2 calls/s (sweeps.families.maxCallsPerSecond).
func BenchmarkFamilySweep(b *testing.B) {
	const families = 2000
	for _, mode := range []string{"per_family", "bulk"} {
		b.Run(mode, func(b *testing.B) {
			w := newWorld(b)
			for f := range families {
				tags := map[string]string{}
				if f%4 == 0 {
					tags["ecs-sidecar/inject"] = "true"
				}
				w.register(b, fmt.Sprintf("fam%04d", f), "nginx:1.27", tags)
			}
			c := w.controller(b, func(o *Options) {
				o.FamilySweepRate = 1e6
				if mode == "bulk" {
					o.Tagging = resourcegroupstaggingapi.NewFromConfig(w.cfg)
				}
			})
			ctx := context.Background()
			if err := c.SweepServices(ctx); err != nil {
				b.Fatal(err)
			}
			if err := c.SweepFamilies(ctx); err != nil {
				b.Fatal(err)
			}
			if got := len(drain(b, c)); got != families {
				b.Fatalf("first sweep queued %d families, want %d", got, families)
			}
			before := w.total()
			b.ResetTimer()
			for range b.N {
				if err := c.SweepFamilies(ctx); err != nil {
					b.Fatal(err)
				}
				if n := c.QueueLen(); n != 0 {
					b.Fatalf("an idle sweep queued %d families", n)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(w.total()-before)/float64(b.N), "calls/sweep")
			b.ReportMetric(float64(w.total()-before)/float64(b.N)/families, "calls/family")
		})
	}
}
