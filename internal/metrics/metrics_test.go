package metrics

import (
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/client-go/util/workqueue"

	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// testLabels mirrors what main gives (a subset of each set is enough here).
func testLabels() Labels {
	return Labels{
		States:          []string{"covered", "covered_embedded", "covered_manual", "stale", "excluded", "pending", "unsupported", "failed"},
		CoveredStates:   []string{"covered", "covered_embedded", "covered_manual", "stale"},
		Owners:          []string{"cloudformation", "copilot", "terraform", "pulumi", "other", "none"},
		Reasons:         []string{"not_opted_in", "opted_out_by_tag", "windows", "unknown_command", "deployment_controller", "rolled_back"},
		Results:         []string{"success", "error", "panic"},
		Sweeps:          []string{"services", "families"},
		Skips:           []string{"deployment_controller", "twin_failed"},
		RolloutOutcomes: []string{"completed", "failed", "rolled_back", "deadline"},
		FailureCodes:    []string{"rolled_back", "rollout_failed", "deadline"},
		RefusalCodes:    []string{"windows", "unknown_command", "no_execution_role"},
		EventKinds:      []string{"register_task_definition", "update_service"},
		EventOutcomes:   []string{"queued", "unparseable"},
		APIOperations:   map[string][]string{"ECS": {"ListServices", "RegisterTaskDefinition"}, "SQS": {"ReceiveMessage"}},
	}
}

func newTest(t *testing.T, cov func() []ServiceState, perFamily bool) (*prometheus.Registry, *Metrics) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	var each func(func(ServiceState))
	if cov != nil {
		each = func(yield func(ServiceState)) {
			for _, s := range cov() {
				yield(s)
			}
		}
	}
	m := New(reg, Options{
		Coverage: each, PerFamily: perFamily, Labels: testLabels(),
		Build: Build{Version: "v1.2.3", Revision: "abc", GoVersion: "go1.26"},
		Now:   func() time.Time { return time.Unix(1700000000, 500_000_000) },
	})
	return reg, m
}

// value gathers reg and returns the value of the series name{labels}; ok is
// false when there is no such series.
func value(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			if len(got) != len(labels) {
				continue
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
			return math.NaN(), true
		}
	}
	return 0, false
}

func fleet() []ServiceState {
	return []ServiceState{
		// prod: 4 opted in, 3 run the agent; 1 excluded; 1 Windows.
		{Cluster: "prod", Family: "web", State: "covered", OptedIn: true, Linux: true, Owner: "terraform"},
		{Cluster: "prod", Family: "web", State: "stale", OptedIn: true, Linux: true, Owner: "terraform"},
		{Cluster: "prod", Family: "api", State: "covered_embedded", OptedIn: true, Linux: true, Owner: "cloudformation"},
		{Cluster: "prod", Family: "batch", State: "unsupported", Reason: "unknown_command", OptedIn: true, Linux: true},
		{Cluster: "prod", Family: "legacy", State: "excluded", Reason: "not_opted_in", Linux: true},
		{Cluster: "prod", Family: "win", State: "unsupported", Reason: "windows"},
		// dev: 1 pending, 1 failed.
		{Cluster: "dev", Family: "web", State: "pending", OptedIn: true, Linux: true},
		{Cluster: "dev", Family: "web", State: "failed", Reason: "rolled_back", OptedIn: true, Linux: true},
		// a state and a reason outside the closed sets
		{Cluster: "dev", Family: "odd", State: "weird", Reason: "new_code", Linux: true, Owner: "chef"},
	}
}

