// Package metrics holds every Prometheus collector of the reconciler, all
// named ecs_sidecar_* and registered on a prometheus.Registerer that main
// gives: no globals, no init() registration.
//
// Two kinds of series live here:
//   - coverage (services and families by cluster and state, reasons, ratios)
//     is computed at scrape time from the controller's cache, through
//     Options.Coverage: always fresh, and a service that vanished leaves no
//     stale series;
//   - operations (reconciles, workqueue, events, AWS calls, rollouts,
//     sweeps) are counters and histograms fed by the methods of *Metrics,
//     which satisfy controller.Observer by signature.
//
// Every label value comes from a closed set given in Options.Labels, and is
// pre-created at zero so that rate() and absent() work from the first
// scrape; a value outside its set is counted under "other". Cluster and
// family names come from AWS; family names appear only with PerFamily.
// AWS error codes are open-ended: codes outside KnownErrorCodes are counted
// as "Other". No label value is ever a secret, an ARN or free text.
package metrics

import (
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// Namespace prefixes every metric name.
const Namespace = "ecs_sidecar"

// Label values outside a closed set.
const (
	// Other replaces a label value that is not in its closed set.
	Other = "other"
	// OtherErrorCode replaces an AWS error code outside KnownErrorCodes.
	OtherErrorCode = "Other"
	// UnknownKind is the event kind of a message that could not be parsed.
	UnknownKind = "unknown"
)

// ResultSuccess is the reconcile result that is not an error
// (controller.ResultSuccess).
const ResultSuccess = "success"

// Sweep results.
const (
	SweepSuccess = "success"
	SweepError   = "error"
)

// Labels are the closed sets of label values. Main fills them from the
// packages that own them (controller, watch, policy, patch, cloud); this
// package imports none of them but patch.
type Labels struct {
	// States are the coverage states of a service, from the best covered
	// to the least: the order decides a family's state (its worst service).
	States []string
	// CoveredStates are the states in which the agent runs.
	CoveredStates []string
	// Reasons are every reason a ServiceState may carry: policy reasons,
	// refusal codes, skip codes, failure codes.
	Reasons []string
	// Results are the reconcile results.
	Results []string
	// Sweeps are the sweep names.
	Sweeps []string
	// Skips are the reasons a service is left alone.
	Skips []string
	// RolloutOutcomes are the outcomes of a rollout of a twin.
	RolloutOutcomes []string
	// FailureCodes are the codes with which a twin is marked failed.
	FailureCodes []string
	// RefusalCodes are the codes of patch refusals.
	RefusalCodes []string
	// Owners are who may manage a family's task definitions.
	Owners []string
	// EventKinds and EventOutcomes are the SQS consumer's.
	EventKinds, EventOutcomes []string
	// APIOperations are the AWS operations the reconciler calls, by SDK
	// service ID: their success and throttle series exist from startup.
	APIOperations map[string][]string
}

// Build describes the binary, for ecs_sidecar_build_info.
type Build struct {
	Version, Revision, GoVersion string
}

// Options configure New.
type Options struct {
	// Coverage calls yield with the coverage of every service known, in
	// any order; it is called at each scrape. Nil means no coverage series.
	// (A callback, not a slice: at each scrape, a slice of every service in
	// the account would be garbage the size of the fleet.)
	Coverage func(yield func(ServiceState))
	// PerFamily adds ecs_sidecar_family_services{cluster,family,state,reason}:
	// one series per family and state, so cardinality grows with the fleet.
	PerFamily bool
	Labels    Labels
	// Throttled classifies an AWS error code; default: the SDK's throttle
	// codes (retry.DefaultThrottleErrorCodes), as cloud.IsThrottled.
	Throttled func(code string) bool
	Build     Build
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Metrics records what the reconciler does. Its methods are safe for
// concurrent use.
type Metrics struct {
	o Options

	reconciles      *prometheus.CounterVec
	reconcileErrors prometheus.Counter
	reconcileTime   *prometheus.HistogramVec

	events   *prometheus.CounterVec
	eventLag *prometheus.HistogramVec

	apiCalls     *prometheus.CounterVec
	apiThrottles *prometheus.CounterVec

	twinsRegistered prometheus.Counter
	forgedTwins     prometheus.Counter
	servicesUpdated prometheus.Counter
	servicesSkipped *prometheus.CounterVec
	refusals        *prometheus.CounterVec
	rollouts        *prometheus.CounterVec
	twinsFailed     *prometheus.CounterVec

	sweeps          *prometheus.CounterVec
	sweepDuration   *prometheus.HistogramVec
	sweepLastOK     *prometheus.GaugeVec
	sweepLastResult *prometheus.GaugeVec

	queue *queueProvider

	mu        sync.Mutex
	sweepErrs map[string]sweepStatus
}

type sweepStatus struct {
	done bool
	err  error
}

// New creates every collector and registers it on reg; it panics, as
// prometheus.MustRegister does, when a name is already registered there.
func New(reg prometheus.Registerer, o Options) *Metrics {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Throttled == nil {
		o.Throttled = func(code string) bool {
			_, ok := retry.DefaultThrottleErrorCodes[code]
			return ok
		}
	}
	m := &Metrics{o: o, sweepErrs: map[string]sweepStatus{}}

	m.reconciles = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "reconcile_total",
		Help: "Reconciles of a task definition family, by result (success, error, panic).",
	}, []string{"result"})
	m.reconcileErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "reconcile_errors_total",
		Help: "Reconciles that failed (error or panic) and were queued again with backoff.",
	})
	m.reconcileTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "reconcile_time_seconds",
		Help:    "Duration of a reconcile of one family, by result.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120},
	}, []string{"result"})

	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "events_received_total",
		Help: "SQS messages received, by event kind (unknown when unparseable) and outcome.",
	}, []string{"kind", "outcome"})
	m.eventLag = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "event_lag_seconds",
		Help:    "Time from an event (CloudTrail's eventTime) to the success of the reconcile that covered it, by kind.",
		Buckets: []float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600},
	}, []string{"kind"})

	m.apiCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "aws_api_calls_total",
		Help: "AWS API call attempts (retries included), by SDK service ID, operation and error code (\"\" on success, \"Other\" for a code outside the known list).",
	}, []string{"service", "operation", "error_code"})
	m.apiThrottles = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "aws_api_throttles_total",
		Help: "AWS API call attempts refused for their rate (a throttling error code), by service and operation.",
	}, []string{"service", "operation"})

	m.forgedTwins = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "forged_twins_total",
		Help: "Revisions refused for carrying the twin marker tags without the twin's content (forged or retagged).",
	})
	m.twinsRegistered = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "twins_registered_total",
		Help: "Instrumented twins registered (RegisterTaskDefinition).",
	})
	m.servicesUpdated = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "services_updated_total",
		Help: "Services moved to another task definition (UpdateService): to a twin, or back to its source.",
	})
	m.servicesSkipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "services_skipped_total",
		Help: "Services of an opted-in family left alone during a reconcile, by reason.",
	}, []string{"reason"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "refusals_total",
		Help: "Task definition revisions the patch refused to instrument, by refusal code (a revision with two codes counts under each).",
	}, []string{"code"})
	m.rollouts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "rollouts_total",
		Help: "Rollouts of a twin that ended, by outcome (completed, failed, rolled_back, deadline).",
	}, []string{"outcome"})
	m.twinsFailed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "twins_marked_failed_total",
		Help: "Twins marked failed (not retried until the spec changes), by failure code.",
	}, []string{"code"})

	m.sweeps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "sweeps_total",
		Help: "Sweeps run, by sweep (services, families) and result (success, error).",
	}, []string{"sweep", "result"})
	m.sweepDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "sweep_duration_seconds",
		Help:    "Duration of each sweep, by sweep and result.",
		Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800},
	}, []string{"sweep", "result"})
	m.sweepLastOK = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "sweep_last_success_timestamp_seconds",
		Help: "Unix time the last successful sweep ended, by sweep; 0 before the first.",
	}, []string{"sweep"})
	m.sweepLastResult = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "sweep_last_duration_seconds",
		Help: "Duration of the last sweep, by sweep.",
	}, []string{"sweep"})

	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help: "Always 1; the labels say which build runs.",
	}, []string{"version", "revision", "goversion"})
	buildInfo.WithLabelValues(orUnknown(o.Build.Version), orUnknown(o.Build.Revision), orUnknown(o.Build.GoVersion)).Set(1)

	m.queue = newQueueProvider()

	reg.MustRegister(m.reconciles, m.reconcileErrors, m.reconcileTime, m.events, m.eventLag,
		m.apiCalls, m.apiThrottles, m.twinsRegistered, m.forgedTwins, m.servicesUpdated, m.servicesSkipped,
		m.refusals, m.rollouts, m.twinsFailed, m.sweeps, m.sweepDuration, m.sweepLastOK,
		m.sweepLastResult, buildInfo)
	m.queue.register(reg)
	if o.Coverage != nil {
		reg.MustRegister(newCoverageCollector(o))
	}
	m.precreate()
	return m
}

