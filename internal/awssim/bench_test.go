package awssim

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// BenchmarkDescribeTaskDefinitionSDK measures DescribeTaskDefinition calls
// per second through the real SDK client over loopback HTTP, from parallel
// goroutines (as the reconciler's workers call it).
func BenchmarkDescribeTaskDefinitionSDK(b *testing.B) {
	e := newEnv(b, Options{})
	ctx := context.Background()
	for i := range 100 {
		if _, err := e.ecs.RegisterTaskDefinition(ctx, DemoTaskDefinition(fmt.Sprintf("f%03d", i), "nginx:1.27", []types.Tag{{Key: aws.String("ecs-sidecar/inject"), Value: aws.String("true")}})); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			_, err := e.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
				TaskDefinition: aws.String(fmt.Sprintf("f%03d:1", i%100)), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
			})
			if err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkRegisterTaskDefinitionSDK measures RegisterTaskDefinition calls
// per second through the SDK (validation, 64 KiB size check, journal).
func BenchmarkRegisterTaskDefinitionSDK(b *testing.B) {
	e := newEnv(b, Options{})
	ctx := context.Background()
	in := DemoTaskDefinition("bench", "nginx:1.27", []types.Tag{{Key: aws.String("ecs-sidecar/inject"), Value: aws.String("true")}})
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.ecs.RegisterTaskDefinition(ctx, in); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkScale20kServices10kFamilies builds a simulator holding 10,000
// families and 20,000 services (through the Go API) and reports the heap
// it holds, with and without the journal.
func BenchmarkScale20kServices10kFamilies(b *testing.B) {
	for _, journal := range []bool{true, false} {
		b.Run(fmt.Sprintf("journal=%v", journal), func(b *testing.B) {
			for range b.N {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				s := buildScale(b, 10_000, 20_000, !journal)
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc), "heap-bytes")
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/20_000, "heap-bytes/service")
				// A full service sweep stays fast at this scale.
				pages := 0
				api := s.ECS()
				for _, c := range []string{"c0", "c9"} {
					var tok *string
					for {
						out, err := api.ListServices(context.Background(), &ecs.ListServicesInput{Cluster: aws.String(c), MaxResults: aws.Int32(100), NextToken: tok})
						if err != nil {
							b.Fatal(err)
						}
						pages++
						if tok = out.NextToken; tok == nil {
							break
						}
					}
				}
				if pages != 40 {
					b.Fatalf("pages: got %d, want 40", pages)
				}
				runtime.KeepAlive(s)
			}
		})
	}
}

func buildScale(b *testing.B, families, services int, noJournal bool) *Sim {
	s := New(Options{Clock: NewFakeClock(t0), NoJournal: noJournal})
	api := s.ECS()
	ctx := context.Background()
	for c := range 10 {
		if _, err := api.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(fmt.Sprintf("c%d", c))}); err != nil {
			b.Fatal(err)
		}
	}
	for f := range families {
		in := DemoTaskDefinition(fmt.Sprintf("family-%05d", f), "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1", []types.Tag{{Key: aws.String("ecs-sidecar/inject"), Value: aws.String("true")}})
		if _, err := api.RegisterTaskDefinition(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	for i := range services {
		if _, err := api.CreateService(ctx, &ecs.CreateServiceInput{
			Cluster: aws.String(fmt.Sprintf("c%d", i%10)), ServiceName: aws.String(fmt.Sprintf("svc-%05d", i)),
			TaskDefinition: aws.String(fmt.Sprintf("family-%05d:1", i%families)), DesiredCount: aws.Int32(2),
			LaunchType: types.LaunchTypeFargate, NetworkConfiguration: demoNetwork,
		}); err != nil {
			b.Fatal(err)
		}
	}
	return s
}
