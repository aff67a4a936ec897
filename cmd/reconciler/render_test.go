package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ecs-sidecar/reconciler/internal/awsjson"
	"github.com/ecs-sidecar/reconciler/internal/patch"
)

var updateRender = flag.Bool("update", false, "rewrite the golden files (testdata/render, testdata/imageconfig, testdata/corpus) from the current output")

const (
	guideDescribe = "testdata/render/guide-describe.json"
	testSecretArn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:LaceworkAccessToken-AbCdEf"
	testToken     = "s3cr3t-T0KEN-value"
)

// runRender runs `reconciler render args...` with stdin from a file (or none).
func runRender(t *testing.T, stdinFile string, args ...string) (int, string, string) {
	t.Helper()
	var in []byte
	if stdinFile != "" {
		var err error
		if in, err = os.ReadFile(stdinFile); err != nil {
			t.Fatal(err)
		}
	}
	var out, errb bytes.Buffer
	e := env{stdin: bytes.NewReader(in), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code := realMain(e, append([]string{"render"}, args...))
	return code, out.String(), errb.String()
}

// TestRenderGolden runs render command lines and compares exit code,
// stdout and stderr with testdata/render/NAME.golden (a missing golden
// file fails; -update rewrites them).
func TestRenderGolden(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, cfg, "tagPrefix: sec/\nprofiles:\n  eu:\n    tokenSecretArn: "+testSecretArn+"\n    serverUrl: EU\n    laceworkConfig: '{\"fim\":{\"mode\":\"enable\",\"coolingperiod\":\"0\"}}'\n")
	tests := []struct {
		name  string
		stdin string
		args  []string
	}{
		{"defaults", guideDescribe, []string{"--image-cmd", `["/your-app/run.sh"]`}},
		{"guide-plaintext", guideDescribe, []string{"--token-plaintext", "YOUR_ACCESS_TOKEN", "--allow-plaintext-token", "--image-cmd", `["/your-app/run.sh"]`}},
		{"guide-secret", guideDescribe, []string{"--token-secret-arn", testSecretArn, "--image-cmd", `["/your-app/run.sh"]`, "--image-entrypoint", "[]"}},
		{"config-profile", guideDescribe, []string{"--config", cfg, "--profile", "eu", "--image-cmd", `["/your-app/run.sh"]`}},
		{"diff", guideDescribe, []string{"--token-secret-arn", testSecretArn, "--server-url", "EU", "--image-cmd", `["/your-app/run.sh"]`, "--diff"}},
		{"bare-file", "", []string{"--token-secret-arn", testSecretArn, "--non-root", "sudo", "--image-user", "node", "--image-entrypoint", `["docker-entrypoint.sh"]`, "--image-cmd", `["node","server.js"]`, "testdata/render/bare.json"}},
		{"register-input", "testdata/render/register-input.json", []string{"--token-secret-arn", testSecretArn, "--execution-role-arn", "arn:aws:iam::123456789012:role/ecsTaskExecutionRole", "--source-revision", "4", "--distroless", "true", "--sidecar-image", "mirror.example.com/lacework/datacollector:7.1-sidecar", "--exclude", "debug", "-"}},
		{"refused-no-command", guideDescribe, []string{"--token-secret-arn", testSecretArn}},
		{"refused-windows", "testdata/render/windows.json", nil},
		{"refused-no-execution-role", "testdata/render/register-input.json", []string{"--token-secret-arn", testSecretArn, "--source-revision", "3"}},
		{"usage-plaintext-not-allowed", guideDescribe, []string{"--token-plaintext", testToken}},
		{"usage-bad-image-flag", guideDescribe, []string{"--image-entrypoint", "/bin/sh -c"}},
		{"usage-two-files", "", []string{"a.json", "b.json"}},
		{"bad-input", "testdata/render/not-a-task-definition.json", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runRender(t, tt.stdin, tt.args...)
			stderr = strings.ReplaceAll(stderr, cfg, "CONFIG")
			checkGolden(t, filepath.Join("testdata/render", tt.name+".golden"), renderTranscript(code, stdout, stderr))
		})
	}
}

// renderTranscript is what a render golden file holds: the exit code,
// stderr and stdout.
func renderTranscript(code int, stdout, stderr string) string {
	return "exit " + string(rune('0'+code)) + "\n--- stderr\n" + stderr + "--- stdout\n" + stdout
}

// checkGolden compares got with the golden file: a missing file fails,
// -update rewrites it.
func checkGolden(t *testing.T, golden, got string) {
	t.Helper()
	if *updateRender {
		writeFile(t, golden, got)
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		top, _, _ := strings.Cut(t.Name(), "/")
		t.Fatalf("missing golden file (go test ./cmd/reconciler -run %s -update): %v", top, err)
	}
	if diff := cmp.Diff(got, string(want)); diff != "" {
		t.Errorf("%s (-got +want):\n%s", golden, diff)
	}
}

