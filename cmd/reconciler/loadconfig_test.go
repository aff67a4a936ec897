package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoadConfigFromEnvironmentYAML(t *testing.T) {
	vars := map[string]string{
		"RECONCILER_CONFIG_YAML": "queue:\n  url: https://sqs.eu-west-1.amazonaws.com/123456789012/q\nmode: audit\n",
		"AWS_REGION":             "eu-west-1",
	}
	cfg, err := loadConfig(env{getenv: func(k string) string { return vars[k] }}, "")
	if err != nil {
		t.Fatal(err)
	}
	got := []string{cfg.Queue.URL, cfg.Mode, cfg.AWS.Region}
	want := []string{"https://sqs.eu-west-1.amazonaws.com/123456789012/q", "audit", "eu-west-1"}
	if d := cmp.Diff(got, want); d != "" {
		t.Errorf("config (-got +want):\n%s", d)
	}
}

func TestLoadConfigFromEnvironmentYAMLReportsProblems(t *testing.T) {
	vars := map[string]string{"RECONCILER_CONFIG_YAML": "mode: sometimes\nworkers: 0\n"}
	_, err := loadConfig(env{getenv: func(k string) string { return vars[k] }}, "")
	if err == nil {
		t.Fatal("loadConfig accepted an invalid RECONCILER_CONFIG_YAML")
	}
	for _, want := range []string{"RECONCILER_CONFIG_YAML", "mode", "workers"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
