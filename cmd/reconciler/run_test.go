package main

import (
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
