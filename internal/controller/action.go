package controller

import "github.com/ecs-sidecar/reconciler/internal/policy"

// Kinds of Action.
const (
	ActionRegisterTwin   = "register_twin"
	ActionUpdateService  = "update_service"
	ActionReturnToSource = "return_to_source"
	ActionRestoreSource  = "restore_source"
	ActionMarkFailed     = "mark_failed"
	ActionDeregisterTwin = "deregister_twin"
)

// ReasonDuplicate is the reason of deregistering a duplicate twin: another
// twin of the same source and spec, with a lower revision, stays.
const ReasonDuplicate = "duplicate"

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

// act reports an action to the hook, if any.
func (c *Controller) act(a Action) {
	if c.o.OnAction != nil {
		c.o.OnAction(a)
	}
	if c.collect != nil {
		c.collect(a)
	}
}
