package controller

import (
	"context"
	"log/slog"

	"github.com/ecs-sidecar/reconciler/internal/policy"
)

// Kinds of Action.
const (
	ActionRegisterTwin   = "register_twin"
	ActionUpdateService  = "update_service"
	ActionReturnToSource = "return_to_source"
	ActionRestoreSource  = "restore_source"
	ActionMarkFailed     = "mark_failed"
	ActionDeregisterTwin = "deregister_twin"
	// ActionForgedTwin is no write: a revision carrying the twin markers
	// whose content is not what the patch engine makes of its source was
	// found, and refused (reported for the audit trail).
	ActionForgedTwin = "forged_twin"
	// ActionServiceContested is no write either: another writer (IaC)
	// moved a service back from its twin to its source ContestedAfter
	// times, and the reconciler leaves it there (Options.ContestedAfter).
	ActionServiceContested = "service_contested"
)

// ReasonDuplicate is the reason of deregistering a duplicate twin: another
// twin of the same source and spec, with a lower revision, stays.
const ReasonDuplicate = "duplicate"

// ReasonForged is the reason of an ActionForgedTwin.
const ReasonForged = "content_differs"

// ReasonModeRemove is the decision reason of every family in remove mode.
const ReasonModeRemove policy.Reason = "mode_remove"

// Action is a write the controller made or, in audit mode (Planned), would
// make. It feeds `reconciler plan` and the audit trail.
type Action struct {
	Kind    string `json:"kind"`
	Planned bool   `json:"planned"`
	Family  string `json:"family"`
	// Source and Twin are task definition ARNs; a planned twin's is a
	// stand-in: "(twin of <source ARN>)".
	Source     string   `json:"source,omitempty"`
	Twin       string   `json:"twin,omitempty"`
	Spec       string   `json:"spec,omitempty"`
	Containers []string `json:"containers,omitempty"`
	// Skipped lists the containers a twin leaves alone, as name=code.
	Skipped []string `json:"skipped,omitempty"`
	// Cluster, Service (ARNs), From and To (task definitions) describe a
	// service move.
	Cluster string `json:"cluster,omitempty"`
	Service string `json:"service,omitempty"`
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	// Reason is a fixed code (a failure code, or the decision's reason).
	Reason string `json:"reason,omitempty"`
}

// plannedTwinArn names the twin audit mode would register for a source.
func plannedTwinArn(source string) string { return "(twin of " + source + ")" }

// act records an action in the reconcile's list (Result.Actions) and
// reports it to the hook, if any.
func (c *Controller) act(p *plan, a Action) {
	p.actions = append(p.actions, a)
	if c.o.OnAction != nil {
		c.o.OnAction(a)
	}
}

// write makes one write and reports it (OnAction), or, in audit mode and
// plan, only reports it as planned: the one place that knows about modes.
// do makes the call and may complete the action (what it created);
// applied is false when nothing was written.
func (c *Controller) write(ctx context.Context, p *plan, log *slog.Logger, a Action, do func(ctx context.Context, a *Action) error) (applied bool, err error) {
	if p.mode == policy.ModeAudit {
		a.Planned = true
		log.Info("audit: would "+a.Kind, "source", a.Source, "twin", a.Twin, "service", a.Service, "to", a.To, "reason", a.Reason)
		c.act(p, a)
		return false, nil
	}
	if err := c.checkLease(ctx, p); err != nil {
		return false, err
	}
	if err := do(ctx, &a); err != nil {
		return false, err
	}
	c.act(p, a)
	return true, nil
}

// forgedTwin reports a revision that carries the markers of a twin of src
// but not its content, once per process: logged, counted and sent to the
// audit trail. It is never deployed, never canonical and never a reason to
// deregister anything.
func (c *Controller) forgedTwin(log *slog.Logger, p *plan, forged, src *revision) {
	if !c.st.firstForged(forged.arn) {
		return
	}
	log.Warn("a revision carries the twin markers but not the twin's content; refusing it", "revision", forged.number,
		"claims_source", forged.class.SourceRevision, "claims_spec", forged.class.Spec)
	c.o.Observer.ForgedTwin()
	c.act(p, Action{Kind: ActionForgedTwin, Family: p.family, Source: src.arn, Twin: forged.arn, Spec: forged.class.Spec, Reason: ReasonForged})
}