func TestMetricsCoverageFromState(t *testing.T) {
	reg, _ := newTest(t, fleet, false)
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ecs_sidecar_coverage_ratio", map[string]string{"cluster": "prod"}, 0.75},
		{"ecs_sidecar_coverage_ratio", map[string]string{"cluster": "dev"}, 0},
		{"ecs_sidecar_coverage_ratio", map[string]string{"cluster": ""}, 3.0 / 6},
		{"ecs_sidecar_fleet_coverage_ratio", map[string]string{"cluster": "prod"}, 3.0 / 5},
		{"ecs_sidecar_fleet_coverage_ratio", map[string]string{"cluster": ""}, 3.0 / 8},
		{"ecs_sidecar_services", map[string]string{"cluster": "prod", "state": "covered"}, 1},
		{"ecs_sidecar_services", map[string]string{"cluster": "prod", "state": "unsupported"}, 2},
		{"ecs_sidecar_services", map[string]string{"cluster": "prod", "state": "failed"}, 0},
		{"ecs_sidecar_services", map[string]string{"cluster": "dev", "state": "other"}, 1},
		// web in prod: covered + stale -> stale; in dev: pending + failed -> failed.
		{"ecs_sidecar_families", map[string]string{"cluster": "prod", "state": "stale"}, 1},
		{"ecs_sidecar_families", map[string]string{"cluster": "prod", "state": "covered"}, 0},
		{"ecs_sidecar_families", map[string]string{"cluster": "prod", "state": "unsupported"}, 2},
		{"ecs_sidecar_families", map[string]string{"cluster": "dev", "state": "failed"}, 1},
		{"ecs_sidecar_families", map[string]string{"cluster": "dev", "state": "pending"}, 0},
		{"ecs_sidecar_services_by_reason", map[string]string{"cluster": "prod", "reason": "unknown_command"}, 1},
		{"ecs_sidecar_services_by_reason", map[string]string{"cluster": "prod", "reason": "windows"}, 1},
		{"ecs_sidecar_services_by_reason", map[string]string{"cluster": "prod", "reason": "rolled_back"}, 0},
		{"ecs_sidecar_services_by_reason", map[string]string{"cluster": "dev", "reason": "other"}, 1},
		{"ecs_sidecar_services_by_owner", map[string]string{"cluster": "prod", "owner": "terraform"}, 2},
		{"ecs_sidecar_services_by_owner", map[string]string{"cluster": "prod", "owner": "cloudformation"}, 1},
		{"ecs_sidecar_services_by_owner", map[string]string{"cluster": "dev", "owner": "other"}, 1},
	}
	for _, tt := range tests {
		got, ok := value(t, reg, tt.name, tt.labels)
		if !ok {
			t.Errorf("%s%v: no series", tt.name, tt.labels)
			continue
		}
		if math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	// Every state and every reason exists for each cluster seen, and nothing
	// is per family without the flag.
	if got, want := count(t, reg, "ecs_sidecar_services"), 2*8+1; got != want {
		t.Errorf("ecs_sidecar_services series = %d, want %d", got, want)
	}
	if got, want := count(t, reg, "ecs_sidecar_services_by_reason"), 2*6+1; got != want {
		t.Errorf("ecs_sidecar_services_by_reason series = %d, want %d", got, want)
	}
	// Only owners with services: prod's two, dev's one (chef is "other").
	if got, want := count(t, reg, "ecs_sidecar_services_by_owner"), 3; got != want {
		t.Errorf("ecs_sidecar_services_by_owner series = %d, want %d", got, want)
	}
	if got := count(t, reg, "ecs_sidecar_family_services"); got != 0 {
		t.Errorf("ecs_sidecar_family_services without PerFamily: %d series, want 0", got)
	}
}

