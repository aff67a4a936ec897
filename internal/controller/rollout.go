package controller

import "log/slog"

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
	return pacing{maxInFlight: c.o.MaxInFlight, perCluster: c.o.MaxInFlightPerCluster, canary: c.o.Canary, rampStart: c.o.RampStart}
}

// rolloutEnded moves the ramp after a rollout of a twin ended, and logs a
// change of the window.
func (c *Controller) rolloutEnded(log *slog.Logger, completed bool) {
	was, now := c.st.rampDone(c.pacing(), completed)
	for _, f := range c.st.wakeWaiting(c.pacing()) {
		c.enqueue(f)
	}
	switch {
	case now > was:
		log.Info("rollout window widened", "from", was, "to", now, "ceiling", c.o.MaxInFlight)
	case now < was:
		log.Warn("rollout window braked after a failed rollout", "from", was, "to", now)
	}
}
