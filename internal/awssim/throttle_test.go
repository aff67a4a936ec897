package awssim

import (
	"context"
	"errors"
	"math"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
)

// callCategory makes one call of an action of a category through the Go
// API and reports whether it was throttled. Inputs need not be valid: the
// bucket is taken before the operation runs.
func callAction(ctx context.Context, s *Sim, action string) (throttled bool) {
	var err error
	e := s.ECS()
	switch action {
	case "RegisterTaskDefinition":
		_, err = e.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{})
	case "DescribeTaskDefinition":
		_, err = e.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("x")})
	case "UpdateService":
		_, err = e.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("x")})
	case "DescribeServices":
		_, err = e.DescribeServices(ctx, &ecs.DescribeServicesInput{Services: []string{"x"}})
	case "ListClusters":
		_, err = e.ListClusters(ctx, &ecs.ListClustersInput{})
	case "TagResource":
		_, err = e.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String("x")})
	case "ListTagsForResource":
		_, err = e.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String("x")})
	case "DeregisterTaskDefinition":
		_, err = e.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("x:1")})
	case "ListTaskDefinitions":
		_, err = e.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{})
	case "ListTaskDefinitionFamilies":
		_, err = e.ListTaskDefinitionFamilies(ctx, &ecs.ListTaskDefinitionFamiliesInput{})
	case "CreateService":
		_, err = e.CreateService(ctx, &ecs.CreateServiceInput{ServiceName: aws.String("x")})
	case "DeleteService":
		_, err = e.DeleteService(ctx, &ecs.DeleteServiceInput{Service: aws.String("x")})
	case "ListServices":
		_, err = e.ListServices(ctx, &ecs.ListServicesInput{})
	case "ListServiceDeployments":
		_, err = e.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{Service: aws.String("x")})
	case "DescribeServiceDeployments":
		_, err = e.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{"x"}})
	case "DescribeServiceRevisions":
		_, err = e.DescribeServiceRevisions(ctx, &ecs.DescribeServiceRevisionsInput{ServiceRevisionArns: []string{"x"}})
	case "DescribeClusters":
		_, err = e.DescribeClusters(ctx, &ecs.DescribeClustersInput{})
	case "UntagResource":
		_, err = e.UntagResource(ctx, &ecs.UntagResourceInput{ResourceArn: aws.String("x")})
	default:
		panic(action)
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ThrottlingException"
}

// TestThrottleBuckets checks each category's burst and refill on a fake
// clock: exact arithmetic, no wall time.
func TestThrottleBuckets(t *testing.T) {
	for _, c := range ECSThrottleCategories {
		t.Run(c.Name, func(t *testing.T) {
			clock := NewFakeClock(t0)
			s := New(Options{Clock: clock, ThrottleScale: 2})
			ctx := ctxT(t)
			action := c.Actions[0]
			for i := range int(c.Burst) {
				// Every action of the category draws on the same bucket.
				if callAction(ctx, s, c.Actions[i%len(c.Actions)]) {
					t.Fatalf("call %d of a burst of %g throttled", i+1, c.Burst)
				}
			}
			if !callAction(ctx, s, action) {
				t.Fatalf("call %g after the burst not throttled", c.Burst+1)
			}
			// At scale 2 a token comes back every 1/(2*refill) s.
			step := time.Duration(float64(time.Second) / (2 * c.Refill))
			clock.Advance(step - time.Millisecond)
			if !callAction(ctx, s, action) {
				t.Errorf("a token came back before %v", step)
			}
			clock.Advance(time.Millisecond)
			if callAction(ctx, s, action) {
				t.Errorf("no token came back after %v", step)
			}
			if !callAction(ctx, s, action) {
				t.Errorf("two tokens came back after %v", step)
			}
			// A long pause refills to the burst, not beyond.
			clock.Advance(time.Hour)
			n := 0
			for !callAction(ctx, s, action) {
				n++
			}
			if n != int(c.Burst) {
				t.Errorf("after an hour: %d calls before throttling, want the burst %g", n, c.Burst)
			}
			if got := s.CallCount("ecs", action, "ThrottlingException"); got < 3 {
				t.Errorf("throttled calls counted: %d", got)
			}
		})
	}
	// Operations outside the table and other services are not throttled.
	s := New(Options{Clock: NewFakeClock(t0), ThrottleScale: 1})
	for range 200 {
		if _, err := s.ECS().CreateCluster(ctxT(t), &ecs.CreateClusterInput{ClusterName: aws.String("c")}); err != nil {
			t.Fatalf("CreateCluster: %v", err)
		}
	}
}