// precreate makes every series whose label values are known in advance.
func (m *Metrics) precreate() {
	l := m.o.Labels
	for _, r := range l.Results {
		m.reconciles.WithLabelValues(r)
		m.reconcileTime.WithLabelValues(r)
	}
	for _, k := range append(slices.Clone(l.EventKinds), UnknownKind) {
		for _, o := range l.EventOutcomes {
			m.events.WithLabelValues(k, o)
		}
		m.eventLag.WithLabelValues(k)
	}
	for service, ops := range l.APIOperations {
		for _, op := range ops {
			m.apiCalls.WithLabelValues(service, op, "")
			m.apiThrottles.WithLabelValues(service, op)
		}
	}
	for _, r := range l.Skips {
		m.servicesSkipped.WithLabelValues(r)
	}
	for _, c := range l.RefusalCodes {
		m.refusals.WithLabelValues(c)
	}
	for _, o := range l.RolloutOutcomes {
		m.rollouts.WithLabelValues(o)
	}
	for _, c := range l.FailureCodes {
		m.twinsFailed.WithLabelValues(c)
	}
	for _, s := range l.Sweeps {
		for _, r := range []string{SweepSuccess, SweepError} {
			m.sweeps.WithLabelValues(s, r)
			m.sweepDuration.WithLabelValues(s, r)
		}
		m.sweepLastOK.WithLabelValues(s)
		m.sweepLastResult.WithLabelValues(s)
	}
}

