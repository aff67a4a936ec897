package bench

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
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
