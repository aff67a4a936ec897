package controller

import (
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// Coverage states of a service, as metric label values: a closed set.
const (
	StateCovered         = "covered"          // runs our current twin
	StateCoveredEmbedded = "covered_embedded" // the image or task definition runs the agent itself
	StateCoveredManual   = "covered_manual"   // the sidecar was added by hand
	StateStale           = "stale"            // runs our twin of an older spec
	StatePending         = "pending"          // opted in, not (yet) on its twin
	StateFailed          = "failed"           // the rollout of its twin failed
	StateContested       = "contested"        // another writer keeps moving it back to its source (Options.ContestedAfter)
	StateExcluded        = "excluded"         // not opted in, or opted out
	StateUnsupported     = "unsupported"      // cannot be instrumented (Windows, CODE_DEPLOY, a refusal)
)

// States lists every coverage state.
var States = []string{StateCovered, StateCoveredEmbedded, StateCoveredManual, StateStale, StatePending, StateFailed, StateContested, StateExcluded, StateUnsupported}

// ServiceStatus is the coverage of one service, as the controller knows it.
type ServiceStatus struct {
	Cluster string // cluster name
	Service string
	Family  string
	State   string
	// Reason is a fixed code: the policy's reason for excluded, the refusal
	// or skip code for unsupported, the failure code for failed; else "".
	Reason string
	// OptedIn is true when the family's decision is to instrument.
	OptedIn bool
	// Linux is false for Windows task definitions.
	Linux bool
	// Owner is who manages the family's task definitions (one of Owners;
	// "" before the family's first reconcile).
	Owner string
}

// EachCoverage calls f with the coverage of every service the controller
// knows, in no order, without a slice of them all (the metrics read it at
// each scrape). It reads only the cache: no AWS call. The cache is locked meanwhile: f must be quick and must
// not call the controller.
func (c *Controller) EachCoverage(f func(ServiceStatus)) {
	c.st.eachService(func(s *service, v cacheView) { f(status(s, v)) })
}

// status is the coverage of s by what the cache says (v).
func status(s *service, v cacheView) ServiceStatus {
	st := ServiceStatus{Cluster: clusterName(s.cluster), Service: s.name, Family: s.family(), Linux: true}
	rev := v.revision(s.taskDef)
	if rev != nil && rev.class.Kind == patch.KindWindows {
		st.Linux = false
		st.State, st.Reason = StateUnsupported, string(patch.CodeWindows)
		return st
	}
	fam, known := v.family(st.Family)
	if !known || rev == nil {
		st.State = StatePending
		return st
	}
	st.OptedIn, st.Owner = fam.instrument, fam.owner
	switch rev.class.Kind {
	case patch.KindEmbeddedAgent:
		st.State = StateCoveredEmbedded
		return st
	case patch.KindManualSidecar:
		st.State = StateCoveredManual
		return st
	}
	if !fam.instrument {
		st.State, st.Reason = StateExcluded, fam.reason
		return st
	}
	if s.controller != types.DeploymentControllerTypeEcs {
		st.State, st.Reason = StateUnsupported, SkipDeploymentController
		return st
	}
	source := s.taskDef
	if rev.class.Kind == patch.KindTwin {
		if fam.ok.has(s.taskDef) {
			st.State = StateCovered
			return st
		}
		source = arnOfRevision(s.taskDef, rev.class.SourceRevision)
		if _, ok := fam.twinOf.get(source); ok {
			st.State = StateStale
			return st
		}
	}
	if code, ok := fam.refused.get(source); ok {
		st.State, st.Reason = StateUnsupported, string(code)
		return st
	}
	if twin, ok := fam.twinOf.get(source); ok {
		if code, failed := v.failed(twin); failed {
			st.State, st.Reason = StateFailed, code
			return st
		}
		if v.contested(s.arn) == twin {
			st.State = StateContested
			return st
		}
	}
	st.State = StatePending
	return st
}
