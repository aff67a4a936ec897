package cloud

import (
	"context"
	"fmt"
	"math"
	"time"

	"golang.org/x/time/rate"
)

// Category is an ECS throttle bucket (aws-facts.md section 2): AWS keeps one
// token bucket per category per account and Region.
type Category string

// The ECS throttle categories.
const (
	TaskDefinitionModify Category = "task_definition_modify"
	TaskDefinitionRead   Category = "task_definition_read"
	ServiceModify        Category = "service_modify"
	ServiceRead          Category = "service_read"
	ClusterRead          Category = "cluster_read"
	TagModify            Category = "tag_modify"
	TagRead              Category = "tag_read"
)

// Bucket is a token bucket: Burst tokens at most, refilled at Refill per second.
type Bucket struct {
	Burst  int
	Refill float64
}

// ecsService is the SDK's service ID of ECS.
const ecsService = "ECS"

// categoryOf maps ECS operations to their throttle category.
var categoryOf = map[string]Category{
	"RegisterTaskDefinition":     TaskDefinitionModify,
	"DeregisterTaskDefinition":   TaskDefinitionModify,
	"DescribeTaskDefinition":     TaskDefinitionRead,
	"ListTaskDefinitions":        TaskDefinitionRead,
	"ListTaskDefinitionFamilies": TaskDefinitionRead,
	"CreateService":              ServiceModify,
	"DeleteService":              ServiceModify,
	"UpdateService":              ServiceModify,
	"DescribeServices":           ServiceRead,
	"ListServices":               ServiceRead,
	// Not in AWS's published table; taken as service reads, as awssim does.
	"ListServiceDeployments":     ServiceRead,
	"DescribeServiceDeployments": ServiceRead,
	"DescribeServiceRevisions":   ServiceRead,
	"DescribeClusters":           ClusterRead,
	"ListClusters":               ClusterRead,
	"TagResource":                TagModify,
	"UntagResource":              TagModify,
	"ListTagsForResource":        TagRead,
}

// CategoryOf returns the ECS throttle category of an operation.
func CategoryOf(service, operation string) (Category, bool) {
	if service != ecsService {
		return "", false
	}
	c, ok := categoryOf[operation]
	return c, ok
}

// Buckets returns AWS's published ECS bucket sizes (aws-facts.md section 2).
func Buckets() map[Category]Bucket {
	return map[Category]Bucket{
		TaskDefinitionModify: {Burst: 20, Refill: 1},
		TaskDefinitionRead:   {Burst: 50, Refill: 20},
		ServiceModify:        {Burst: 50, Refill: 5},
		ServiceRead:          {Burst: 100, Refill: 20},
		ClusterRead:          {Burst: 50, Refill: 20},
		TagModify:            {Burst: 20, Refill: 10},
		TagRead:              {Burst: 50, Refill: 20},
	}
}

// ScaledBuckets returns AWS's buckets with every refill rate multiplied by
// scale and the bursts unchanged: the buckets of a simulator scaled the same
// way (awssim.EnableThrottling). A scale of 1 is Buckets().
func ScaledBuckets(scale float64) map[Category]Bucket {
	out := Buckets()
	for c, b := range out {
		b.Refill *= scale
		out[c] = b
	}
	return out
}

// Limiter holds the reconciler's own share of each ECS bucket. Calls of
// other services and of ECS operations outside the table pass through.
type Limiter struct {
	limiters map[Category]*rate.Limiter
}

// NewLimiter gives the reconciler share of every bucket: burst and refill
// both scaled, burst at least 1.
func NewLimiter(buckets map[Category]Bucket, share float64) *Limiter {
	l := &Limiter{limiters: make(map[Category]*rate.Limiter, len(buckets))}
	for c, b := range buckets {
		burst := max(1, int(math.Floor(float64(b.Burst)*share)))
		l.limiters[c] = rate.NewLimiter(rate.Limit(b.Refill*share), burst)
	}
	return l
}

// Wait blocks until the operation may be attempted, or ctx ends.
func (l *Limiter) Wait(ctx context.Context, service, operation string) error {
	c, ok := CategoryOf(service, operation)
	if !ok {
		return nil
	}
	lim, ok := l.limiters[c]
	if !ok {
		return nil
	}
	if err := lim.Wait(ctx); err != nil {
		return fmt.Errorf("cloud: wait for a %s token: %w", c, err)
	}
	return nil
}

// Limit returns the burst and refill the limiter uses for a category.
func (l *Limiter) Limit(c Category) (burst int, refill float64, ok bool) {
	lim, ok := l.limiters[c]
	if !ok {
		return 0, 0, false
	}
	return lim.Burst(), float64(lim.Limit()), true
}

// Delay reports how long a call of the category would wait now, without
// taking a token; for logs and metrics.
func (l *Limiter) Delay(c Category) time.Duration {
	lim, ok := l.limiters[c]
	if !ok {
		return 0
	}
	r := lim.Reserve()
	defer r.Cancel()
	return r.Delay()
}
