package controller

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// TestDecideService: the invariant for one service, without AWS.
func TestDecideService(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	const src, twin, old = "td/web:1", "td/web:2", "td/web:3"
	onSource := serviceFacts{ecsController: true, runs: patch.KindPlain, runsArn: src, target: twin, now: now, deadline: 30 * time.Minute}
	with := func(mod func(*serviceFacts)) serviceFacts {
		f := onSource
		mod(&f)
		return f
	}
	rolling := func(state types.DeploymentRolloutState, age time.Duration) func(*serviceFacts) {
		return func(f *serviceFacts) {
			f.runs, f.runsArn = patch.KindTwin, old
			f.rollout = &deployment{status: "PRIMARY", taskDef: old, rolloutState: state, createdAt: now.Add(-age)}
		}
	}
	for _, tc := range []struct {
		name string
		f    serviceFacts
		want step
	}{
		{"new twin: move", with(func(f *serviceFacts) { f.targetNew = true }), step{kind: stepMove, twin: twin}},
		{"older twin: ask ECS first", onSource, step{kind: stepReadHistory, twin: twin}},
		{"older twin, no rollback: move", with(func(f *serviceFacts) { f.history = historyClean }), step{kind: stepMove, twin: twin}},
		{"older twin, rolled back: mark", with(func(f *serviceFacts) { f.history = historyRolledBack }), step{kind: stepMarkFailed, twin: twin, code: FailedRolledBack}},
		{"failed deployment listed: mark", with(func(f *serviceFacts) { f.targetFailedOn = true }), step{kind: stepMarkFailed, twin: twin, code: FailedRolloutFailed}},
		{"marked failed: leave", with(func(f *serviceFacts) { f.targetFailed = FailedRolledBack }), step{kind: stepLeave, reason: SkipTwinFailed}},
		{"rolling to target: wait", with(func(f *serviceFacts) { f.targetRolling = true }), step{kind: stepWait, twin: twin}},
		{"on target: nothing", with(func(f *serviceFacts) { f.runs, f.runsArn = patch.KindTwin, twin }), step{kind: stepLeave}},
		{"CODE_DEPLOY: leave", with(func(f *serviceFacts) { f.ecsController = false }), step{kind: stepLeave, reason: SkipDeploymentController}},
		{"covered by hand: leave", with(func(f *serviceFacts) { f.runs = patch.KindManualSidecar }), step{kind: stepLeave, reason: SkipCovered}},
		{"refused: leave", with(func(f *serviceFacts) { f.target = "" }), step{kind: stepLeave, reason: SkipRefused}},
		{"twin rollout in progress: wait", with(rolling(types.DeploymentRolloutStateInProgress, time.Minute)), step{kind: stepWait, twin: old}},
		{"twin rollout past the deadline: abandon", with(rolling(types.DeploymentRolloutStateInProgress, time.Hour)), step{kind: stepAbandon, twin: old, code: FailedDeadline}},
		{"twin rollout failed: abandon", with(rolling(types.DeploymentRolloutStateFailed, time.Minute)), step{kind: stepAbandon, twin: old, code: FailedRolloutFailed}},
		{"stale twin completed: move on, counted", with(func(f *serviceFacts) {
			rolling(types.DeploymentRolloutStateCompleted, time.Minute)(f)
			f.history = historyClean
		}), step{kind: stepMove, twin: twin, completed: true}},
		{"current twin completed: counted", with(func(f *serviceFacts) {
			rolling(types.DeploymentRolloutStateCompleted, time.Minute)(f)
			f.target = old
		}), step{kind: stepLeave, completed: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(decideService(tc.f), tc.want, cmp.AllowUnexported(step{})); diff != "" {
				t.Errorf("decideService (-got +want):\n%s", diff)
			}
		})
	}
}
