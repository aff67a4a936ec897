package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const cfnDir = "testdata/cloudformation"

// TestRenderCloudFormation: render --cloudformation prints each fixture's
// template instrumented (JSON, the transform removed), cfn-lint clean.
func TestRenderCloudFormation(t *testing.T) {
	for _, f := range []string{"fargate-service.yaml", "cdk-synth.json", "firelens-appmesh.yaml"} {
		t.Run(f, func(t *testing.T) {
			code, out, errs := runMain(t, "", "render", "--config", filepath.Join(cfnDir, "config.yaml"), "--cloudformation", filepath.Join(cfnDir, f))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			if !strings.Contains(errs, ": instrumented (opted_in_by_tag)") {
				t.Errorf("stderr %q: no resource line", errs)
			}
			var tm map[string]any
			if err := json.Unmarshal([]byte(out), &tm); err != nil {
				t.Fatalf("output is not JSON: %v", err)
			}
			if !strings.Contains(out, `"datacollector-sidecar"`) || strings.Contains(out, "EcsSidecar") {
				t.Errorf("output not instrumented or transform left: %s", out)
			}
			lint(t, out)
		})
	}
}

// TestRenderCloudFormationRefused: exit 1 with the refusal, as render.
func TestRenderCloudFormationRefused(t *testing.T) {
	code, out, errs := runMain(t, "", "render", "--token-secret-arn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:t-AbCdEf",
		"--cloudformation", filepath.Join(cfnDir, "refused-unknown-command.yaml"))
	if code != exitFail || out != "" || !strings.Contains(errs, "refused: Worker: unknown_command: worker: states no entryPoint") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, _, errs = runMain(t, "", "render", "--diff", "--cloudformation", filepath.Join(cfnDir, "cdk-synth.json"))
	if code != exitUsage {
		t.Errorf("--diff --cloudformation: exit %d, %s", code, errs)
	}
}

func lint(t *testing.T, template string) {
	t.Helper()
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cfn-lint is not installed (pip package cfn-lint): %v", err)
		}
		t.Skip("cfn-lint is not installed (pip install cfn-lint); CI=true makes this a failure")
	}
	f := filepath.Join(t.TempDir(), "out.json")
	if err := os.WriteFile(f, []byte(template), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, f).CombinedOutput(); err != nil {
		t.Fatalf("cfn-lint: %v\n%s", err, out)
	}
}
