package bench

import (
	"testing"
	"time"
)

func TestConvergenceBound(t *testing.T) {
	// AWS's buckets scaled by 20: RegisterTaskDefinition burst 20 at 20/s,
	// UpdateService burst 50 at 100/s.
	reg, upd := Bucket{Burst: 20, Refill: 20}, Bucket{Burst: 50, Refill: 100}
	if got, want := ConvergenceBound(1000, reg, upd), 49*time.Second; got != want {
		t.Errorf("bound of 1,000 = %v, want %v (980 registrations past the burst at 20/s)", got, want)
	}
	// When the update bucket is the slower one, it decides.
	if got, want := ConvergenceBound(1000, Bucket{Burst: 1000, Refill: 1}, Bucket{Burst: 50, Refill: 5}), 190*time.Second; got != want {
		t.Errorf("bound with a slow update bucket = %v, want %v", got, want)
	}
	// Within the bursts there is no wait.
	if got := ConvergenceBound(15, reg, upd); got != 0 {
		t.Errorf("bound of 15 = %v, want 0", got)
	}
}

func TestPercentile(t *testing.T) {
	var xs []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		xs = append(xs, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0.1, time.Millisecond}} {
		if got := Percentile(xs, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if xs[0] != 100*time.Millisecond {
		t.Error("Percentile sorted its argument")
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %v", got)
	}
	if got := Percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("p99 of one sample = %v", got)
	}
}

func TestSweepMinimums(t *testing.T) {
	// 20,000 services in 10 clusters of 2,000.
	per := []int{2000, 2000, 2000, 2000, 2000, 2000, 2000, 2000, 2000, 2000}
	svc := ServiceSweepMinimum(per)
	if svc["ListClusters"] != 1 || svc["ListServices"] != 200 || svc["DescribeServices"] != 2000 || svc.Total() != 2201 {
		t.Errorf("service sweep minimum = %v", svc)
	}
	// An odd cluster: 14 services take 1 page and 2 describes; an empty one
	// still takes its ListServices call.
	if got := ServiceSweepMinimum([]int{14, 0}); got["ListServices"] != 2 || got["DescribeServices"] != 2 {
		t.Errorf("minimum of 14 and 0 services = %v", got)
	}
	fam := FamilySweepMinimum(10000)
	if fam["ListTaskDefinitionFamilies"] != 100 || fam.Total() != 20100 {
		t.Errorf("family sweep minimum = %v", fam)
	}
	naive := NaiveSweepCalls(per)
	if naive.Total() != 22201 || naive["DescribeTaskDefinition"] != 20000 {
		t.Errorf("naive sweep = %v", naive)
	}
}

func TestBucketsOfCalls(t *testing.T) {
	c := CallCounts{"DescribeTaskDefinition": 30000, "ListTaskDefinitions": 1100, "DescribeServices": 2000,
		"ListServices": 200, "ListClusters": 1, "GetResources": 200, "UpdateService": 3}
	by := ByBucket(c)
	if by["task definition read"] != 31100 || by["service read"] != 2200 || by["cluster read"] != 1 || by[Tagging] != 200 || by["service modify"] != 3 {
		t.Errorf("by bucket = %v", by)
	}
	if got := ECSCalls(c); got != 33304 {
		t.Errorf("ECS calls = %d, want 33304 (GetResources is not ECS's)", got)
	}
	// Share 0.5 of the task definition read bucket: burst 25, 10/s. 31,100
	// reads take (31,100 - 25) / 10 s; the "about 52 minutes".
	want := time.Duration((31100.0 - 25) / 10 * float64(time.Second))
	if got := BucketBound(c, 0.5, 1); got != want {
		t.Errorf("real bound = %v, want %v", got, want)
	}
	if got := SlowestBucket(c, 0.5, 1); got != "task definition read" {
		t.Errorf("slowest bucket = %q", got)
	}
	// Scaled by 50 the refill is 500/s.
	if got, want := BucketBound(c, 0.5, 50), time.Duration((31100.0-25)/500*float64(time.Second)); got != want {
		t.Errorf("scaled bound = %v, want %v", got, want)
	}
	// 10,000 reads at share 0.5: the "about 17 min".
	if got := BucketBound(CallCounts{"DescribeTaskDefinition": 10000}, 0.5, 1); got.Round(time.Second) != 998*time.Second {
		t.Errorf("bound of 10,000 reads = %v", got)
	}
	if got := BucketBound(CallCounts{"GetResources": 1000}, 0.5, 1); got != 0 {
		t.Errorf("tagging calls put a bound %v on ECS's buckets", got)
	}
}