// closed returns v when it is in set, else Other.
func closed(v string, set []string) string {
	if slices.Contains(set, v) {
		return v
	}
	return Other
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// Reconciled counts a reconcile and its duration (controller.Observer).
func (m *Metrics) Reconciled(result string, d time.Duration) {
	result = closed(result, m.o.Labels.Results)
	m.reconciles.WithLabelValues(result).Inc()
	m.reconcileTime.WithLabelValues(result).Observe(d.Seconds())
	if result != ResultSuccess {
		m.reconcileErrors.Inc()
	}
}

// ForgedTwin counts a revision refused as a forged twin (controller.Observer).
func (m *Metrics) ForgedTwin() { m.forgedTwins.Inc() }

// TwinRegistered counts a twin registered (controller.Observer).
func (m *Metrics) TwinRegistered() { m.twinsRegistered.Inc() }

// ServiceUpdated counts an UpdateService (controller.Observer).
func (m *Metrics) ServiceUpdated() { m.servicesUpdated.Inc() }

// ServiceSkipped counts a service left alone (controller.Observer).
func (m *Metrics) ServiceSkipped(reason string) {
	m.servicesSkipped.WithLabelValues(closed(reason, m.o.Labels.Skips)).Inc()
}

// RolloutFailed counts a twin marked failed (controller.Observer).
func (m *Metrics) RolloutFailed(code string) {
	m.twinsFailed.WithLabelValues(closed(code, m.o.Labels.FailureCodes)).Inc()
}

// RolloutDone counts a rollout that ended (controller.Observer).
func (m *Metrics) RolloutDone(outcome string) {
	m.rollouts.WithLabelValues(closed(outcome, m.o.Labels.RolloutOutcomes)).Inc()
}

// Refused counts each distinct code of a refusal (controller.Observer).
func (m *Metrics) Refused(r *patch.Refusal) {
	if r == nil {
		return
	}
	seen := map[string]bool{}
	for _, reason := range r.Reasons {
		c := closed(string(reason.Code), m.o.Labels.RefusalCodes)
		if !seen[c] {
			seen[c] = true
			m.refusals.WithLabelValues(c).Inc()
		}
	}
}

// SweepDone records a sweep (controller.Observer).
func (m *Metrics) SweepDone(sweep string, d time.Duration, err error) {
	sweep = closed(sweep, m.o.Labels.Sweeps)
	result := SweepSuccess
	if err != nil {
		result = SweepError
	}
	m.sweeps.WithLabelValues(sweep, result).Inc()
	m.sweepDuration.WithLabelValues(sweep, result).Observe(d.Seconds())
	m.sweepLastResult.WithLabelValues(sweep).Set(d.Seconds())
	if err == nil {
		m.sweepLastOK.WithLabelValues(sweep).Set(float64(m.o.Now().UnixNano()) / 1e9)
	}
	m.mu.Lock()
	m.sweepErrs[sweep] = sweepStatus{done: true, err: err}
	m.mu.Unlock()
}

// LastSweep reports whether a sweep has run, and the error of the last one.
func (m *Metrics) LastSweep(sweep string) (done bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sweepErrs[sweep]
	return s.done, s.err
}

// EventObserved counts an SQS message by kind ("" when unknown) and outcome
// (watch.ConsumerOptions.Observe).
func (m *Metrics) EventObserved(kind, outcome string) {
	m.events.WithLabelValues(m.kind(kind), closed(outcome, m.o.Labels.EventOutcomes)).Inc()
}

// EventLag observes the time from an event to the reconcile that covered it
// (watch.ConsumerOptions.Lag).
func (m *Metrics) EventLag(kind string, d time.Duration) {
	m.eventLag.WithLabelValues(m.kind(kind)).Observe(max(d, 0).Seconds())
}

func (m *Metrics) kind(k string) string {
	if k == "" {
		return UnknownKind
	}
	return closed(k, m.o.Labels.EventKinds)
}

// APICall counts one attempt of an AWS call and, when its error code is a
// throttle, a throttle (cloud.Options.Observe). code is "" on success.
func (m *Metrics) APICall(service, operation, code string) {
	label := code
	if code != "" && !knownErrorCode(code) {
		label = OtherErrorCode
	}
	m.apiCalls.WithLabelValues(service, operation, label).Inc()
	if code != "" && m.o.Throttled(code) {
		m.apiThrottles.WithLabelValues(service, operation).Inc()
	}
}
