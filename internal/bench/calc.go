package bench

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
)

// Bucket is a token bucket: Burst tokens, refilled at Refill per second.
type Bucket struct {
	Burst  float64
	Refill float64
}

// DrainTime is the least time n calls take through a bucket that starts
// full: the first Burst go at once, the rest at the refill rate.
func DrainTime(n int, b Bucket) time.Duration {
	if b.Refill <= 0 {
		panic("bench: a bucket without refill")
	}
	rest := math.Max(0, float64(n)-b.Burst)
	return time.Duration(rest / b.Refill * float64(time.Second))
}

// ConvergenceBound is the lower bound the ECS buckets put on instrumenting
// n families of one service each: n RegisterTaskDefinition calls through
// the task definition modify bucket and n UpdateService calls through the
// service modify bucket, the two running in parallel, so the slower one.
func ConvergenceBound(n int, register, update Bucket) time.Duration {
	return max(DrainTime(n, register), DrainTime(n, update))
}

// Percentile is the nearest-rank percentile p (0 < p <= 100) of xs; 0 for
// no samples. xs is not modified.
func Percentile(xs []time.Duration, p float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// pages is how many pages of size per a listing of n items takes (at least
// one: an empty listing is still a call).
func pages(n, per int) int {
	if n <= 0 {
		return 1
	}
	return (n + per - 1) / per
}

// ServiceSweepMinimum is the fewest calls a sweep of every service can make
// (DESIGN.md, "Data flow"): ListClusters pages of 100, ListServices pages of
// 100 per cluster, DescribeServices by 10.
func ServiceSweepMinimum(servicesPerCluster []int) CallCounts {
	m := CallCounts{"ListClusters": pages(len(servicesPerCluster), 100)}
	for _, n := range servicesPerCluster {
		m["ListServices"] += pages(n, 100)
		m["DescribeServices"] += (n + 9) / 10
	}
	return m
}

// FamilySweepMinimum is the fewest calls the family sweep as DESIGN.md
// defines it can make: ListTaskDefinitionFamilies pages of 100, then each
// family's newest revisions (one ListTaskDefinitions) and their tags (one
// ListTagsForResource), describing nothing.
func FamilySweepMinimum(families int) CallCounts {
	return CallCounts{
		"ListTaskDefinitionFamilies": pages(families, 100),
		"ListTaskDefinitions":        families,
		"ListTagsForResource":        families,
	}
}

// NaiveSweepCalls is what a scanner that lists every service and describes
// every service's task definition on each sweep calls: the service sweep's
// minimum plus one DescribeTaskDefinition per service.
func NaiveSweepCalls(servicesPerCluster []int) CallCounts {
	m := ServiceSweepMinimum(servicesPerCluster)
	for _, n := range servicesPerCluster {
		m["DescribeTaskDefinition"] += n
	}
	return m
}

// CallCounts counts calls by operation.
type CallCounts map[string]int

// clone copies c (never nil, so that the copy can be written to).
func (c CallCounts) clone() CallCounts {
	out := make(CallCounts, len(c))
	maps.Copy(out, c)
	return out
}

// Total is the sum over operations.
func (c CallCounts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// String lists the counts by operation name, sorted.
func (c CallCounts) String() string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %d", k, c[k])
	}
	return s
}

// The reconciler's default share of each ECS bucket (aws.apiBudget.share)
// and the family sweep's default rate (sweeps.families.maxCallsPerSecond).
const (
	DefaultShare      = 0.5
	DefaultFamilyRate = 2.0
)

// Tagging is the pseudo bucket of the calls that are not ECS's (the
// Resource Groups Tagging API's GetResources has its own quota, not one of
// ECS's buckets).
const Tagging = "tagging (not ECS)"

// CategoryOf is the name of the ECS throttle bucket an operation draws from
// (reference/aws-facts.md §2), or Tagging for a call that is not ECS's.
func CategoryOf(op string) string {
	for _, c := range awssim.ECSThrottleCategories {
		if slices.Contains(c.Actions, op) {
			return c.Name
		}
	}
	return Tagging
}

// RealBucket is AWS's bucket of a category, as aws-facts.md gives it.
func RealBucket(category string) (Bucket, bool) {
	for _, c := range awssim.ECSThrottleCategories {
		if c.Name == category {
			return Bucket{Burst: c.Burst, Refill: c.Refill}, true
		}
	}
	return Bucket{}, false
}

