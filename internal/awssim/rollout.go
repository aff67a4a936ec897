package awssim

import (
	"container/heap"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Rollouts. A deployment moves through phases, each ending at a due time on
// the Sim's clock (a checkpoint); what happens at a checkpoint is decided at
// its due time (not at the time someone looks), so that outcomes and their
// times do not depend on when the clock is read. The RolloutRule is asked
// at every checkpoint whether the revision is bad.
//
// The phases follow deploymentConfiguration.strategy, as it was when the
// deployment started:
//   - ROLLING (or no strategy): one phase, scale-up, RolloutDelay long; at
//     its end the deployment is COMPLETED and older ones are drained away.
//   - BLUE_GREEN: scale-up (the green revision's tasks start; the blue one
//     keeps all traffic), RolloutDelay long; then test and production
//     traffic shift to green at once and bake time starts
//     (bakeTimeInMinutes, 0 when unset); at its end the blue revision is
//     drained and the deployment is COMPLETED. Until then a failure rolls
//     back.
//   - LINEAR: scale-up, then production traffic moves stepPercent (default
//     10) at a time, stepBakeTimeInMinutes (default 6) after each step
//     until it reaches 100 (no step bake after the last), then bake time as
//     for BLUE_GREEN.
//   - CANARY: scale-up, then canaryPercent (default 5) of production
//     traffic for canaryBakeTimeInMinutes (default 10), then the rest, then
//     bake time as for BLUE_GREEN.
//
// (Defaults: LinearConfiguration and CanaryConfiguration in the API
// reference; stages: ServiceDeployment.lifecycleStage; "bake time - the
// duration when both blue and green service revisions are running
// simultaneously after the production traffic has shifted",
// developerguide/deployment-type-blue-green.html; linear and canary "both
// support a deployment bake time that waits after all production traffic
// has shifted to the new revision before terminating the old revision",
// ECS's announcement of linear and canary deployments.) Without lifecycle
// hooks the traffic shifts take no time, so the simulator shows the stages
// SCALE_UP, PRODUCTION_TRAFFIC_SHIFT (linear and canary, between steps),
// BAKE_TIME and CLEAN_UP (once done), and none for ROLLING.
//
// When the rule says the revision is bad, who notices depends on the
// service's failure detection (developerguide/deployment-failure-detection.html):
//   - the circuit breaker (deploymentCircuitBreaker.enable): the tasks fail,
//     at the end of scale-up, for every strategy;
//   - otherwise CloudWatch alarms (deploymentConfiguration.alarms enabled
//     with names): at the first checkpoint after the revision took
//     production traffic (ROLLING: end of scale-up; the others: the first
//     traffic step or the end of bake time), and at every later one;
//   - neither, at the end of scale-up: the deployment stays IN_PROGRESS
//     forever (ECS keeps replacing failing tasks), reported once as
//     Impaired. Later, nobody notices: the deployment goes on.
//
// A failure that was noticed: the deployment is FAILED (rolloutState), and
//   - rollback off (of the detector that noticed), or no COMPLETED
//     deployment to go back to: it stays PRIMARY; its service deployment is
//     STOPPED;
//   - rollback on: a new PRIMARY deployment of the last COMPLETED
//     deployment's revision starts, with the reason "ECS deployment circuit
//     breaker: rolling back to deploymentId <id>." (ECS's text, see
//     reference/events); the service deployment is ROLLBACK_IN_PROGRESS
//     with its rollback (reason, startedAt, serviceRevisionArn), then
//     ROLLBACK_SUCCESSFUL when that deployment completes (ROLLING:
//     RolloutDelay later; the others at once, since the old revision still
//     runs), or ROLLBACK_FAILED if it fails. A rollback is never rolled back.

type rolloutPhase int

const (
	phaseScaleUp rolloutPhase = iota // the new revision's tasks start
	phaseTraffic                     // linear and canary: production traffic partly shifted
	phaseBake                        // all traffic shifted; the old revision still runs
)

type rolloutItem struct {
	due time.Time
	seq int64 // tie-break: start order
	svc *service
	dep *deployment
}

// rolloutQueue is a min-heap of pending checkpoints by (due, seq).
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

// Defaults of the gradual strategies (API reference: LinearConfiguration,
// CanaryConfiguration), in tenths of a percent and minutes.
const (
	defaultLinearStep10    = 100
	defaultLinearStepBake  = 6
	defaultCanaryPercent10 = 50
	defaultCanaryBake      = 10
)

func strategyOf(cfg *types.DeploymentConfiguration) types.DeploymentStrategy {
	if cfg.Strategy == "" {
		return types.DeploymentStrategyRolling
	}
	return cfg.Strategy
}

func circuitBreakerOn(cfg *types.DeploymentConfiguration) bool {
	return cfg.DeploymentCircuitBreaker != nil && cfg.DeploymentCircuitBreaker.Enable
}

func alarmsOn(cfg *types.DeploymentConfiguration) bool {
	return cfg.Alarms != nil && cfg.Alarms.Enable && len(cfg.Alarms.AlarmNames) > 0
}

func minutes(m *int32, def int32) time.Duration {
	if m == nil {
		return time.Duration(def) * time.Minute
	}
	return time.Duration(*m) * time.Minute
}

func tenths(p *float64, def int) int {
	if p == nil {
		return def
	}
	return int(*p*10 + 0.5)
}

// startDeploymentLocked makes a new PRIMARY deployments[] entry of revision
// rev of service deployment sd at time at; rollback marks a circuit-breaker
// (or alarm) rollback.
func (s *Sim) startDeploymentLocked(sv *service, sd *svcDeployment, rev *svcRevision, at time.Time, reason string, rollback bool) *deployment {
	n := s.nextID()
	d := &deployment{
		id:        fmt.Sprintf("ecs-svc/%d", deploymentIDBase+n),
		taskDef:   rev.taskDef,
		rev:       rev,
		sd:        sd,
		strategy:  strategyOf(&sd.config),
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
	delay := s.rolloutDelay
	if rollback && d.strategy != types.DeploymentStrategyRolling {
		delay = 0 // the old revision still runs: traffic shifts back at once
	}
	s.pushCheckpointLocked(sv, d, at.Add(delay))
	s.recordDeploymentLocked(DeploymentChange{
		Time: at, ClusterArn: sv.cluster.arn, ServiceArn: sv.arn, DeploymentID: d.id,
		TaskDefinition: rev.taskDef, State: d.state, Reason: d.reason,
	})
	return d
}

// detector is who notices, at a checkpoint, that a revision is bad.
type detector int

const (
	nobody           detector = iota // the deployment goes on
	nobodyImpaired                   // tasks keep failing: IN_PROGRESS forever
	byCircuitBreaker                 // the deployment circuit breaker
	byAlarms                         // the deployment's CloudWatch alarms
)

func detectorAt(cfg *types.DeploymentConfiguration, strategy types.DeploymentStrategy, p rolloutPhase) detector {
	switch {
	case p == phaseScaleUp && circuitBreakerOn(cfg):
		return byCircuitBreaker
	case alarmsOn(cfg) && (p != phaseScaleUp || strategy == types.DeploymentStrategyRolling):
		return byAlarms
	case p == phaseScaleUp && !alarmsOn(cfg):
		return nobodyImpaired
	}
	return nobody
}

// stepRolloutLocked is deployment d's checkpoint at time at.
func (s *Sim) stepRolloutLocked(sv *service, d *deployment, at time.Time) {
	if sv.status != "ACTIVE" || sv.primary() != d || d.state != types.DeploymentRolloutStateInProgress {
		return // superseded by a newer deployment, or the service is gone
	}
	if d.rollback && d.strategy != types.DeploymentStrategyRolling {
		s.completeRolloutLocked(sv, d, at) // traffic back on the old revision, which never stopped
		return
	}
	failReason := ""
	if s.rolloutRule != nil {
		if _, r, err := s.lookupTaskDef(d.taskDef); err == nil {
			failReason = s.rolloutRule(r.td)
		}
	}
	if failReason != "" {
		switch by := detectorAt(&sv.config, d.strategy, d.phase); by {
		case byCircuitBreaker, byAlarms:
			s.failRolloutLocked(sv, d, at, failReason, by)
			return
		case nobodyImpaired:
			d.updated = at
			d.failedTasks = max(d.desired, 1)
			s.recordDeploymentLocked(DeploymentChange{Time: at, ClusterArn: sv.cluster.arn, ServiceArn: sv.arn, DeploymentID: d.id,
				TaskDefinition: d.taskDef, State: d.state, Reason: failReason, Impaired: true})
			return
		}
	}
	if d.rollback || d.strategy == types.DeploymentStrategyRolling || d.phase == phaseBake {
		s.completeRolloutLocked(sv, d, at)
		return
	}
	d.updated = at
	cfg := &sv.config
	switch d.phase {
	case phaseScaleUp:
		d.running = d.desired
		d.test10 = 1000
		switch d.strategy {
		case types.DeploymentStrategyLinear:
			d.prod10 = defaultLinearStep10
			if c := cfg.LinearConfiguration; c != nil {
				d.prod10 = tenths(c.StepPercent, defaultLinearStep10)
			}
		case types.DeploymentStrategyCanary:
			d.prod10 = defaultCanaryPercent10
			if c := cfg.CanaryConfiguration; c != nil {
				d.prod10 = tenths(c.CanaryPercent, defaultCanaryPercent10)
			}
		default: // BLUE_GREEN
			d.prod10 = 1000
		}
	case phaseTraffic:
		if d.strategy == types.DeploymentStrategyLinear {
			step := defaultLinearStep10
			if c := cfg.LinearConfiguration; c != nil {
				step = tenths(c.StepPercent, defaultLinearStep10)
			}
			d.prod10 += max(step, 1)
		} else {
			d.prod10 = 1000
		}
	}
	d.prod10 = min(d.prod10, 1000)
	var wait time.Duration
	if d.prod10 == 1000 {
		d.phase, d.sd.stage = phaseBake, types.ServiceDeploymentLifecycleStageBakeTime
		wait = minutes(cfg.BakeTimeInMinutes, 0)
	} else {
		d.phase, d.sd.stage = phaseTraffic, types.ServiceDeploymentLifecycleStageProductionTrafficShift
		if d.strategy == types.DeploymentStrategyLinear {
			wait = minutes(nil, defaultLinearStepBake)
			if c := cfg.LinearConfiguration; c != nil {
				wait = minutes(c.StepBakeTimeInMinutes, defaultLinearStepBake)
			}
		} else {
			wait = minutes(nil, defaultCanaryBake)
			if c := cfg.CanaryConfiguration; c != nil {
				wait = minutes(c.CanaryBakeTimeInMinutes, defaultCanaryBake)
			}
		}
	}
	d.sd.updatedAt = at
	s.pushCheckpointLocked(sv, d, at.Add(wait))
}

// pushCheckpointLocked queues d's next checkpoint; checkpoints due at the
// same time run in the order they were queued.
func (s *Sim) pushCheckpointLocked(sv *service, d *deployment, due time.Time) {
	s.checkpoints++
	heap.Push(&s.rollouts, &rolloutItem{due: due, seq: s.checkpoints, svc: sv, dep: d})
}

// completeRolloutLocked: d is COMPLETED at time at; older deployments are
// drained away.
func (s *Sim) completeRolloutLocked(sv *service, d *deployment, at time.Time) {
	d.updated = at
	d.state = types.DeploymentRolloutStateCompleted
	d.reason = fmt.Sprintf("ECS deployment %s completed.", d.id) // ECS, moto
	d.running = d.desired
	d.prod10, d.test10 = 1000, 1000
	sv.deployments = sv.deployments[:1]
	sv.lastGood = d
	s.recordDeploymentLocked(DeploymentChange{Time: at, ClusterArn: sv.cluster.arn, ServiceArn: sv.arn, DeploymentID: d.id,
		TaskDefinition: d.taskDef, State: d.state, Reason: d.reason})
	sd := d.sd
	if d.rollback {
		s.endServiceDeploymentLocked(sv, sd, types.ServiceDeploymentStatusRollbackSuccessful, at, "")
		return
	}
	if sd.stage != "" {
		sd.stage = types.ServiceDeploymentLifecycleStageCleanUp
	}
	s.endServiceDeploymentLocked(sv, sd, types.ServiceDeploymentStatusSuccessful, at, "")
}

// alarmReason is the rolloutStateReason of a deployment that its alarms
// failed. UNVERIFIED: ECS's wording.
func alarmReason(names []string) string {
	return fmt.Sprintf("ECS deployment alarms: %s in ALARM.", strings.Join(names, ", "))
}

// failRolloutLocked: detector by noticed at time at that d's revision is bad.
func (s *Sim) failRolloutLocked(sv *service, d *deployment, at time.Time, reason string, by detector) {
	cfg := &sv.config
	sd := d.sd
	d.updated = at
	rollback := false
	what := "circuit breaker"
	if by == byCircuitBreaker {
		d.failedTasks = max(d.desired, 1)
		sd.failureCount = d.failedTasks
		sd.cbStatus = types.ServiceDeploymentRollbackMonitorsStatusTriggered
		rollback = cfg.DeploymentCircuitBreaker.Rollback
	} else {
		reason = alarmReason(cfg.Alarms.AlarmNames)
		sd.alarmStatus = types.ServiceDeploymentRollbackMonitorsStatusTriggered
		rollback = cfg.Alarms.Rollback
		what = "alarms" // UNVERIFIED: ECS's wording of an alarm rollback
	}
	d.state, d.reason = types.DeploymentRolloutStateFailed, reason
	s.recordDeploymentLocked(DeploymentChange{Time: at, ClusterArn: sv.cluster.arn, ServiceArn: sv.arn, DeploymentID: d.id,
		TaskDefinition: d.taskDef, State: d.state, Reason: d.reason})
	if d.rollback {
		s.endServiceDeploymentLocked(sv, sd, types.ServiceDeploymentStatusRollbackFailed, at, reason)
		return
	}
	if !rollback || sv.lastGood == nil {
		s.endServiceDeploymentLocked(sv, sd, types.ServiceDeploymentStatusStopped, at, reason)
		return
	}
	// The rollback deployment takes over the last good deployment's tasks:
	// that one leaves the list.
	good := sv.lastGood
	sv.deployments = slices.DeleteFunc(sv.deployments, func(x *deployment) bool { return x == good })
	d.prod10, d.test10 = 0, 0
	rbReason := fmt.Sprintf("ECS deployment %s: rolling back to deploymentId %s.", what, good.id)
	sd.status, sd.reason, sd.updatedAt = types.ServiceDeploymentStatusRollbackInProgress, reason, at
	sd.rollbackReason, sd.rollbackAt, sd.rollbackTo = rbReason, at, good.rev
	s.startDeploymentLocked(sv, sd, good.rev, at, rbReason, true)
}
