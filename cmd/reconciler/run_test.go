package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecs-sidecar/reconciler/internal/cloud"
	"github.com/ecs-sidecar/reconciler/internal/config"
)

func TestRunWithABadConfigListsEveryError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	bad := "workers: 0\nmode: sometimes\nprofiles:\n  lacework:\n    tokenSecretArn: not-an-arn\nqueue:\n  waitTimeSeconds: 99\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runMain(t, "", "run", "--config", path)
	if code != exitFail || stdout != "" {
		t.Fatalf("run with a bad config = %d, stdout %q; want %d and no output", code, stdout, exitFail)
	}
	for _, want := range []string{
		"invalid configuration",
		"workers:",
		"mode:",
		"profiles.lacework.tokenSecretArn: not an ARN",
		"queue.waitTimeSeconds:",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not report %q:\n%s", want, stderr)
		}
	}
}

// TestConfigErrorsAreIndentedOneALine: the config package nests joins
// (decoding's problems, then Validate's) and wraps them in the file's name;
// every problem gets its own indented line, and the file goes in the header.
func TestConfigErrorsAreIndentedOneALine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"validation only", "workers: 0\nmode: sometimes\n", []string{"workers:", "mode:"}},
		{"decoding and validation", "bogus: 1\nworkers: 0\nmode: sometimes\n", []string{"bogus: unknown key", "workers:", "mode:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(tc.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, cmd := range []string{"run", "plan", "check"} {
				_, _, stderr := runMain(t, "", cmd, "--config", path)
				lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
				if want := "reconciler " + cmd + ": config " + path + ": invalid configuration:"; lines[0] != want {
					t.Errorf("%s: header %q, want %q", cmd, lines[0], want)
				}
				if len(lines)-1 != len(tc.want) {
					t.Errorf("%s: %d problem lines, want %d:\n%s", cmd, len(lines)-1, len(tc.want), stderr)
					continue
				}
				for i, w := range tc.want {
					if l := lines[i+1]; !strings.HasPrefix(l, "  "+w) || strings.HasPrefix(l, "   ") {
						t.Errorf("%s: line %d = %q, want it to start with two spaces and %q", cmd, i+1, l, w)
					}
				}
			}
		})
	}
}

func TestConfigErrorsOfTheEnvironment(t *testing.T) {
	vars := map[string]string{"RECONCILER_CONFIG_YAML": "mode: sometimes\nworkers: 0\n"}
	_, err := loadConfig(env{getenv: func(k string) string { return vars[k] }}, "")
	var b strings.Builder
	printConfigErrors(&b, "reconciler run", err)
	got := b.String()
	want := "reconciler run: config from RECONCILER_CONFIG_YAML: invalid configuration:\n" +
		"  workers: must be between 1 and 64\n" +
		"  mode: \"sometimes\" is not one of enforce, audit, remove\n"
	if got != want {
		t.Errorf("printed\n%s\nwant\n%s", got, want)
	}
}

func TestConfigErrorsNotJoined(t *testing.T) {
	var b strings.Builder
	printConfigErrors(&b, "reconciler run", errors.New("read config: no such file\nsecond line"))
	if got, want := b.String(), "reconciler run: invalid configuration:\n  read config: no such file\n    second line\n"; got != want {
		t.Errorf("printed %q, want %q", got, want)
	}
}

func TestBucketScaleScalesTheRefillRates(t *testing.T) {
	if got := bucketsOf(config.APIBudget{Share: 1, BucketScale: 1}); got != nil {
		t.Errorf("scale 1: %v, want nil (AWS's buckets)", got)
	}
	got := bucketsOf(config.APIBudget{Share: 1, BucketScale: 20})
	if want := (cloud.Bucket{Burst: 20, Refill: 20}); got[cloud.TaskDefinitionModify] != want {
		t.Errorf("scale 20, task definition modify: %+v, want %+v", got[cloud.TaskDefinitionModify], want)
	}
	if want := (cloud.Bucket{Burst: 50, Refill: 100}); got[cloud.ServiceModify] != want {
		t.Errorf("scale 20, service modify: %+v, want %+v", got[cloud.ServiceModify], want)
	}
}

func TestRunNeedsAQueueOutsideTheEmbeddedAWS(t *testing.T) {
	path := filepath.Join(t.TempDir(), "noqueue.yaml")
	if err := os.WriteFile(path, []byte("aws: {region: us-east-1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runMain(t, "", "run", "--config", path)
	if code != exitFail || !strings.Contains(stderr, "queue.url: required by run") {
		t.Errorf("run without a queue = %d, stderr %q; want %d and the queue.url error", code, stderr, exitFail)
	}
}

func TestRunRefusesARemoteSimAddress(t *testing.T) {
	code, _, stderr := runMain(t, "", "run", "--embedded", "--sim-listen", "0.0.0.0:4566")
	if code != exitUsage || !strings.Contains(stderr, "not a loopback address") {
		t.Errorf("run --embedded on 0.0.0.0 = %d, stderr %q; want %d", code, stderr, exitUsage)
	}
}
