package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecs-sidecar/reconciler/internal/controller"
	"github.com/ecs-sidecar/reconciler/internal/metrics"
)

func TestHealthcheck(t *testing.T) {
	healthy := httptest.NewServer(metrics.Handler(prometheus.NewRegistry(), nil))
	defer healthy.Close()
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "nope", http.StatusServiceUnavailable)
	}))
	defer sick.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"healthy", []string{"--url", healthy.URL + "/healthz"}, exitOK, "ok\n", ""},
		{"503", []string{"--url", sick.URL + "/healthz"}, exitFail, "", "503 Service Unavailable"},
		{"no such path", []string{"--url", healthy.URL + "/nothing"}, exitFail, "", "404 Not Found"},
		{"nothing listening", []string{"--url", closedURL + "/healthz", "--timeout", "1s"}, exitFail, "", "connection refused"},
		{"not a URL", []string{"--url", "127.0.0.1:9102/healthz"}, exitUsage, "", "want an http(s) URL"},
		{"bad timeout", []string{"--timeout", "0s"}, exitUsage, "", "--timeout: must be positive"},
		{"stray argument", []string{"extra"}, exitUsage, "", `unexpected argument "extra"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runMain(t, "", append([]string{"healthcheck"}, tc.args...)...)
			if code != tc.wantCode || stdout != tc.wantOut || !strings.Contains(stderr, tc.wantErr) {
				t.Errorf("healthcheck %v = %d, stdout %q, stderr %q; want %d, %q, stderr containing %q",
					tc.args, code, stdout, stderr, tc.wantCode, tc.wantOut, tc.wantErr)
			}
		})
	}
}

func TestHealthcheckURLFromEnvironment(t *testing.T) {
	srv := httptest.NewServer(metrics.Handler(prometheus.NewRegistry(), nil))
	defer srv.Close()
	var out, errb strings.Builder
	e := env{stdout: &out, stderr: &errb, getenv: func(k string) string {
		if k == "RECONCILER_HEALTHCHECK_URL" {
			return srv.URL + "/healthz"
		}
		return ""
	}}
	if code := realMain(e, []string{"healthcheck"}); code != exitOK {
		t.Errorf("healthcheck with RECONCILER_HEALTHCHECK_URL = %d, stderr %q; want 0", code, errb.String())
	}
	if got, want := fmt.Sprint(out.String()), "ok\n"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
}

// The label sets main gives the metrics package cover every value the
// controller, the consumer and the patch emit, so nothing is counted as
// "other" by accident.
func TestMetricsLabelsAreComplete(t *testing.T) {
	l := metricsLabels()
	for _, s := range append([]string{"contested"}, controller.States...) {
		if !slices.Contains(l.States, s) {
			t.Errorf("States lacks %q", s)
		}
	}
	if len(l.States) != len(controller.States) {
		t.Errorf("States = %v: want the controller's %d states", l.States, len(controller.States))
	}
	for _, r := range []string{"not_opted_in", "opted_out_by_tag", "mode_remove", "windows", "unknown_command", "deployment_controller", "rolled_back", "deadline"} {
		if !slices.Contains(l.Reasons, r) {
			t.Errorf("Reasons lacks %q", r)
		}
	}
	for _, op := range []string{"ListServices", "DescribeServices", "UpdateService", "RegisterTaskDefinition", "ListTagsForResource"} {
		if !slices.Contains(l.APIOperations["ECS"], op) {
			t.Errorf("APIOperations[ECS] lacks %q: %v", op, l.APIOperations["ECS"])
		}
	}
	if !slices.Contains(l.APIOperations["SQS"], "ReceiveMessage") || !slices.Contains(l.APIOperations["EventBridge"], "PutEvents") {
		t.Errorf("APIOperations = %v: want SQS ReceiveMessage and EventBridge PutEvents", l.APIOperations)
	}
}
