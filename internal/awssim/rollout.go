package awssim

import (
	"container/heap"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Rollouts. A deployment starts IN_PROGRESS and reaches its outcome
// RolloutDelay later, evaluated at that due time (not at the time someone
// looks), so that outcomes and their times do not depend on when the clock
// is read:
//   - the rule passes: COMPLETED; older deployments are drained away;
//   - the rule fails, circuit breaker off: it stays IN_PROGRESS forever
//     (ECS keeps replacing failing tasks), reported once as Impaired;
//   - circuit breaker on, rollback off: FAILED, stays PRIMARY;
//   - circuit breaker on, rollback on: FAILED, and a new PRIMARY deployment
//     of the last COMPLETED deployment's task definition starts, with the
//     reason "ECS deployment circuit breaker: rolling back to deploymentId
//     <id>." (ECS's text, see reference/events). A rollback that fails is not
//     rolled back again.

type rolloutItem struct {
	due time.Time
	seq int64 // tie-break: start order
	svc *service
	dep *deployment
}

// rolloutQueue is a min-heap of pending outcomes by (due, seq).
type rolloutQueue []*rolloutItem

func (q rolloutQueue) Len() int { return len(q) }
func (q rolloutQueue) Less(i, j int) bool {
	if !q[i].due.Equal(q[j].due) {
		return q[i].due.Before(q[j].due)
	}
	return q[i].seq < q[j].seq
}
func (q rolloutQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *rolloutQueue) Push(x any)   { *q = append(*q, x.(*rolloutItem)) }
func (q *rolloutQueue) Pop() any {
	old := *q
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return it
}

// deploymentIDBase makes deployment ids look like ECS's (ecs-svc/ and 19
// digits) while coming from a counter.
const deploymentIDBase = 1_000_000_000_000_000_000

// startDeploymentLocked makes a new PRIMARY deployment of taskDef at time at.
func (s *Sim) startDeploymentLocked(sv *service, taskDef string, at time.Time, reason string, rollback bool) *deployment {
	n := s.nextID()
	d := &deployment{
		id:        fmt.Sprintf("ecs-svc/%d", deploymentIDBase+n),
		taskDef:   taskDef,
		state:     types.DeploymentRolloutStateInProgress,
		createdAt: at,
		updated:   at,
		desired:   sv.desired,
		rollback:  rollback,
	}
	if reason == "" {
		reason = fmt.Sprintf("ECS deployment %s in progress.", d.id) // ECS, moto
	}
	d.reason = reason
	sv.deployments = append([]*deployment{d}, sv.deployments...)
	heap.Push(&s.rollouts, &rolloutItem{due: at.Add(s.rolloutDelay), seq: n, svc: sv, dep: d})
	s.recordDeploymentLocked(DeploymentChange{
		Time: at, ClusterArn: sv.cluster.arn, ServiceArn: sv.arn, DeploymentID: d.id,
		TaskDefinition: taskDef, State: d.state, Reason: d.reason,
	})
	return d
}

// finishRolloutLocked decides the outcome of deployment d at time at.
func (s *Sim) finishRolloutLocked(sv *service, d *deployment, at time.Time) {
	if sv.status != "ACTIVE" || sv.primary() != d || d.state != types.DeploymentRolloutStateInProgress {
		return // superseded by a newer deployment, or the service is gone
	}
	change := DeploymentChange{Time: at, ClusterArn: sv.cluster.arn, ServiceArn: sv.arn, DeploymentID: d.id, TaskDefinition: d.taskDef}
	failReason := ""
	if s.rolloutRule != nil {
		if _, r, err := s.lookupTaskDef(d.taskDef); err == nil {
			failReason = s.rolloutRule(r.td)
		}
	}
	d.updated = at
	if failReason == "" {
		d.state = types.DeploymentRolloutStateCompleted
		d.reason = fmt.Sprintf("ECS deployment %s completed.", d.id) // ECS, moto
		d.running = d.desired
		sv.deployments = sv.deployments[:1]
		sv.lastGood = d
		change.State, change.Reason = d.state, d.reason
		s.recordDeploymentLocked(change)
		return
	}
	d.failedTasks = max(d.desired, 1)
	cb := sv.config.DeploymentCircuitBreaker
	if cb == nil || !cb.Enable {
		change.State, change.Reason, change.Impaired = d.state, failReason, true
		s.recordDeploymentLocked(change)
		return
	}
	d.state = types.DeploymentRolloutStateFailed
	d.reason = failReason
	change.State, change.Reason = d.state, d.reason
	s.recordDeploymentLocked(change)
	if cb.Rollback && !d.rollback && sv.lastGood != nil {
		// The rollback deployment takes over the last good deployment's
		// tasks: that one leaves the list.
		good := sv.lastGood
		kept := sv.deployments[:0]
		for _, x := range sv.deployments {
			if x != good {
				kept = append(kept, x)
			}
		}
		sv.deployments = kept
		reason := fmt.Sprintf("ECS deployment circuit breaker: rolling back to deploymentId %s.", good.id)
		s.startDeploymentLocked(sv, good.taskDef, at, reason, true)
	}
}
