package controller

import (
	"errors"
	"time"
)

// Result is what a reconcile asks of the queue, as controller-runtime's
// reconcile.Result: RequeueAfter > 0 looks at the family again after that
// long (a rollout under way, a deferred move), whatever events arrive.
type Result struct {
	RequeueAfter time.Duration
	// Actions are the writes the reconcile made or, in audit mode and
	// plan, would make: plain values, so that audit mode, plan and the
	// audit trail are views of one list.
	Actions []Action
	// Skipped are the services the reconcile left alone on purpose, as
	// "cluster/service: reason" (a Skip* code), for plan.
	Skipped []string
}

// TerminalError is a reconcile error no retry can fix: the same input gets
// the same answer (AWS refused a twin's content as invalid). It is logged
// with its reason, counted, and acknowledges the family's messages; the
// family is looked at again when something changes (an event, a sweep).
type TerminalError struct {
	// Reason is a fixed code, a metric label value.
	Reason string
	Err    error
}

func (e *TerminalError) Error() string { return "terminal (" + e.Reason + "): " + e.Err.Error() }
func (e *TerminalError) Unwrap() error { return e.Err }

// terminal wraps err as a TerminalError with reason.
func terminal(reason string, err error) error {
	return &TerminalError{Reason: reason, Err: err}
}

// IsTerminal reports whether err is a TerminalError (wrapped or not) and
// returns it. Joined errors are terminal only when every one of them is:
// a transient failure beside a terminal one is still worth a retry.
func IsTerminal(err error) (*TerminalError, bool) {
	if err == nil {
		return nil, false
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var first *TerminalError
		for _, e := range j.Unwrap() {
			t, ok := IsTerminal(e)
			if !ok {
				return nil, false
			}
			if first == nil {
				first = t
			}
		}
		return first, first != nil
	}
	if t, ok := err.(*TerminalError); ok {
		return t, true
	}
	if u := errors.Unwrap(err); u != nil {
		return IsTerminal(u)
	}
	return nil, false
}

// Terminal reasons.
const (
	TerminalTwinRejected = "twin_rejected" // RegisterTaskDefinition refused the twin's content
)
