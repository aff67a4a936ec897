package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// rolledBackStatuses are the service deployment statuses of a rollout that
// ECS gave up on and reverted (the circuit breaker or a CloudWatch alarm,
// under any deployment strategy).
var rolledBackStatuses = []types.ServiceDeploymentStatus{
	types.ServiceDeploymentStatusRollbackRequested,
	types.ServiceDeploymentStatusRollbackInProgress,
	types.ServiceDeploymentStatusRollbackSuccessful,
	types.ServiceDeploymentStatusRollbackFailed,
}

// rolledBackByECS reads from ECS's service deployments whether ECS rolled
// back a deployment of twin on service s. It is the record that survives a
// restart: a process that moved s to twin and died, then came back after
// the circuit breaker's rollback, sees the service on its source and must
// not move it to twin again. Only rollbacks created after the twin was
// registered can target it. A service revision names its task definition
// for good, so revision ARNs are resolved once.
func (c *Controller) rolledBackByECS(ctx context.Context, s *service, twin *revision) (bool, error) {
	in := &ecs.ListServiceDeploymentsInput{
		Cluster: aws.String(s.cluster), Service: aws.String(s.arn),
		Status: rolledBackStatuses, MaxResults: aws.Int32(100),
	}
	if !twin.registeredAt.IsZero() {
		// A second's margin: both times are ECS's, but a deployment made in
		// the same instant as the twin must not fall outside the bound.
		in.CreatedAt = &types.CreatedAt{After: aws.Time(twin.registeredAt.Add(-time.Second))}
	}
	var unknown []string
	for {
		out, err := c.ecs.ListServiceDeployments(ctx, in)
		if err != nil {
			return false, fmt.Errorf("list service deployments of %s: %w", s.arn, err)
		}
		for _, d := range out.ServiceDeployments {
			rev := aws.ToString(d.TargetServiceRevisionArn)
			td, ok := c.st.serviceRevision(rev)
			switch {
			case !ok:
				unknown = append(unknown, rev)
			case td == twin.arn:
				return true, nil
			}
		}
		if out.NextToken == nil {
			break
		}
		in.NextToken = out.NextToken
	}
	for start := 0; start < len(unknown); start += 20 {
		batch := unknown[start:min(start+20, len(unknown))]
		out, err := c.ecs.DescribeServiceRevisions(ctx, &ecs.DescribeServiceRevisionsInput{ServiceRevisionArns: batch})
		if err != nil {
			return false, fmt.Errorf("describe service revisions of %s: %w", s.arn, err)
		}
		found := false
		for _, r := range out.ServiceRevisions {
			td := aws.ToString(r.TaskDefinition)
			c.st.putServiceRevision(aws.ToString(r.ServiceRevisionArn), td)
			found = found || td == twin.arn
		}
		if found {
			return true, nil
		}
	}
	return false, nil
}
