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
