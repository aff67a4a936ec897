package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// TestPrometheusScrapesReconciler runs `reconciler run --embedded` and
// Debian's prometheus server scraping it every second, both on loopback. It
// drives the simulated account through the ECS API, waits until Prometheus
// reports the coverage the simulator's own state gives (1, then 2 of 3),
// checks a real scrape with `promtool check metrics`, and evaluates every
// PromQL expression of deploy/prometheus/alerts.yaml and
// deploy/grafana/coverage.json against that server.
func TestPrometheusScrapesReconciler(t *testing.T) {
	promPath, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("the prometheus server is required (Debian's prometheus package; .ci/run installs it): %v", err)
	}
	promtoolPath, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is required (Debian's prometheus package; .ci/run installs it): %v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "reconciler")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	simAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	promAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))

	cfgPath := filepath.Join(dir, "reconciler.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(`
metrics:
  listen: %q
sweeps:
  services: {interval: 1s, jitter: 0}
  families: {interval: 2s, jitter: 0}
log: {format: text, level: info}
images: {resolve: false} # the demo's images are public ones: no registry on loopback
`, metricsAddr))
	// --metrics-per-family: the dashboard's table of uncovered families
	// reads ecs_sidecar_family_services, which only that flag exports.
	reconcilerLogs := startProcess(t, "reconciler", bin, "run", "--embedded", "--sim-listen", simAddr, "--config", cfgPath, "--metrics-per-family")
	waitHTTP(t, "http://"+metricsAddr+"/readyz", reconcilerLogs)

	alertsPath, err := filepath.Abs("../../deploy/prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	promCfg := filepath.Join(dir, "prometheus.yml")
	writeFile(t, promCfg, fmt.Sprintf(`
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: reconciler
    static_configs:
      - targets: [%q]
`, alertsPath, metricsAddr))
	promLogs := startProcess(t, "prometheus", promPath, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	prom := "http://" + promAddr
	waitHTTP(t, prom+"/-/ready", promLogs)

	sim := ecs.New(ecs.Options{
		Region: "us-east-1", BaseEndpoint: aws.String("http://" + simAddr),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	ctx := t.Context()

	// 1. Every opted-in service coverable: web and api on revisions that
	// state their command, the CODE_DEPLOY service gone. worker stays out.
	if _, err := sim.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String("demo"), Service: aws.String("bluegreen"), Force: aws.Bool(true)}); err != nil {
		t.Fatalf("delete bluegreen: %v", err)
	}
	deploy(t, sim, "web", "nginx:1.28", []string{"/docker-entrypoint.sh"}, []string{"nginx", "-g", "daemon off;"}, nil)
	deploy(t, sim, "api", "python:3.12", []string{"python3"}, []string{"-m", "http.server", "8080"}, nil)

	want := coverageTruth{OptedIn: 2, OptedInCovered: 2, Services: 3, Covered: 2}
	waitCoverage(t, prom, sim, want, reconcilerLogs)
	for state, n := range map[string]float64{"covered": 2, "excluded": 1, "pending": 0, "unsupported": 0} {
		if got := promValue(t, prom, fmt.Sprintf(`ecs_sidecar_services{cluster="demo",state=%q}`, state)); got != n {
			t.Errorf("ecs_sidecar_services{state=%q} = %v, want %v", state, got, n)
		}
	}
	if got := promValue(t, prom, `ecs_sidecar_services_by_reason{cluster="demo",reason="not_opted_in"}`); got != 1 {
		t.Errorf("services_by_reason{not_opted_in} = %v, want 1 (worker)", got)
	}
	if got := promValue(t, prom, `sum(ecs_sidecar_twins_registered_total)`); got < 2 {
		t.Errorf("twins_registered_total = %v, want at least 2", got)
	}

	// 2. worker opts in with a revision that does not say its command: it
	// cannot be instrumented, 2 of 3 opted-in services are covered.
	deploy(t, sim, "worker", "busybox:1.36", nil, nil, []types.Tag{{Key: aws.String("ecs-sidecar/inject"), Value: aws.String("true")}})
	want = coverageTruth{OptedIn: 3, OptedInCovered: 2, Services: 3, Covered: 2}
	waitCoverage(t, prom, sim, want, reconcilerLogs)
	if got := promValue(t, prom, `ecs_sidecar_services_by_reason{cluster="demo",reason="unknown_command"}`); got != 1 {
		t.Errorf("services_by_reason{unknown_command} = %v, want 1 (worker)", got)
	}
	if got := promValue(t, prom, `ecs_sidecar_refusals_total{code="unknown_command"}`); got < 1 {
		t.Errorf("refusals_total{unknown_command} = %v, want at least 1", got)
	}

	// A real scrape passes promtool's lint.
	scrape := httpGet(t, "http://"+metricsAddr+"/metrics")
	check := exec.Command(promtoolPath, "check", "metrics")
	check.Stdin = strings.NewReader(scrape)
	out, err := check.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	for _, secret := range []string{"demo-access-token", "SecretAccessKey"} {
		if strings.Contains(scrape, secret) {
			t.Errorf("the scrape holds %q", secret)
		}
	}

	// Every expression of the alerts and of the dashboard parses and
	// evaluates on the live server.
	exprs := alertExprs(t, alertsPath)
	exprs = append(exprs, dashboardExprs(t, "../../deploy/grafana/coverage.json")...)
	if len(exprs) < 30 {
		t.Errorf("found %d expressions, want at least 30 (12 alerts and the dashboard's)", len(exprs))
	}
	for _, e := range exprs {
		if _, err := promQuery(prom, e); err != nil {
			t.Errorf("%s: %v", e, err)
		}
	}
	// An expression on a metric nobody exports evaluates fine, to nothing:
	// every ecs_sidecar_ name the alerts and the dashboard use must be in
	// the scrape (a histogram's _bucket, _sum and _count by its name).
	for _, m := range unexported(exprs, scrape) {
		t.Errorf("the alerts or the dashboard use %s, which the reconciler does not export", m)
	}
	// The server loaded the rules and evaluates them without error.
	waitRulesEvaluated(t, prom, 12)
}

// coverageTruth is what the simulator's state says about the demo cluster.
type coverageTruth struct {
	OptedIn, OptedInCovered int // opted-in services, and those running the sidecar
	Services, Covered       int // all (Linux) services, and those running the sidecar
}

func (c coverageTruth) ratios() (opted, fleet float64) {
	return float64(c.OptedInCovered) / float64(c.OptedIn), float64(c.Covered) / float64(c.Services)
}

// simTruth reads the demo cluster from the simulator through the ECS API: a
// service is covered when its task definition has the sidecar container,
// and opted in when the newest revision of its family that is not a twin
// and carries the inject tag says true (no policies are configured).
func simTruth(t *testing.T, sim *ecs.Client) coverageTruth {
	t.Helper()
	ctx := t.Context()
	list, err := sim.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String("demo")})
	if err != nil {
		t.Fatalf("ListServices: %v", err)
	}
	desc, err := sim.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("demo"), Services: list.ServiceArns})
	if err != nil {
		t.Fatalf("DescribeServices: %v", err)
	}
	var c coverageTruth
	for _, s := range desc.Services {
		if aws.ToString(s.Status) != "ACTIVE" {
			continue
		}
		td, err := sim.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: s.TaskDefinition})
		if err != nil {
			t.Fatalf("DescribeTaskDefinition: %v", err)
		}
		covered := false
		for _, cd := range td.TaskDefinition.ContainerDefinitions {
			covered = covered || aws.ToString(cd.Name) == "datacollector-sidecar"
		}
		c.Services++
		if covered {
			c.Covered++
		}
		if optedIn(t, sim, aws.ToString(td.TaskDefinition.Family)) {
			c.OptedIn++
			if covered {
				c.OptedInCovered++
			}
		}
	}
	return c
}

func optedIn(t *testing.T, sim *ecs.Client, family string) bool {
	t.Helper()
	revs, err := sim.ListTaskDefinitions(t.Context(), &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(family), Sort: types.SortOrderDesc})
	if err != nil {
		t.Fatalf("ListTaskDefinitions: %v", err)
	}
	for _, arn := range revs.TaskDefinitionArns {
		tags, err := sim.ListTagsForResource(t.Context(), &ecs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
		if err != nil {
			t.Fatalf("ListTagsForResource: %v", err)
		}
		m := map[string]string{}
		for _, tag := range tags.Tags {
			m[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
		}
		if _, twin := m["ecs-sidecar/source"]; twin {
			continue
		}
		if v, ok := m["ecs-sidecar/inject"]; ok {
			return v == "true"
		}
	}
	return false
}

// waitCoverage polls until the simulator's truth is want and Prometheus
// reports the same ratios and counts for the demo cluster and the fleet.
func waitCoverage(t *testing.T, prom string, sim *ecs.Client, want coverageTruth, logs *syncBuffer) {
	t.Helper()
	wantOpted, wantFleet := want.ratios()
	deadline := time.Now().Add(3 * time.Minute)
	var last string
	for {
		truth := simTruth(t, sim)
		got := map[string]float64{}
		for _, q := range []string{
			`ecs_sidecar_coverage_ratio{cluster=""}`, `ecs_sidecar_coverage_ratio{cluster="demo"}`,
			`ecs_sidecar_fleet_coverage_ratio{cluster=""}`, `ecs_sidecar_fleet_coverage_ratio{cluster="demo"}`,
			`sum(ecs_sidecar_services{cluster="demo"})`,
		} {
			v, err := promQuery(prom, q)
			if err != nil {
				v = math.NaN()
			}
			got[q] = v
		}
		wantQ := map[string]float64{
			`ecs_sidecar_coverage_ratio{cluster=""}`: wantOpted, `ecs_sidecar_coverage_ratio{cluster="demo"}`: wantOpted,
			`ecs_sidecar_fleet_coverage_ratio{cluster=""}`: wantFleet, `ecs_sidecar_fleet_coverage_ratio{cluster="demo"}`: wantFleet,
			`sum(ecs_sidecar_services{cluster="demo"})`: float64(want.Services),
		}
		d1 := cmp.Diff(truth, want)
		d2 := cmp.Diff(got, wantQ, cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }))
		if d1 == "" && d2 == "" {
			return
		}
		last = fmt.Sprintf("simulator (-got +want):\n%s\nprometheus (-got +want):\n%s", d1, d2)
		if time.Now().After(deadline) {
			t.Fatalf("coverage never reached %+v\n%s\nreconciler logs:\n%s", want, last, logs.String())
		}
		time.Sleep(time.Second)
	}
}

// deploy registers a revision of family with one essential container and
// moves the demo service of that name to it.
func deploy(t *testing.T, sim *ecs.Client, family, image string, entryPoint, command []string, tags []types.Tag) {
	t.Helper()
	out, err := sim.RegisterTaskDefinition(t.Context(), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family), RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		ExecutionRoleArn: aws.String("arn:aws:iam::123456789012:role/ecsTaskExecutionRole"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String(image), Essential: aws.Bool(true),
			EntryPoint: entryPoint, Command: command,
		}},
		Tags: tags,
	})
	if err != nil {
		t.Fatalf("register %s: %v", family, err)
	}
	if _, err := sim.UpdateService(t.Context(), &ecs.UpdateServiceInput{
		Cluster: aws.String("demo"), Service: aws.String(family), TaskDefinition: out.TaskDefinition.TaskDefinitionArn,
	}); err != nil {
		t.Fatalf("update service %s: %v", family, err)
	}
}

// promQuery runs an instant query and returns the value of its first
// sample (NaN when the result is empty); err when the query fails.
func promQuery(prom, q string) (float64, error) {
	resp, err := http.Get(prom + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, fmt.Errorf("decode: %w", err)
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	var value []any
	switch r.Data.ResultType {
	case "vector":
		var v []struct {
			Value []any `json:"value"`
		}
		if err := json.Unmarshal(r.Data.Result, &v); err != nil {
			return 0, err
		}
		if len(v) == 0 {
			return math.NaN(), nil
		}
		value = v[0].Value
	case "scalar":
		if err := json.Unmarshal(r.Data.Result, &value); err != nil {
			return 0, err
		}
	default:
		return 0, fmt.Errorf("result type %s", r.Data.ResultType)
	}
	if len(value) != 2 {
		return 0, fmt.Errorf("bad value %v", value)
	}
	s, _ := value[1].(string)
	return strconv.ParseFloat(s, 64)
}

func promValue(t *testing.T, prom, q string) float64 {
	t.Helper()
	v, err := promQuery(prom, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

// waitRulesEvaluated polls /api/v1/rules until the n rules have been
// evaluated, and fails on any rule whose evaluation errs.
func waitRulesEvaluated(t *testing.T, prom string, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var r struct {
			Data struct {
				Groups []struct {
					Rules []struct {
						Name      string `json:"name"`
						Health    string `json:"health"`
						LastError string `json:"lastError"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(httpGet(t, prom+"/api/v1/rules")), &r); err != nil {
			t.Fatal(err)
		}
		ok, count := 0, 0
		for _, g := range r.Data.Groups {
			for _, rule := range g.Rules {
				count++
				switch rule.Health {
				case "ok":
					ok++
				case "err":
					t.Fatalf("rule %s: %s", rule.Name, rule.LastError)
				}
			}
		}
		if count != n {
			t.Fatalf("prometheus loaded %d rules, want %d", count, n)
		}
		if ok == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d rules evaluated", ok, n)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func alertExprs(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out = append(out, r.Expr)
		}
	}
	return out
}

