package controller

import (
	"context"
	"fmt"
	"slices"
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

// twinHistory reads from ECS's service deployments whether a deployment of
// twin on service s failed. It is the record that survives a restart: a
// process that moved s to twin and died, then came back after the circuit
// breaker's rollback, sees the service on its source and must not move it
// to twin again.
//
// A rollback's own status (ROLLBACK_*) is not the whole record: a newer
// deployment (a pipeline's) that starts while ECS rolls back stops the
// twin's service deployment, which then ends STOPPED. Its rollback and the
// detector's TRIGGERED stay on it (ServiceDeployment.rollback,
// deploymentCircuitBreaker.status, alarms.status in the ECS API reference),
// so a STOPPED deployment of the twin is described and judged by those.
// A detector that triggered with rollback off is a failure too.
//
// It also counts the reversions: deployments, within the contested window,
// of the twin's source that came straight after a deployment of the twin
// (another writer, IaC most often, moving the service back).
//
// Only deployments created after the twin was registered can target it. A
// service revision names its task definition for good, so revision ARNs
// are resolved once.
func (c *Controller) twinHistory(ctx context.Context, s *service, twin *revision) (history, int, error) {
	in := &ecs.ListServiceDeploymentsInput{
		Cluster: aws.String(s.cluster), Service: aws.String(s.arn), MaxResults: aws.Int32(100),
	}
	if !twin.registeredAt.IsZero() {
		// A second's margin: both times are ECS's, but a deployment made in
		// the same instant as the twin must not fall outside the bound.
		in.CreatedAt = &types.CreatedAt{After: aws.Time(twin.registeredAt.Add(-time.Second))}
	}
	var briefs []types.ServiceDeploymentBrief
	var unknown []string
	for {
		out, err := c.ecs.ListServiceDeployments(ctx, in)
		if err != nil {
			return historyUnknown, 0, fmt.Errorf("list service deployments of %s: %w", s.arn, err)
		}
		for _, d := range out.ServiceDeployments {
			briefs = append(briefs, d)
			rev := aws.ToString(d.TargetServiceRevisionArn)
			if _, ok := c.st.serviceRevision(rev); !ok && !slices.Contains(unknown, rev) {
				unknown = append(unknown, rev)
			}
		}
		if out.NextToken == nil {
			break
		}
		in.NextToken = out.NextToken
	}
	for batch := range slices.Chunk(unknown, 20) {
		out, err := c.ecs.DescribeServiceRevisions(ctx, &ecs.DescribeServiceRevisionsInput{ServiceRevisionArns: batch})
		if err != nil {
			return historyUnknown, 0, fmt.Errorf("describe service revisions of %s: %w", s.arn, err)
		}
		for _, r := range out.ServiceRevisions {
			c.st.putServiceRevision(aws.ToString(r.ServiceRevisionArn), aws.ToString(r.TaskDefinition))
		}
	}
	var stopped []string
	for _, d := range briefs {
		if td, _ := c.st.serviceRevision(aws.ToString(d.TargetServiceRevisionArn)); td != twin.arn {
			continue
		}
		switch {
		case slices.Contains(rolledBackStatuses, d.Status):
			return historyRolledBack, 0, nil
		case d.Status == types.ServiceDeploymentStatusStopped || d.Status == types.ServiceDeploymentStatusStopRequested:
			stopped = append(stopped, aws.ToString(d.ServiceDeploymentArn))
		}
	}
	failed := false
	for batch := range slices.Chunk(stopped, 20) {
		out, err := c.ecs.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: batch})
		if err != nil {
			return historyUnknown, 0, fmt.Errorf("describe service deployments of %s: %w", s.arn, err)
		}
		for _, d := range out.ServiceDeployments {
			if d.Rollback != nil {
				return historyRolledBack, 0, nil
			}
			failed = failed || triggered(d)
		}
	}
	if failed {
		return historyFailed, 0, nil
	}
	return historyClean, c.reversions(briefs, twin), nil
}

// reversions counts the deployments of twin's source, created within the
// contested window, that directly followed a deployment of twin.
func (c *Controller) reversions(briefs []types.ServiceDeploymentBrief, twin *revision) int {
	if c.o.ContestedAfter == 0 {
		return 0
	}
	byTime := slices.Clone(briefs)
	slices.SortStableFunc(byTime, func(a, b types.ServiceDeploymentBrief) int {
		return aws.ToTime(a.CreatedAt).Compare(aws.ToTime(b.CreatedAt))
	})
	source := arnOfRevision(twin.arn, twin.class.SourceRevision)
	since := c.o.Now().Add(-c.o.ContestedWindow)
	n, prev := 0, ""
	for _, d := range byTime {
		td, _ := c.st.serviceRevision(aws.ToString(d.TargetServiceRevisionArn))
		if prev == twin.arn && td == source && aws.ToTime(d.CreatedAt).After(since) {
			n++
		}
		prev = td
	}
	return n
}

// triggered tells whether a failure detector (the circuit breaker or the
// deployment alarms) fired during service deployment d.
func triggered(d types.ServiceDeployment) bool {
	return (d.DeploymentCircuitBreaker != nil && d.DeploymentCircuitBreaker.Status == types.ServiceDeploymentRollbackMonitorsStatusTriggered) ||
		(d.Alarms != nil && d.Alarms.Status == types.ServiceDeploymentRollbackMonitorsStatusTriggered)
}