func TestClientBucket(t *testing.T) {
	// internal/cloud floors the burst and keeps at least one token.
	if got := ClientBucket(Bucket{Burst: 20, Refill: 1}, 0.5, 1); got != (Bucket{Burst: 10, Refill: 0.5}) {
		t.Errorf("register bucket at share 0.5 = %+v", got)
	}
	if got := ClientBucket(Bucket{Burst: 1, Refill: 1}, 0.3, 20); got.Burst != 1 || got.Refill != 6 {
		t.Errorf("tiny bucket = %+v", got)
	}
}

func TestToReal(t *testing.T) {
	// 110 s measured against a scaled bound of 100 s is 1.1 times the real bound.
	if got := ToReal(110*time.Second, 100*time.Second, time.Hour); got != 66*time.Minute {
		t.Errorf("ToReal = %v, want 66m", got)
	}
	if got := ToRealAdditive(110*time.Second, 100*time.Second, time.Hour); got != time.Hour+10*time.Second {
		t.Errorf("ToRealAdditive = %v, want 1h0m10s", got)
	}
	if got := ToRealAdditive(90*time.Second, 100*time.Second, time.Hour); got != time.Hour {
		t.Errorf("ToRealAdditive below the bound = %v, want the bound", got)
	}
	if got := ToReal(time.Second, 0, time.Minute); got != time.Minute {
		t.Errorf("ToReal without a scaled bound = %v", got)
	}
}

func TestDedupScannerAndRates(t *testing.T) {
	per := []int{2000, 2000, 2000, 2000, 2000, 2000, 2000, 2000, 2000, 2000}
	// The figure: 12,201 calls per sweep with 10,000 distinct revisions.
	if got := DedupNaiveSweepCalls(per, 10000); got.Total() != 12201 || got["DescribeTaskDefinition"] != 10000 {
		t.Errorf("de-duplicating scanner = %v", got)
	}
	if got := PerHour(2201, 5*time.Minute); got != 26412 {
		t.Errorf("per hour = %v", got)
	}
	if got := PerHour(300, 30*time.Minute); got != 600 {
		t.Errorf("per hour = %v", got)
	}
	// 20,000 ACTIVE revisions and 10,000 carrying the inject tag, none the
	// profile tag: 200 + 100 + 1 calls.
	if got := BulkFamilySweepMinimum(20000, 10000, 0); got["ListTaskDefinitions"] != 200 || got["GetResources"] != 101 {
		t.Errorf("bulk family sweep = %v", got)
	}
}

func TestMinutes(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{30 * time.Second, "30.0 s"}, {17 * time.Minute, "17.0 min"}, {3 * time.Hour, "3.00 h"}} {
		if got := Minutes(tc.d); got != tc.want {
			t.Errorf("Minutes(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestSpreadAndRange(t *testing.T) {
	got := spread(50001, 10)
	total := 0
	for _, n := range got {
		total += n
	}
	if total != 50001 || got[0] != 5001 || got[9] != 5000 {
		t.Errorf("spread = %v", got)
	}
	// 50,000 services in 10 clusters: 1 + 500 + 5,000 calls, 545.1 s at
	// share 0.5 of the service read bucket (50 tokens, 10/s): past the
	// 5-minute interval.
	big := ServiceSweepMinimum(spread(50000, 10))
	if big.Total() != 5501 || BucketBound(big, 0.5, 1) != 545*time.Second {
		t.Errorf("50,000-service sweep = %v, bound %v", big, BucketBound(big, 0.5, 1))
	}
	if got := realRange(66*time.Second, 60*time.Second, 50*time.Minute); got != "50.1 min to 55.0 min" {
		t.Errorf("realRange = %q", got)
	}
	if got := realRange(60*time.Second, 60*time.Second, 50*time.Minute); got != "50.0 min" {
		t.Errorf("realRange at the bound = %q", got)
	}
}

func TestJSONField(t *testing.T) {
	line := `{"time":"x","level":"WARN","msg":"rollout window braked after a failed rollout","from":30,"to":5}`
	if from, to := jsonField(line, "from"), jsonField(line, "to"); from != "30" || to != "5" {
		t.Errorf("from %q to %q", from, to)
	}
	if got := jsonField(line, "ceiling"); got != "" {
		t.Errorf("absent field = %q", got)
	}
}