// TestThrottleRate hammers DescribeServices (service read: burst 100,
// 20/s) at scale 5 over HTTP with an SDK client that has no limiter and no
// retries, and checks the tokens granted over the run against the bucket's
// arithmetic: burst + rate x elapsed, the rate within 10%.
func TestThrottleRate(t *testing.T) {
	const scale, burst, refill = 5.0, 100.0, 20.0
	s := New(Options{ThrottleScale: scale}) // the wall clock: a real run
	srv := newHTTPServer(t, s)
	client := ecs.NewFromConfig(awsConfig(), func(o *ecs.Options) {
		o.BaseEndpoint = aws.String(srv)
		o.Retryer = aws.NopRetryer{}
	})
	ctx := ctxT(t)
	var mu sync.Mutex
	var ok, throttled, other int
	var firstErr error
	start := time.Now()
	deadline := start.Add(2 * time.Second)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				_, err := client.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("none"), Services: []string{"x"}})
				var ae smithy.APIError
				mu.Lock()
				switch {
				case errors.As(err, &ae) && ae.ErrorCode() == "ThrottlingException":
					throttled++
				case errors.As(err, &ae) && ae.ErrorCode() == codeClusterNotFound:
					ok++ // served: the bucket granted a token
				default:
					other++
					if firstErr == nil {
						firstErr = err
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	if other > 0 {
		t.Fatalf("%d calls failed otherwise, first: %v", other, firstErr)
	}
	if throttled == 0 {
		t.Fatalf("no call throttled (%d served): the client did not outpace the bucket", ok)
	}
	var b BucketStats
	for _, x := range s.Stats().Buckets {
		if x.Category == "service read" {
			b = x
		}
	}
	if b.Granted != int64(ok) || b.Refused != int64(throttled) {
		t.Errorf("bucket counted %d granted, %d refused; the client saw %d served, %d throttled", b.Granted, b.Refused, ok, throttled)
	}
	rate := (float64(ok) - burst) / elapsed
	if want := refill * scale; math.Abs(rate-want) > want/10 {
		t.Errorf("tokens per second: got %.1f (%d granted in %.2fs after a burst of %g), want %g within 10%%", rate, ok, elapsed, burst, want)
	}
	t.Logf("%d granted, %d throttled in %.2fs: %.1f tokens/s after the burst", ok, throttled, elapsed, rate)
}

func newHTTPServer(t *testing.T, s *Sim) string {
	t.Helper()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestFaultsAreSeeded(t *testing.T) {
	run := func(seed int64, interleave bool) []string {
		s := New(Options{Clock: NewFakeClock(t0), Seed: seed, Faults: map[string]Faults{
			"ecs:ListClusters": {ErrorRate: 0.3, ThrottleRate: 0.2},
		}})
		ctx := context.Background()
		var out []string
		for range 200 {
			if interleave {
				s.ECS().ListServices(ctx, &ecs.ListServicesInput{})
			}
			_, err := s.ECS().ListClusters(ctx, &ecs.ListClustersInput{})
			var ae smithy.APIError
			switch {
			case err == nil:
				out = append(out, "ok")
			case errors.As(err, &ae):
				out = append(out, ae.ErrorCode())
			default:
				out = append(out, err.Error())
			}
		}
		return out
	}
	a, b := run(7, false), run(7, true)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, other operations interleaved: outcomes differ (-a +b):\n%s", diff)
	}
	if c := run(8, false); cmp.Equal(a, c) {
		t.Errorf("seeds 7 and 8 gave the same 200 outcomes")
	}
	count := map[string]int{}
	for _, o := range a {
		count[o]++
	}
	// Expected 40 throttled (0.2) and 48 errors (0.8 x 0.3) of 200: wide
	// bounds, the draw is fixed by the seed anyway.
	if count["ThrottlingException"] < 20 || count["ThrottlingException"] > 60 || count[codeServer] < 28 || count[codeServer] > 70 ||
		count["ok"]+count["ThrottlingException"]+count[codeServer] != 200 {
		t.Errorf("outcomes of 200 calls: %v", count)
	}
}

func TestFaultsOverHTTP(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	noRetry := ecs.NewFromConfig(awsConfig(), func(o *ecs.Options) { o.BaseEndpoint = aws.String(e.url); o.Retryer = aws.NopRetryer{} })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e.sim.SetFaults("ecs:CreateCluster", Faults{DropRate: 1}))
	_, err := noRetry.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("dropped")})
	var ae smithy.APIError
	if err == nil || errors.As(err, &ae) {
		t.Fatalf("dropped connection: got %v, want a transport error", err)
	}
	// The call took effect: only its answer was lost.
	l, err := e.ecs.ListClusters(ctx, &ecs.ListClustersInput{})
	if err != nil || len(l.ClusterArns) != 1 {
		t.Fatalf("after a dropped CreateCluster: %v, %v", l, err)
	}
	must(e.sim.SetFaults("ecs:CreateCluster", Faults{}))
	must(e.sim.SetFaults("ecs:*", Faults{ErrorRate: 1, Latency: time.Millisecond, LatencyMax: 2 * time.Millisecond}))
	_, err = noRetry.ListClusters(ctx, &ecs.ListClustersInput{})
	wantAPIErr(t, err, codeServer, "injected fault")
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) || re.HTTPStatusCode() != 500 {
		t.Errorf("injected error status: %v", err)
	}
	must(e.sim.SetFaults("ecs:*", Faults{}))
	must(e.sim.SetFaults("sqs:*", Faults{ThrottleRate: 1}))
	_, err = e.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("q")}, func(o *sqs.Options) { o.Retryer = aws.NopRetryer{} })
	wantAPIErr(t, err, "RequestThrottled", "injected fault")
	must(e.sim.SetFaults("sqs:*", Faults{}))
	if err := e.sim.SetFaults("nope", Faults{ErrorRate: 1}); err == nil {
		t.Error("SetFaults accepted the key \"nope\"")
	}
	if err := e.sim.SetFaults("*", Faults{ErrorRate: 2}); err == nil {
		t.Error("SetFaults accepted a rate of 2")
	}

	// The counters, over HTTP.
	st, err := FetchStats(context.Background(), e.url)
	if err != nil {
		t.Fatal(err)
	}
	want := []CallCount{
		{"ecs", "CreateCluster", "dropped", 1},
		{"ecs", "ListClusters", codeServer, 1},
		{"ecs", "ListClusters", "ok", 1},
		{"sqs", "CreateQueue", "RequestThrottled", 1},
	}
	if diff := cmp.Diff(st.Calls, want); diff != "" {
		t.Errorf("GET /_sim/stats calls (-got +want):\n%s", diff)
	}
}