// count gathers reg and returns the number of series of name.
func count(t *testing.T, reg prometheus.Gatherer, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

func TestMetricsCoverageFollowsTheCache(t *testing.T) {
	var mu sync.Mutex
	states := fleet()
	reg, _ := newTest(t, func() []ServiceState {
		mu.Lock()
		defer mu.Unlock()
		return states
	}, true)
	if got, ok := value(t, reg, "ecs_sidecar_family_services", map[string]string{"cluster": "prod", "family": "batch", "state": "unsupported", "reason": "unknown_command"}); !ok || got != 1 {
		t.Errorf("family_services{prod,batch,unsupported,unknown_command} = %v (present %v), want 1", got, ok)
	}
	// The dev cluster goes away: its series go with it; no data means NaN.
	mu.Lock()
	states = nil
	mu.Unlock()
	if _, ok := value(t, reg, "ecs_sidecar_services", map[string]string{"cluster": "dev", "state": "pending"}); ok {
		t.Errorf("a cluster with no service left still has series")
	}
	if got, ok := value(t, reg, "ecs_sidecar_coverage_ratio", map[string]string{"cluster": ""}); !ok || !math.IsNaN(got) {
		t.Errorf("coverage_ratio with no service = %v (present %v), want NaN", got, ok)
	}
	if got := count(t, reg, "ecs_sidecar_family_services"); got != 0 {
		t.Errorf("family_services with no service: %d series, want 0", got)
	}
}

func TestMetricsPrecreated(t *testing.T) {
	reg, _ := newTest(t, nil, false)
	for _, s := range []struct {
		name   string
		labels map[string]string
	}{
		{"ecs_sidecar_reconcile_total", map[string]string{"result": "panic"}},
		{"ecs_sidecar_reconcile_errors_total", nil},
		{"ecs_sidecar_events_received_total", map[string]string{"kind": "unknown", "outcome": "unparseable"}},
		{"ecs_sidecar_events_received_total", map[string]string{"kind": "update_service", "outcome": "queued"}},
		{"ecs_sidecar_event_lag_seconds", map[string]string{"kind": "register_task_definition"}},
		{"ecs_sidecar_aws_api_calls_total", map[string]string{"service": "ECS", "operation": "RegisterTaskDefinition", "error_code": ""}},
		{"ecs_sidecar_aws_api_throttles_total", map[string]string{"service": "SQS", "operation": "ReceiveMessage"}},
		{"ecs_sidecar_services_skipped_total", map[string]string{"reason": "twin_failed"}},
		{"ecs_sidecar_refusals_total", map[string]string{"code": "no_execution_role"}},
		{"ecs_sidecar_rollouts_total", map[string]string{"outcome": "deadline"}},
		{"ecs_sidecar_twins_marked_failed_total", map[string]string{"code": "rollout_failed"}},
		{"ecs_sidecar_twins_registered_total", nil},
		{"ecs_sidecar_services_updated_total", nil},
		{"ecs_sidecar_sweeps_total", map[string]string{"sweep": "families", "result": "error"}},
		{"ecs_sidecar_sweep_duration_seconds", map[string]string{"sweep": "services", "result": "success"}},
		{"ecs_sidecar_sweep_last_success_timestamp_seconds", map[string]string{"sweep": "services"}},
	} {
		got, ok := value(t, reg, s.name, s.labels)
		if !ok {
			t.Errorf("%s%v: not there from the start", s.name, s.labels)
		} else if got != 0 {
			t.Errorf("%s%v = %v at start, want 0", s.name, s.labels, got)
		}
	}
	if got, ok := value(t, reg, "ecs_sidecar_build_info", map[string]string{"version": "v1.2.3", "revision": "abc", "goversion": "go1.26"}); !ok || got != 1 {
		t.Errorf("build_info = %v (present %v), want 1", got, ok)
	}
}

func TestMetricsObserverMethods(t *testing.T) {
	reg, m := newTest(t, nil, false)
	m.Reconciled("success", 20*time.Millisecond)
	m.Reconciled("error", time.Second)
	m.Reconciled("panic", time.Second)
	m.TwinRegistered()
	m.ServiceUpdated()
	m.ServiceUpdated()
	m.ServiceSkipped("twin_failed")
	m.ServiceSkipped("something_new")
	m.RolloutFailed("deadline")
	m.RolloutDone("completed")
	m.Refused(&patch.Refusal{Reasons: []patch.Reason{
		{Code: "unknown_command", Container: "a"}, {Code: "unknown_command", Container: "b"},
		{Code: "no_execution_role"}, {Code: "brand_new"},
	}})
	m.Refused(nil)
	m.SweepDone("services", 3*time.Second, nil)
	m.SweepDone("families", time.Second, errors.New("boom"))
	m.EventObserved("register_task_definition", "queued")
	m.EventObserved("", "unparseable")
	m.EventLag("update_service", 4*time.Second)
	m.APICall("ECS", "ListServices", "")
	m.APICall("ECS", "ListServices", "ThrottlingException")
	m.APICall("ECS", "ListServices", "ServerException")
	m.APICall("ECS", "ListServices", "Made Up Code <script>")
	m.APICall("SQS", "ReceiveMessage", "RequestThrottled")

	for _, s := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ecs_sidecar_reconcile_total", map[string]string{"result": "success"}, 1},
		{"ecs_sidecar_reconcile_errors_total", nil, 2},
		{"ecs_sidecar_reconcile_time_seconds", map[string]string{"result": "error"}, 1},
		{"ecs_sidecar_twins_registered_total", nil, 1},
		{"ecs_sidecar_services_updated_total", nil, 2},
		{"ecs_sidecar_services_skipped_total", map[string]string{"reason": "twin_failed"}, 1},
		{"ecs_sidecar_services_skipped_total", map[string]string{"reason": "other"}, 1},
		{"ecs_sidecar_twins_marked_failed_total", map[string]string{"code": "deadline"}, 1},
		{"ecs_sidecar_rollouts_total", map[string]string{"outcome": "completed"}, 1},
		{"ecs_sidecar_refusals_total", map[string]string{"code": "unknown_command"}, 1},
		{"ecs_sidecar_refusals_total", map[string]string{"code": "no_execution_role"}, 1},
		{"ecs_sidecar_refusals_total", map[string]string{"code": "other"}, 1},
		{"ecs_sidecar_sweeps_total", map[string]string{"sweep": "services", "result": "success"}, 1},
		{"ecs_sidecar_sweeps_total", map[string]string{"sweep": "families", "result": "error"}, 1},
		{"ecs_sidecar_sweep_last_success_timestamp_seconds", map[string]string{"sweep": "services"}, 1700000000.5},
		{"ecs_sidecar_sweep_last_success_timestamp_seconds", map[string]string{"sweep": "families"}, 0},
		{"ecs_sidecar_sweep_last_duration_seconds", map[string]string{"sweep": "families"}, 1},
		{"ecs_sidecar_events_received_total", map[string]string{"kind": "register_task_definition", "outcome": "queued"}, 1},
		{"ecs_sidecar_events_received_total", map[string]string{"kind": "unknown", "outcome": "unparseable"}, 1},
		{"ecs_sidecar_event_lag_seconds", map[string]string{"kind": "update_service"}, 1},
		{"ecs_sidecar_aws_api_calls_total", map[string]string{"service": "ECS", "operation": "ListServices", "error_code": ""}, 1},
		{"ecs_sidecar_aws_api_calls_total", map[string]string{"service": "ECS", "operation": "ListServices", "error_code": "ThrottlingException"}, 1},
		{"ecs_sidecar_aws_api_calls_total", map[string]string{"service": "ECS", "operation": "ListServices", "error_code": "ServerException"}, 1},
		{"ecs_sidecar_aws_api_calls_total", map[string]string{"service": "ECS", "operation": "ListServices", "error_code": "Other"}, 1},
		{"ecs_sidecar_aws_api_throttles_total", map[string]string{"service": "ECS", "operation": "ListServices"}, 1},
		{"ecs_sidecar_aws_api_throttles_total", map[string]string{"service": "SQS", "operation": "ReceiveMessage"}, 1},
	} {
		got, ok := value(t, reg, s.name, s.labels)
		if !ok || got != s.want {
			t.Errorf("%s%v = %v (present %v), want %v", s.name, s.labels, got, ok, s.want)
		}
	}
	if done, err := m.LastSweep("families"); !done || err == nil {
		t.Errorf("LastSweep(families) = %v, %v; want done with an error", done, err)
	}
	if done, err := m.LastSweep("services"); !done || err != nil {
		t.Errorf("LastSweep(services) = %v, %v; want done without error", done, err)
	}
	if done, _ := m.LastSweep("nope"); done {
		t.Errorf("LastSweep(nope) done, want not")
	}
}

