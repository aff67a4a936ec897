package main

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ecs-sidecar/reconciler/internal/audit"
	"github.com/ecs-sidecar/reconciler/internal/controller"
	"github.com/ecs-sidecar/reconciler/internal/metrics"
	"github.com/ecs-sidecar/reconciler/internal/patch"
	"github.com/ecs-sidecar/reconciler/internal/policy"
	"github.com/ecs-sidecar/reconciler/internal/watch"
)

// *metrics.Metrics is the controller's observer.
var _ controller.Observer = (*metrics.Metrics)(nil)

// demoMetricsListen is where `run --embedded` serves /metrics when the
// configuration keeps the default (":9102", every interface): a demo stays
// on loopback.
const demoMetricsListen = "127.0.0.1:9102"

// Sweep names, as the controller passes them to Observer.SweepDone.
const (
	sweepServices = "services"
	sweepFamilies = "families"
)

// metricsLabels gathers the closed sets of label values from the packages
// that own them.
func metricsLabels() metrics.Labels {
	var reasons []string
	add := func(vs ...string) {
		for _, v := range vs {
			if !slices.Contains(reasons, v) {
				reasons = append(reasons, v)
			}
		}
	}
	for _, r := range policy.Reasons() {
		add(string(r))
	}
	add(string(controller.ReasonModeRemove))
	for _, c := range patch.RefusalCodes() {
		add(string(c))
	}
	skips := []string{
		controller.SkipDeploymentController, controller.SkipInactiveService, controller.SkipTwinFailed,
		controller.SkipRolloutInProgress, controller.SkipRefused, controller.SkipCovered, controller.SkipSourceInactive,
		controller.SkipContested,
	}
	failures := []string{controller.FailedRolledBack, controller.FailedRolloutFailed, controller.FailedDeadline}
	add(skips...)
	add(failures...)

	kinds := make([]string, len(watch.Kinds))
	for i, k := range watch.Kinds {
		kinds[i] = string(k)
	}
	refusals := make([]string, 0, len(patch.RefusalCodes()))
	for _, c := range patch.RefusalCodes() {
		refusals = append(refusals, string(c))
	}
	return metrics.Labels{
		// From the best covered to the least: a family takes the state of
		// its least covered service in a cluster.
		States: []string{
			controller.StateCovered, controller.StateCoveredEmbedded, controller.StateCoveredManual,
			controller.StateStale, controller.StateExcluded, controller.StatePending,
			controller.StateContested, controller.StateUnsupported, controller.StateFailed,
		},
		// A stale twin runs the agent, of an older spec.
		CoveredStates: []string{
			controller.StateCovered, controller.StateCoveredEmbedded, controller.StateCoveredManual, controller.StateStale,
		},
		Reasons:         reasons,
		Results:         []string{controller.ResultSuccess, controller.ResultError, controller.ResultTerminal, controller.ResultPanic},
		Sweeps:          []string{sweepServices, sweepFamilies},
		Skips:           skips,
		RolloutOutcomes: []string{controller.RolloutCompleted, controller.RolloutFailed, controller.RolloutRolledBk, controller.RolloutDeadline},
		FailureCodes:    failures,
		RefusalCodes:    refusals,
		Owners:          slices.Clone(controller.Owners),
		EventKinds:      kinds,
		EventOutcomes:   slices.Clone(watch.Outcomes),
		APIOperations: map[string][]string{
			ecs.ServiceID:         methods[controller.ECSAPI](),
			sqs.ServiceID:         methods[watch.SQSAPI](),
			eventbridge.ServiceID: methods[audit.EventBridgeAPI](),
			sts.ServiceID:         methods[watch.CallerIdentityAPI](),
		},
	}
}

// methods lists the methods of an interface: the narrow SDK interfaces name
// exactly the AWS operations the reconciler calls.
func methods[I any]() []string {
	t := reflect.TypeFor[I]()
	out := make([]string, t.NumMethod())
	for i := range t.NumMethod() {
		out[i] = t.Method(i).Name
	}
	return out
}

// serviceStates adapts the controller's coverage to the metrics package's.
func serviceStates(each func(func(controller.ServiceStatus))) func(yield func(metrics.ServiceState)) {
	return func(yield func(metrics.ServiceState)) {
		each(func(s controller.ServiceStatus) {
			yield(metrics.ServiceState{Cluster: s.Cluster, Family: s.Family, State: s.State, Reason: s.Reason, OptedIn: s.OptedIn, Linux: s.Linux, Owner: s.Owner})
		})
	}
}

// newMetrics builds the registry (ours, with the Go and process
// collectors, as node_exporter does) and the reconciler's collectors.
// coverage is called at each scrape (Controller.EachCoverage).
func newMetrics(coverage func(func(controller.ServiceStatus)), perFamily bool) (*prometheus.Registry, *metrics.Metrics) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ver, rev, gov := buildInfo()
	m := metrics.New(reg, metrics.Options{
		Coverage:  serviceStates(coverage),
		PerFamily: perFamily,
		Labels:    metricsLabels(),
		Build:     metrics.Build{Version: ver, Revision: rev, GoVersion: gov},
	})
	return reg, m
}

// readiness is what /readyz checks: the configuration passed validation
// (it did, or the server would not be up), AWS answers (the last service
// sweep succeeded) and the first service sweep is done.
func readiness(m *metrics.Metrics, swept <-chan struct{}) []metrics.Check {
	return []metrics.Check{
		{Name: "config", Err: func() error { return nil }},
		{Name: "aws", Err: func() error {
			done, err := m.LastSweep(sweepServices)
			switch {
			case !done:
				return errors.New("no service sweep has ended yet")
			case err != nil:
				return fmt.Errorf("last service sweep failed: %w", err)
			}
			return nil
		}},
		{Name: "first_sweep", Err: func() error {
			select {
			case <-swept:
				return nil
			default:
				return errors.New("the first service sweep has not succeeded yet")
			}
		}},
	}
}

// observability are the metrics settings of `run` that are not in the
// configuration file.
type observability struct {
	// perFamily: --metrics-per-family.
	perFamily bool
	// anyPortIfBusy: the demo's default address is taken (another demo, a
	// test): serve on another loopback port rather than fail.
	anyPortIfBusy bool
}

// serveMetrics serves /metrics, /healthz and /readyz on listen.
func serveMetrics(log *slog.Logger, listen string, anyPortIfBusy bool, reg *prometheus.Registry, m *metrics.Metrics, swept <-chan struct{}) (*metrics.Server, error) {
	h := metrics.Handler(reg, readiness(m, swept))
	srv, err := metrics.Serve(listen, h, log)
	if err != nil && anyPortIfBusy {
		log.Warn("metrics address busy; serving on another loopback port", "addr", listen, "err", err)
		srv, err = metrics.Serve("127.0.0.1:0", h, log)
	}
	if err != nil {
		return nil, err
	}
	log.Info("serving metrics", "addr", srv.Addr(), "paths", "/metrics /healthz /readyz")
	return srv, nil
}