// ClientBucket is the reconciler's own bucket in front of an account bucket
// b: share of its burst (at least 1, rounded down, as internal/cloud does)
// and of its refill, the refill multiplied by scale (aws.apiBudget.bucketScale).
func ClientBucket(b Bucket, share, scale float64) Bucket {
	return Bucket{Burst: max(1, math.Floor(b.Burst*share)), Refill: b.Refill * share * scale}
}

// ByBucket adds the calls up by the bucket they draw from.
func ByBucket(c CallCounts) CallCounts {
	out := CallCounts{}
	for op, n := range c {
		out[CategoryOf(op)] += n
	}
	return out
}

// ECSCalls is the sum of the calls that draw from an ECS bucket.
func ECSCalls(c CallCounts) int {
	n := 0
	for op, v := range c {
		if CategoryOf(op) != Tagging {
			n += v
		}
	}
	return n
}

// BucketBound is the least time the calls c take through the reconciler's
// share of AWS's buckets with refills scaled by scale: the buckets drain in
// parallel, so the slowest bucket's DrainTime. Calls that draw from no ECS
// bucket do not count.
func BucketBound(c CallCounts, share, scale float64) time.Duration {
	var bound time.Duration
	for cat, n := range ByBucket(c) {
		b, ok := RealBucket(cat)
		if !ok {
			continue
		}
		bound = max(bound, DrainTime(n, ClientBucket(b, share, scale)))
	}
	return bound
}

// SlowestBucket names the bucket that decides BucketBound ("" for none).
func SlowestBucket(c CallCounts, share, scale float64) string {
	var (
		name  string
		bound time.Duration = -1
	)
	for _, cat := range slices.Sorted(maps.Keys(ByBucket(c))) {
		b, ok := RealBucket(cat)
		if !ok {
			continue
		}
		if d := DrainTime(ByBucket(c)[cat], ClientBucket(b, share, scale)); d > bound {
			name, bound = cat, d
		}
	}
	return name
}

// ToReal converts a time measured under buckets whose refills were scaled to
// AWS's rates: the measured ratio to the scaled bound, applied to the real
// bound. With a scaled bound of 0 (everything within the bursts) it returns
// the real bound.
func ToReal(measured, scaledBound, realBound time.Duration) time.Duration {
	if scaledBound <= 0 {
		return realBound
	}
	return time.Duration(float64(measured) / float64(scaledBound) * float64(realBound))
}

// ToRealAdditive converts as ToReal but takes the time measured beyond the
// scaled bound as an overhead that does not scale with the buckets (the
// machine's latency, a sweep's calls one after another): the real bound
// plus that overhead. The two conversions bracket the real time: this one
// when the overhead is the machine's, ToReal when it is time the buckets
// stand idle that scales with them.
func ToRealAdditive(measured, scaledBound, realBound time.Duration) time.Duration {
	return realBound + max(0, measured-scaledBound)
}

// DedupNaiveSweepCalls is what a scanner that lists and describes every
// service and then describes each distinct task definition once calls per
// sweep.
func DedupNaiveSweepCalls(servicesPerCluster []int, distinctTaskDefinitions int) CallCounts {
	m := ServiceSweepMinimum(servicesPerCluster)
	m["DescribeTaskDefinition"] = distinctTaskDefinitions
	return m
}

// PerHour is how many calls a sweep of calls run every interval makes in an
// hour.
func PerHour(calls int, interval time.Duration) float64 {
	return float64(calls) * float64(time.Hour) / float64(interval)
}

// BulkFamilySweepMinimum is the fewest calls the family sweep through
// tag:GetResources makes: ListTaskDefinitions pages of 100 over the
// account's ACTIVE revisions, and per opt-in tag key (inject, profile)
// GetResources pages of 100 over the revisions carrying it (an empty
// listing still takes its call).
func BulkFamilySweepMinimum(activeRevisions int, taggedByKey ...int) CallCounts {
	m := CallCounts{"ListTaskDefinitions": pages(activeRevisions, 100)}
	for _, n := range taggedByKey {
		m["GetResources"] += pages(n, 100)
	}
	return m
}

// Minutes formats a duration in minutes (or hours past 90 minutes).
func Minutes(d time.Duration) string {
	switch {
	case d >= 90*time.Minute:
		return fmt.Sprintf("%.2f h", d.Hours())
	case d >= time.Minute:
		return fmt.Sprintf("%.1f min", d.Minutes())
	default:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
}