// dashboardExprs returns the expressions of every panel, with Grafana's
// variables replaced by what they stand for at their widest.
func dashboardExprs(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	r := strings.NewReplacer("$__rate_interval", "1m", "$cluster", ".*")
	var out []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("panel %q has a target without expression", p.Title)
				continue
			}
			e := r.Replace(tg.Expr)
			if strings.Contains(e, "$") {
				t.Errorf("panel %q: unknown variable in %s", p.Title, tg.Expr)
			}
			out = append(out, e)
		}
	}
	return out
}

// startProcess starts a command whose output goes to the returned buffer,
// and kills it when the test ends.
func startProcess(t *testing.T, name, path string, args ...string) *syncBuffer {
	t.Helper()
	logs := &syncBuffer{}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", name, logs.String())
		}
	})
	return logs
}

// syncBuffer is a process's output, read while the process writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func waitHTTP(t *testing.T, u string, logs *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered 200 (last error %v); output:\n%s", u, err, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func httpGet(t *testing.T, u string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", u, resp.StatusCode, err)
	}
	return string(b)
}

// unexported lists the ecs_sidecar_ metric names that exprs use and the
// scrape (Prometheus text format) has no # TYPE line for; _bucket, _sum and
// _count only of a histogram or summary.
func unexported(exprs []string, scrape string) []string {
	kinds := map[string]string{}
	for line := range strings.Lines(scrape) {
		if f := strings.Fields(line); len(f) >= 4 && f[0] == "#" && f[1] == "TYPE" {
			kinds[f[2]] = f[3]
		}
	}
	var out []string
	for _, e := range exprs {
		for _, m := range metricName.FindAllString(e, -1) {
			_, ok := kinds[m]
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, cut := strings.CutSuffix(m, suffix); cut && (kinds[base] == "histogram" || kinds[base] == "summary") {
					ok = true
				}
			}
			if !ok && !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	return out
}

var metricName = regexp.MustCompile(`\becs_sidecar_[a-z0-9_]+`)

func TestUnexportedFindsAMetricNobodyExports(t *testing.T) {
	scrape := "# HELP ecs_sidecar_services x\n# TYPE ecs_sidecar_services gauge\n# TYPE ecs_sidecar_event_lag_seconds histogram\n"
	exprs := []string{
		`sum(ecs_sidecar_services{state="covered"})`,
		`histogram_quantile(0.9, rate(ecs_sidecar_event_lag_seconds_bucket[5m]))`,
		`ecs_sidecar_servics > 0`,
		`ecs_sidecar_services_count`,
	}
	got := unexported(exprs, scrape)
	if want := []string{"ecs_sidecar_servics", "ecs_sidecar_services_count"}; !slices.Equal(got, want) {
		t.Errorf("unexported = %q, want %q (a gauge has no _count; a typo is caught)", got, want)
	}
}