func TestMetricsLint(t *testing.T) {
	reg, m := newTest(t, fleet, true)
	m.QueueMetrics().NewDepthMetric("families")
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Errorf("promlint: %v", problems)
	}
}

func TestMetricsWorkqueue(t *testing.T) {
	reg, m := newTest(t, nil, false)
	q := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "families", MetricsProvider: m.QueueMetrics()},
	)
	defer q.ShutDown()
	q.Add("web")
	q.Add("api")
	q.Add("web")
	if got, _ := value(t, reg, "ecs_sidecar_workqueue_depth", map[string]string{"name": "families"}); got != 2 {
		t.Errorf("depth = %v, want 2", got)
	}
	if got, _ := value(t, reg, "ecs_sidecar_workqueue_adds_total", map[string]string{"name": "families"}); got != 2 {
		t.Errorf("adds = %v, want 2", got)
	}
	item, _ := q.Get()
	q.AddRateLimited(item)
	q.Done(item)
	if got, _ := value(t, reg, "ecs_sidecar_workqueue_retries_total", map[string]string{"name": "families"}); got != 1 {
		t.Errorf("retries = %v, want 1", got)
	}
	if got, _ := value(t, reg, "ecs_sidecar_workqueue_work_duration_seconds", map[string]string{"name": "families"}); got != 1 {
		t.Errorf("work_duration observations = %v, want 1", got)
	}
}