func TestParseFaults(t *testing.T) {
	got, err := ParseFaults("ECS:*:throttle=0.2,error=0.05,latency=0-100ms,drop=0.01; sqs:ReceiveMessage:latency=20ms;*:*:error=0.5")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Faults{
		"ecs:*":              {ThrottleRate: 0.2, ErrorRate: 0.05, Latency: 0, LatencyMax: 100 * time.Millisecond, DropRate: 0.01},
		"sqs:ReceiveMessage": {Latency: 20 * time.Millisecond, LatencyMax: 20 * time.Millisecond},
		"*":                  {ErrorRate: 0.5},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("ParseFaults (-got +want):\n%s", diff)
	}
	if got, _ := ParseFaults("ecs:*:latency=10-100ms"); got["ecs:*"].Latency != 10*time.Millisecond {
		t.Errorf("10-100ms: low end %v", got["ecs:*"].Latency)
	}
	for _, bad := range []string{"ecs", "ecs:*", "ecs:*:throttle", "ecs:*:throttle=2", "ecs:*:colour=1", "ecs:*:latency=5-1ms", "*:ListClusters:error=0.1", "ecs:*:latency=fast"} {
		if _, err := ParseFaults(bad); err == nil {
			t.Errorf("ParseFaults(%q): no error", bad)
		}
	}
}
