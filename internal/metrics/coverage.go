package metrics

import (
	"math"
	"slices"
	"sort"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// ServiceState is the coverage of one service (main adapts the controller's
// ServiceStatus to it). The service's own name is not used: no series is
// ever per service.
type ServiceState struct {
	Cluster string
	Family  string
	// State is one of Labels.States.
	State string
	// Reason is a code of Labels.Reasons, or "" (covered, pending, stale).
	Reason string
	// OptedIn: the family's decision is to instrument.
	OptedIn bool
	// Linux is false for Windows task definitions.
	Linux bool
	// Owner is who manages the family's task definitions: one of
	// Labels.Owners, or "" (not known yet).
	Owner string
}

// coverageCollector computes the coverage series at each scrape from the
// controller's cache, so they are always current and a service, family or
// cluster that is gone leaves no series behind. For each cluster present,
// every state and every reason has a series, zero or not.
type coverageCollector struct {
	coverage func(yield func(ServiceState))
	// familyCount is the number of (cluster, family) pairs of the last
	// scrape: the size of the next one's table.
	familyCount atomic.Int64
	labels      Labels
	perFamily   bool

	services, families, reasons, owners, ratio, fleetRatio, perFamilyDesc *prometheus.Desc
}

func newCoverageCollector(o Options) *coverageCollector {
	name := func(n string) string { return prometheus.BuildFQName(Namespace, "", n) }
	return &coverageCollector{
		coverage: o.Coverage, labels: o.Labels, perFamily: o.PerFamily,
		services: prometheus.NewDesc(name("services"),
			"Services by cluster and coverage state: covered (our twin, current spec), covered_embedded, covered_manual, stale (our twin, older spec), pending, failed, contested (another writer keeps deploying the source over the twin), excluded (not opted in or opted out), unsupported.",
			[]string{"cluster", "state"}, nil),
		families: prometheus.NewDesc(name("families"),
			"Task definition families by cluster and state: a family counts once per cluster where it has services, in the state of its least covered service there.",
			[]string{"cluster", "state"}, nil),
		reasons: prometheus.NewDesc(name("services_by_reason"),
			"Services not covered, by cluster and reason code: the policy's reason (excluded), the refusal or skip code (unsupported), the failure code (failed).",
			[]string{"cluster", "reason"}, nil),
		owners: prometheus.NewDesc(name("services_by_owner"),
			"Services by cluster and who manages their family's task definitions, from its tags: cloudformation (CloudFormation, CDK, SAM), copilot, the value of the configured ownerTag (terraform, pulumi, other), none. Only owners with services have a series.",
			[]string{"cluster", "owner"}, nil),
		ratio: prometheus.NewDesc(name("coverage_ratio"),
			"Share of the opted-in services that run the agent (covered, covered_embedded, covered_manual, stale), by cluster; cluster=\"\" is the whole fleet. NaN when no service is opted in.",
			[]string{"cluster"}, nil),
		fleetRatio: prometheus.NewDesc(name("fleet_coverage_ratio"),
			"Share of all Linux services, opted in or not, that run the agent, by cluster; cluster=\"\" is the whole fleet. NaN when there is no Linux service.",
			[]string{"cluster"}, nil),
		perFamilyDesc: prometheus.NewDesc(name("family_services"),
			"Services by cluster, family, state and reason (only with metrics per family enabled: one series per family and state).",
			[]string{"cluster", "family", "state", "reason"}, nil),
	}
}

func (c *coverageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.services
	ch <- c.families
	ch <- c.reasons
	ch <- c.owners
	ch <- c.ratio
	ch <- c.fleetRatio
	if c.perFamily {
		ch <- c.perFamilyDesc
	}
}

// tally counts services for one cluster, or the whole fleet.
type tally struct {
	states            map[string]int
	reasons           map[string]int
	owners            map[string]int
	optedIn, optedInC int // opted-in services, and those running the agent
	linux, linuxC     int // Linux services, and those running the agent
}

func newTally() *tally {
	return &tally{states: map[string]int{}, reasons: map[string]int{}, owners: map[string]int{}}
}

func (t *tally) ratios() (opted, fleet float64) {
	return ratio(t.optedInC, t.optedIn), ratio(t.linuxC, t.linux)
}

func ratio(n, d int) float64 {
	if d == 0 {
		return math.NaN()
	}
	return float64(n) / float64(d)
}

type familyKey struct{ cluster, family string }
type familyStateKey struct{ cluster, family, state, reason string }

func (c *coverageCollector) Collect(ch chan<- prometheus.Metric) {
	fleet := newTally()
	clusters := map[string]*tally{}
	worst := make(map[familyKey]int, c.familyCount.Load()) // index in States of the family's least covered service
	perFamily := map[familyStateKey]int{}
	c.coverage(func(s ServiceState) {
		state := closed(s.State, c.labels.States)
		reason := ""
		if s.Reason != "" {
			reason = closed(s.Reason, c.labels.Reasons)
		}
		owner := ""
		if s.Owner != "" {
			owner = closed(s.Owner, c.labels.Owners)
		}
		t := clusters[s.Cluster]
		if t == nil {
			t = newTally()
			clusters[s.Cluster] = t
		}
		if owner != "" {
			t.owners[owner]++
		}
		covered := slices.Contains(c.labels.CoveredStates, state)
		for _, t := range []*tally{t, fleet} {
			t.states[state]++
			if reason != "" {
				t.reasons[reason]++
			}
			if s.OptedIn {
				t.optedIn++
				if covered {
					t.optedInC++
				}
			}
			if s.Linux {
				t.linux++
				if covered {
					t.linuxC++
				}
			}
		}
		rank := slices.Index(c.labels.States, state)
		if rank < 0 {
			rank = len(c.labels.States) // other: the least covered
		}
		k := familyKey{s.Cluster, s.Family}
		if w, ok := worst[k]; !ok || rank > w {
			worst[k] = rank
		}
		if c.perFamily {
			perFamily[familyStateKey{s.Cluster, s.Family, state, reason}]++
		}
	})
	c.familyCount.Store(int64(len(worst)))

	names := make([]string, 0, len(clusters))
	for n := range clusters {
		names = append(names, n)
	}
	sort.Strings(names)
	familyStates := map[string]map[string]int{}
	for k, rank := range worst {
		state := Other
		if rank < len(c.labels.States) {
			state = c.labels.States[rank]
		}
		if familyStates[k.cluster] == nil {
			familyStates[k.cluster] = map[string]int{}
		}
		familyStates[k.cluster][state]++
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, cl := range names {
		t := clusters[cl]
		for _, st := range c.labels.States {
			gauge(c.services, float64(t.states[st]), cl, st)
			gauge(c.families, float64(familyStates[cl][st]), cl, st)
		}
		if n := t.states[Other]; n > 0 {
			gauge(c.services, float64(n), cl, Other)
			gauge(c.families, float64(familyStates[cl][Other]), cl, Other)
		}
		for _, r := range c.labels.Reasons {
			gauge(c.reasons, float64(t.reasons[r]), cl, r)
		}
		if n := t.reasons[Other]; n > 0 {
			gauge(c.reasons, float64(n), cl, Other)
		}
		owners := c.labels.Owners
		if !slices.Contains(owners, Other) {
			owners = append(slices.Clone(owners), Other)
		}
		for _, o := range owners {
			if n := t.owners[o]; n > 0 {
				gauge(c.owners, float64(n), cl, o)
			}
		}
		opted, all := t.ratios()
		gauge(c.ratio, opted, cl)
		gauge(c.fleetRatio, all, cl)
	}
	opted, allRatio := fleet.ratios()
	gauge(c.ratio, opted, "")
	gauge(c.fleetRatio, allRatio, "")
	for k, n := range perFamily {
		gauge(c.perFamilyDesc, float64(n), k.cluster, k.family, k.state, k.reason)
	}
}