// TestRenderExitCodes pins the contract: 0 with output, 1 with one
// refused: line per reason and no output, 2 for bad usage.
func TestRenderExitCodes(t *testing.T) {
	code, stdout, stderr := runRender(t, guideDescribe, "--image-cmd", `["/your-app/run.sh"]`)
	if code != exitOK || !json.Valid([]byte(stdout)) {
		t.Errorf("defaults: exit %d, valid JSON %v; stderr %s", code, json.Valid([]byte(stdout)), stderr)
	}
	if !strings.Contains(stderr, "warning: no_token") {
		t.Errorf("defaults: stderr %q does not warn no_token", stderr)
	}
	code, stdout, stderr = runRender(t, "testdata/render/ten-containers.json", "--token-secret-arn", testSecretArn)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if code != exitFail || stdout != "" || len(lines) != 2 || !strings.HasPrefix(lines[0], "refused: too_many_containers: ") || !strings.HasPrefix(lines[1], "refused: readonly_root_filesystem: c9: ") {
		t.Errorf("ten containers: exit %d, stdout %q, stderr %q; want 1, nothing, two refused: lines", code, stdout, stderr)
	}
	code, _, _ = runRender(t, guideDescribe, "--no-such-flag")
	if code != exitUsage {
		t.Errorf("bad flag: exit %d, want %d", code, exitUsage)
	}
}

// TestRenderPlaintextNeverOnStderr: the token is in the output the user
// asked for, and nowhere in the diagnostics.
func TestRenderPlaintextNeverOnStderr(t *testing.T) {
	code, stdout, stderr := runRender(t, guideDescribe, "--token-plaintext", testToken, "--allow-plaintext-token", "--image-cmd", `["/x"]`)
	if code != exitOK || !strings.Contains(stdout, testToken) {
		t.Fatalf("exit %d; the output must carry the token", code)
	}
	if strings.Contains(stderr, testToken) || !strings.Contains(stderr, "warning: plaintext_token") {
		t.Errorf("stderr %q: must warn plaintext_token and never show the token", stderr)
	}
	_, _, stderr = runRender(t, guideDescribe, "--token-plaintext", testToken)
	if strings.Contains(stderr, testToken) {
		t.Errorf("usage error shows the token: %q", stderr)
	}
}

// TestRenderShapesAgree: describe output, a bare task definition and
// register input of the same task definition render the same.
func TestRenderShapesAgree(t *testing.T) {
	b, err := os.ReadFile(guideDescribe)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bare := filepath.Join(dir, "bare.json")
	writeFile(t, bare, string(doc["taskDefinition"]))
	args := []string{"--token-secret-arn", testSecretArn, "--image-cmd", `["/your-app/run.sh"]`}

	_, fromDescribe, _ := runRender(t, guideDescribe, args...)
	_, fromBare, _ := runRender(t, "", append(args, bare)...)
	if diff := cmp.Diff(fromBare, fromDescribe); diff != "" {
		t.Errorf("bare task definition renders differently (-bare +describe):\n%s", diff)
	}
	// The source as register input, from --diff's left side, rendered again.
	td, tags, err := parseRenderInput(b)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := encodeRegisterInput(patch.RegisterInput(td, tags), sourceObject(b))
	if err != nil {
		t.Fatal(err)
	}
	regFile := filepath.Join(dir, "register.json")
	writeFile(t, regFile, string(reg))
	_, fromRegister, stderr := runRender(t, "", append(args, "--source-revision", "1", regFile)...)
	if diff := cmp.Diff(fromRegister, fromDescribe); diff != "" {
		t.Errorf("register input renders differently (-register +describe):\n%s\n%s", diff, stderr)
	}
}

// TestRenderOutputKeys: the output has only RegisterTaskDefinition's
// members (the CLI rejects unknown keys such as revision or status).
func TestRenderOutputKeys(t *testing.T) {
	_, stdout, _ := runRender(t, guideDescribe, "--image-cmd", `["/your-app/run.sh"]`)
	var got map[string]json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"family": true, "containerDefinitions": true, "taskRoleArn": true, "executionRoleArn": true,
		"networkMode": true, "volumes": true, "placementConstraints": true, "requiresCompatibilities": true, "cpu": true,
		"memory": true, "tags": true, "pidMode": true, "ipcMode": true, "proxyConfiguration": true, "inferenceAccelerators": true,
		"ephemeralStorage": true, "runtimePlatform": true, "enableFaultInjection": true, "trustedExecutionConfiguration": true}
	for k := range got {
		if !allowed[k] {
			t.Errorf("output member %q is not a RegisterTaskDefinition member", k)
		}
	}
	for _, k := range []string{"family", "containerDefinitions", "tags"} {
		if _, ok := got[k]; !ok {
			t.Errorf("output lacks %q", k)
		}
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// FuzzRenderInput: any bytes parse to a task definition or an error, never
// a panic; what parses and instruments renders to JSON that parses back
// (as register input) to the same output.
func FuzzRenderInput(f *testing.F) {
	paths, _ := filepath.Glob("testdata/render/*.json")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"taskDefinition":null}`))
	f.Add([]byte(`{"containerDefinitions":[],"tags":[{"key":"a"}]}`))
	codec := awsjson.Codec{Service: awsjson.ECS}
	f.Fuzz(func(t *testing.T, data []byte) {
		td, tags, err := parseRenderInput(data)
		if err != nil {
			return
		}
		if td == nil {
			t.Fatal("nil task definition without an error")
		}
		res, err := patch.Instrument(td, tags, patch.Profile{}, nil, patch.Options{})
		if err != nil {
			return
		}
		out, err := codec.Marshal(res.Input)
		if err != nil {
			t.Fatalf("marshal output: %v", err)
		}
		td2, tags2, err := parseRenderInput(out)
		if err != nil {
			t.Fatalf("the output does not parse back: %v\n%s", err, out)
		}
		again, err := codec.Marshal(patch.RegisterInput(td2, tags2))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("output changed through a parse:\n%s\n%s", out, again)
		}
	})
}
