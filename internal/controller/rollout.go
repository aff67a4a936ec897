package controller

import (
	"context"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// Rollout outcomes, as metric label values.
const (
	RolloutCompleted = "completed"
	RolloutFailed    = "failed"
	RolloutDeadline  = "deadline"
	RolloutRolledBk  = "rolled_back"
)

// FailedDeadline is the failure code of a rollout with no outcome before
// the deadline (services without the circuit breaker never report FAILED).
const FailedDeadline = "deadline"

// move is what moveService did with a service.
type move int

const (
	moveLeft     move = iota // left where it is on purpose
	moveStarted              // UpdateService was called, or a rollout is under way
	moveDeferred             // pacing: try again later
)

// primary returns the primary deployment of a service, if DescribeServices
// listed one.
func primary(s *service) (deployment, bool) {
	for _, d := range s.deployments {
		if d.status == "PRIMARY" {
			return d, true
		}
	}
	return deployment{}, false
}

// pacing is the admission rule of moves, from the options.
func (c *Controller) pacing() pacing {
	return pacing{maxInFlight: c.o.MaxInFlight, perCluster: c.o.MaxInFlightPerCluster, canary: c.o.Canary}
}

// trackRollout follows the rollout of a twin on a service: it counts the
// outcome once, marks the twin failed when ECS failed it or when it has no
// outcome by the deadline, and returns the service to its source when ECS
// did not. inFlight is true while the rollout has no outcome.
func (c *Controller) trackRollout(ctx context.Context, log *slog.Logger, mode string, s *service) (inFlight bool, err error) {
	d, ok := primary(s)
	if !ok {
		return false, nil
	}
	twinArn := d.taskDef
	twin := c.st.cachedRevision(twinArn)
	_, failed := c.st.failedMark(twinArn)
	moved := c.st.movedTo(s.arn)
	if twin == nil || twin.class.Kind != patch.KindTwin || failed {
		return false, nil
	}
	log = log.With("cluster", clusterName(s.cluster), "service", s.name, "twin", twin.number)
	switch d.rolloutState {
	case types.DeploymentRolloutStateCompleted:
		if moved == twinArn {
			c.st.setMoved(s.arn, "")
			log.Info("rollout of twin completed")
			c.o.Observer.RolloutDone(RolloutCompleted)
		}
		return false, nil
	case types.DeploymentRolloutStateFailed:
		log.Warn("rollout of twin failed and ECS did not roll it back", "reason", d.reason)
		c.o.Observer.RolloutDone(RolloutFailed)
		return false, c.abandon(ctx, log, mode, s, twin, FailedRolloutFailed)
	case types.DeploymentRolloutStateInProgress:
		started := d.createdAt
		if !started.IsZero() && c.o.Now().Sub(started) > c.o.RolloutDeadline {
			log.Warn("rollout of twin has no outcome by the deadline", "started", started, "deadline", c.o.RolloutDeadline.String())
			c.o.Observer.RolloutDone(RolloutDeadline)
			return false, c.abandon(ctx, log, mode, s, twin, FailedDeadline)
		}
		return true, nil
	}
	return false, nil
}

// abandon marks the twin failed and returns the service to the twin's source.
func (c *Controller) abandon(ctx context.Context, log *slog.Logger, mode string, s *service, twin *revision, code string) error {
	if err := c.markFailed(ctx, log, mode, twin, code); err != nil {
		return err
	}
	return c.returnToSource(ctx, log, mode, s, twin, code)
}
