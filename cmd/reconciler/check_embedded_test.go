package main

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
)

// noAWSEnv keeps the machine's AWS configuration out of a test: the SDK
// reads the process environment and the shared files, whatever env.getenv says.
func noAWSEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// `reconciler check --embedded` runs every check against the demo account
// on 127.0.0.1 and every one passes: the demo has what an account running
// the reconciler has.
func TestCheckEmbeddedPassesEveryCheck(t *testing.T) {
	noAWSEnv(t)
	code, stdout, stderr := runMain(t, "", "check", "--embedded")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var verdicts []string
	for _, l := range lines {
		verb, rest, _ := strings.Cut(l, " ")
		name, _, _ := strings.Cut(rest, ":")
		verdicts = append(verdicts, verb+" "+name)
	}
	want := []string{"PASS credentials", "PASS queue", "PASS rule", "PASS token-secret", "PASS execution-roles", "PASS permissions", "PASS cloudtrail"}
	if d := cmp.Diff(verdicts, want); d != "" || code != exitOK {
		t.Fatalf("check --embedded: exit %d (want %d), verdicts (-got +want):\n%s\nstdout:\n%s\nstderr:\n%s", code, exitOK, d, stdout, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr: %q, want nothing (the report is stdout's)", stderr)
	}
	// Each line is about the demo's own resources, not a vacuous pass.
	for i, sub := range []string{
		"as arn:aws:sts::123456789012:assumed-role/ecs-sidecar-reconciler/",
		"arn:aws:sqs:us-east-1:123456789012:" + awssim.DemoQueue + " with a dead-letter queue",
		"targeted by " + awssim.DemoRule,
		":secret:" + awssim.DemoTokenSecret,
		"may read their secrets: " + awssim.DemoExecutionRole,
		awssim.DemoReconcilerRole + " (the caller's role) may make the reconciler's",
		"trail/" + awssim.DemoTrail + " logs write management events",
	} {
		if !strings.Contains(lines[i], sub) {
			t.Errorf("line %d %q does not say %q", i+1, lines[i], sub)
		}
	}
}

func TestCheckEmbeddedRefusesANonLoopbackListen(t *testing.T) {
	noAWSEnv(t)
	code, stdout, stderr := runMain(t, "", "check", "--embedded", "--sim-listen", "0.0.0.0:0")
	if code != exitUsage || !strings.Contains(stderr, "reconciler check: --sim-listen") || stdout != "" {
		t.Errorf("check --embedded --sim-listen 0.0.0.0:0: exit %d, stdout %q, stderr %q; want exit %d and the flag's error", code, stdout, stderr, exitUsage)
	}
}
