package controller

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// serviceFacts is what a reconcile observed of one service, from AWS
// (through the cache): everything decideService reads.
type serviceFacts struct {
	// ecsController: the ECS deployment controller (UpdateService can set a
	// task definition).
	ecsController bool
	// runs is the class of the revision the service runs, runsArn its ARN.
	runs    patch.Kind
	runsArn string
	// rollout is the service's primary deployment when it runs one of our
	// twins that carries no failure mark.
	rollout *deployment
	// target is the current twin of the service's source ("" when there is
	// none: refused, or not instrumented), and what is known of it.
	target         string
	targetFailed   string // its failure mark, "" when none
	targetNew      bool   // registered by this reconcile: nothing can have deployed it
	targetFailedOn bool   // DescribeServices lists a FAILED deployment of it
	targetRolling  bool   // DescribeServices lists an IN_PROGRESS deployment of it
	// history is what ECS's service deployments say of target on this
	// service: unknown until read (decideService asks for it).
	history history
	// reversions counts, in ECS's service deployments, the moves of the
	// service from target straight back to target's source within the
	// contested window; contestedAfter is Options.ContestedAfter.
	reversions     int
	contestedAfter int
	now            time.Time
	// deadline fails a rollout with no outcome by then.
	deadline time.Duration
}

type history int

const (
	historyUnknown    history = iota
	historyClean              // no rollback of target on the service
	historyRolledBack         // ECS rolled a deployment of target back
	historyFailed             // a detector failed a deployment of target; no rollback
)

// stepKind is what decideService decided for a service.
type stepKind int

const (
	stepLeave       stepKind = iota // left where it is on purpose
	stepWait                        // a rollout under way: look again later
	stepReadHistory                 // read ECS's rollout history of target, then decide again
	stepMove                        // point the service at target
	stepMarkFailed                  // mark twin failed; the service is already off it
	stepAbandon                     // mark twin failed and return the service to its source
)

// step is decideService's answer.
type step struct {
	kind stepKind
	twin string // the twin moved to, marked or abandoned
	code string // failure code (stepMarkFailed, stepAbandon)
	// reason says why a service is left alone (a Skip* code), for logs and
	// metrics; "" when there is nothing to say.
	reason string
	// completed: the service's rollout of its twin has completed (counted
	// once by apply).
	completed bool
}

// decideService is the invariant for one service, as a pure function of
// what was observed: follow a rollout of a twin to its outcome, else move
// the service to the current twin of its source unless something says not
// to. It never reads AWS: when ECS's rollout history is needed it says so.
func decideService(f serviceFacts) step {
	completed := false
	if d := f.rollout; d != nil {
		switch d.rolloutState {
		case types.DeploymentRolloutStateFailed:
			return step{kind: stepAbandon, twin: d.taskDef, code: FailedRolloutFailed}
		case types.DeploymentRolloutStateInProgress:
			if !d.createdAt.IsZero() && f.now.Sub(d.createdAt) > f.deadline {
				return step{kind: stepAbandon, twin: d.taskDef, code: FailedDeadline}
			}
			return step{kind: stepWait, twin: d.taskDef}
		case types.DeploymentRolloutStateCompleted:
			completed = true
		}
	}
	leave := func(reason string) step { return step{kind: stepLeave, reason: reason, completed: completed} }
	switch {
	case !f.ecsController:
		return leave(SkipDeploymentController)
	case f.runs != patch.KindPlain && f.runs != patch.KindTwin:
		return leave(SkipCovered)
	case f.target == "":
		return leave(SkipRefused)
	case f.runsArn == f.target:
		return leave("")
	case f.targetFailed != "":
		return leave(SkipTwinFailed)
	case f.targetFailedOn:
		return step{kind: stepMarkFailed, twin: f.target, code: FailedRolloutFailed}
	case f.targetRolling:
		return step{kind: stepWait, twin: f.target}
	case !f.targetNew && f.history == historyUnknown:
		return step{kind: stepReadHistory, twin: f.target}
	case f.history == historyRolledBack:
		return step{kind: stepMarkFailed, twin: f.target, code: FailedRolledBack}
	case f.history == historyFailed:
		return step{kind: stepMarkFailed, twin: f.target, code: FailedRolloutFailed}
	case f.contestedAfter > 0 && f.reversions >= f.contestedAfter:
		return step{kind: stepLeave, twin: f.target, reason: SkipContested, completed: completed}
	}
	return step{kind: stepMove, twin: f.target, completed: completed}
}
