package controller

import (
	"fmt"
	"strings"
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
		{"older twin, failed without rollback: mark", with(func(f *serviceFacts) { f.history = historyFailed }), step{kind: stepMarkFailed, twin: twin, code: FailedRolloutFailed}},
		{"reverted twice, contested after 3: move", with(func(f *serviceFacts) { f.history, f.reversions, f.contestedAfter = historyClean, 2, 3 }), step{kind: stepMove, twin: twin}},
		{"reverted 3 times, contested after 3: leave", with(func(f *serviceFacts) { f.history, f.reversions, f.contestedAfter = historyClean, 3, 3 }), step{kind: stepLeave, twin: twin, reason: SkipContested}},
		{"reverted 9 times, always insist: move", with(func(f *serviceFacts) { f.history, f.reversions = historyClean, 9 }), step{kind: stepMove, twin: twin}},
		{"reverted, then rolled back: mark", with(func(f *serviceFacts) { f.history, f.reversions, f.contestedAfter = historyRolledBack, 3, 3 }), step{kind: stepMarkFailed, twin: twin, code: FailedRolledBack}},
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

// TestDeregistrations: what a reconcile deregisters, without AWS.
func TestDeregistrations(t *testing.T) {
	arn := func(n int) string {
		return arnOfRevision("arn:aws:ecs:us-east-1:123456789012:task-definition/web:1", int32(n))
	}
	twin := func(n, source int, status types.TaskDefinitionStatus) *revision {
		return &revision{arn: arn(n), family: "web", number: int32(n), status: status,
			class: patch.Class{Kind: patch.KindTwin, SourceRevision: int32(source), Spec: "s"}}
	}
	canonical := twin(2, 1, types.TaskDefinitionStatusActive)
	dupFree := twin(3, 1, types.TaskDefinitionStatusActive)
	dupUsed := twin(4, 1, types.TaskDefinitionStatusActive)
	dupGone := twin(5, 1, types.TaskDefinitionStatusInactive)
	orphan := twin(7, 6, types.TaskDefinitionStatusActive) // its source 6 is deregistered
	cache := map[string]*revision{}
	for _, r := range []*revision{canonical, dupFree, dupUsed, dupGone, orphan} {
		cache[r.arn] = r
	}
	p := &plan{
		family:   "web",
		twins:    map[twinKey]*revision{{1, "s"}: canonical},
		dups:     map[string]*revision{dupFree.arn: dupFree, dupUsed.arn: dupUsed, dupGone.arn: dupGone},
		services: []*service{{arn: "svc", taskDef: arn(1), deployments: []deployment{{taskDef: dupUsed.arn}}}},
		listed:   []string{orphan.arn, dupUsed.arn, dupFree.arn, canonical.arn, arn(1)},
	}
	kinds := func(as []Action) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.Twin[len(a.Twin)-1:]+":"+a.Reason)
		}
		return out
	}
	cached := func(a string) *revision { return cache[a] }
	if diff := cmp.Diff(kinds(deregistrations(p, false, cached)), []string{"3:" + ReasonDuplicate}); diff != "" {
		t.Errorf("duplicates only (-got +want):\n%s", diff)
	}
	if got := kinds(deregistrations(p, true, cached)); len(got) != 1 {
		t.Errorf("with an incomplete listing, unused twins are not judged: %v", got)
	}
	p.listedAll = true
	if diff := cmp.Diff(kinds(deregistrations(p, true, cached)), []string{"3:" + ReasonDuplicate, "7:"}); diff != "" {
		t.Errorf("with unused (-got +want):\n%s", diff)
	}
}

// TestSupersededDuplicates: twins of a source no reconcile instruments any
// more (a newer source is current) are deduplicated by content: of those
// alike, the lowest ACTIVE is kept and the unused others go; a forgery
// (other content), an INACTIVE twin and one a service runs stay.
func TestSupersededDuplicates(t *testing.T) {
	arn := func(n int) string {
		return arnOfRevision("arn:aws:ecs:us-east-1:123456789012:task-definition/web:1", int32(n))
	}
	twin := func(n int, digest string, status types.TaskDefinitionStatus) *revision {
		return &revision{arn: arn(n), family: "web", number: int32(n), status: status, digest: digest,
			class: patch.Class{Kind: patch.KindTwin, SourceRevision: 3, Spec: "s"}}
	}
	kept, dup, forged, gone, running, dupOfDup := twin(5, "d1", types.TaskDefinitionStatusActive), twin(6, "d1", types.TaskDefinitionStatusActive),
		twin(7, "other", types.TaskDefinitionStatusActive), twin(8, "d1", types.TaskDefinitionStatusInactive), twin(9, "d1", types.TaskDefinitionStatusActive),
		twin(10, "d1", types.TaskDefinitionStatusActive)
	p := &plan{
		family:   "web",
		seen:     map[twinKey][]*revision{{3, "s"}: {dupOfDup, running, gone, forged, dup, kept}},
		twins:    map[twinKey]*revision{},
		dups:     map[string]*revision{},
		services: []*service{{arn: "svc", taskDef: arn(12), deployments: []deployment{{taskDef: running.arn}}}},
	}
	var got []string
	for _, a := range deregistrations(p, false, func(string) *revision { return nil }) {
		got = append(got, fmt.Sprintf("%s:%s", a.Twin[strings.LastIndexByte(a.Twin, ':')+1:], a.Reason))
	}
	if diff := cmp.Diff(got, []string{"6:" + ReasonDuplicate, "10:" + ReasonDuplicate}); diff != "" {
		t.Errorf("superseded duplicates (-got +want):\n%s", diff)
	}
	// Once a reconcile instruments source 3 again, the digest check of
	// chooseTwin decides, not this.
	p.twins[twinKey{3, "s"}] = kept
	if got := deregistrations(p, false, func(string) *revision { return nil }); len(got) != 0 {
		t.Errorf("a handled key is left to chooseTwin: %+v", got)
	}
}