func TestMetricsKnownErrorCodes(t *testing.T) {
	codes := KnownErrorCodes()
	for _, c := range []string{"ThrottlingException", "Throttling", "ClientException", "Canceled", "Transport", "QueueDoesNotExist"} {
		if !knownErrorCode(c) {
			t.Errorf("%s is not a known code", c)
		}
	}
	if knownErrorCode("SomethingElse") {
		t.Errorf("SomethingElse is a known code")
	}
	if len(codes) < 20 || !strings.HasPrefix(codes[0], "A") {
		t.Errorf("KnownErrorCodes() = %v: want a sorted list", codes)
	}
}

func TestHealthHandler(t *testing.T) {
	reg, m := newTest(t, fleet, false)
	var sweptErr = errors.New("first service sweep not done yet")
	srv := httptest.NewServer(Handler(reg, []Check{
		{Name: "config", Err: func() error { return nil }},
		{Name: "first_sweep", Err: func() error { return sweptErr }},
	}))
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/healthz")
	if diff := cmp.Diff(struct {
		Code int
		Body string
	}{code, body}, struct {
		Code int
		Body string
	}{200, "ok\n"}); diff != "" {
		t.Errorf("/healthz (-got +want):\n%s", diff)
	}
	code, body = get("/readyz")
	if diff := cmp.Diff(body, "ok config\nfail first_sweep: first service sweep not done yet\n"); code != 503 || diff != "" {
		t.Errorf("/readyz before the sweep: %d (-got +want):\n%s", code, diff)
	}
	sweptErr = nil
	code, body = get("/readyz")
	if diff := cmp.Diff(body, "ok config\nok first_sweep\n"); code != 200 || diff != "" {
		t.Errorf("/readyz after the sweep: %d (-got +want):\n%s", code, diff)
	}
	m.Reconciled("success", time.Millisecond)
	code, body = get("/metrics")
	for _, want := range []string{
		`ecs_sidecar_reconcile_total{result="success"} 1`,
		`ecs_sidecar_coverage_ratio{cluster="prod"} 0.75`,
		`promhttp_metric_handler_errors_total{cause="encoding"} 0`,
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %q", code, want)
		}
	}
	if code, _ := get("/nothing"); code != 404 {
		t.Errorf("/nothing: %d, want 404", code)
	}
}

func TestServeAndShutdown(t *testing.T) {
	reg, _ := newTest(t, nil, false)
	s, err := Serve("127.0.0.1:0", Handler(reg, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz: %d", resp.StatusCode)
	}
	if err := s.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := http.Get("http://" + s.Addr() + "/healthz"); err == nil {
		t.Errorf("still serving after Shutdown")
	}
	if _, err := Serve(s.Addr()+"x", Handler(reg, nil), nil); err == nil {
		t.Errorf("Serve on a bad address: no error")
	}
}
