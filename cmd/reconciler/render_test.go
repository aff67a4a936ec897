package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
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
	// guideToken holds the guide's placeholder token, YOUR_ACCESS_TOKEN.
	guideToken = "testdata/render/token.txt"
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
		{"guide-plaintext", guideDescribe, []string{"--token-plaintext-file", guideToken, "--allow-plaintext-token", "--image-cmd", `["/your-app/run.sh"]`}},
		{"diff-plaintext", guideDescribe, []string{"--token-plaintext-file", guideToken, "--allow-plaintext-token", "--image-cmd", `["/your-app/run.sh"]`, "--diff"}},
		{"guide-secret", guideDescribe, []string{"--token-secret-arn", testSecretArn, "--image-cmd", `["/your-app/run.sh"]`, "--image-entrypoint", "[]"}},
		{"config-profile", guideDescribe, []string{"--config", cfg, "--profile", "eu", "--image-cmd", `["/your-app/run.sh"]`}},
		{"diff", guideDescribe, []string{"--token-secret-arn", testSecretArn, "--server-url", "EU", "--image-cmd", `["/your-app/run.sh"]`, "--diff"}},
		{"bare-file", "", []string{"--token-secret-arn", testSecretArn, "--non-root", "sudo", "--image-user", "node", "--image-entrypoint", `["docker-entrypoint.sh"]`, "--image-cmd", `["node","server.js"]`, "testdata/render/bare.json"}},
		{"register-input", "testdata/render/register-input.json", []string{"--token-secret-arn", testSecretArn, "--execution-role-arn", "arn:aws:iam::123456789012:role/ecsTaskExecutionRole", "--source-revision", "4", "--distroless", "true", "--sidecar-image", "mirror.example.com/lacework/datacollector:7.1-sidecar", "--exclude", "debug", "-"}},
		{"refused-no-command", guideDescribe, []string{"--token-secret-arn", testSecretArn}},
		{"refused-windows", "testdata/render/windows.json", nil},
		{"refused-no-execution-role", "testdata/render/register-input.json", []string{"--token-secret-arn", testSecretArn, "--source-revision", "3"}},
		{"usage-plaintext-not-allowed", guideDescribe, []string{"--token-plaintext-file", guideToken}},
		{"usage-token-on-argv", guideDescribe, []string{"--token-plaintext", testToken, "--allow-plaintext-token"}},
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

// TestRenderTokenOnlyInOutput: a plaintext token is read from a file, never
// from the command line, and is printed in one place only: the output of a
// render without --diff (what is registered). Diffs show it redacted, and no
// warning, refusal, usage or error message holds it.
func TestRenderTokenOnlyInOutput(t *testing.T) {
	const token = "FAKE-lw-token-7c1e5a93d04b" // recognisable, in no fixture
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	writeFile(t, tokFile, token+"\n")
	// A source whose container already has the token as a plain variable.
	own := filepath.Join(dir, "own.json")
	b, err := os.ReadFile(guideDescribe)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, own, strings.Replace(string(b), `"environment": []`, `"environment": [{"name": "LaceworkAccessToken", "value": "`+token+`"}]`, 1))
	if !strings.Contains(readString(t, own), token) {
		t.Fatal("the fixture did not take the token")
	}
	cfg := filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, "defaultProfile: clear\nprofiles:\n  clear:\n    tokenPlaintext: "+token+"\n    allowPlaintextToken: true\n")
	badCfg := filepath.Join(dir, "bad.yaml")
	writeFile(t, badCfg, "defaultProfile: clear\nprofiles:\n  clear:\n    tokenPlaintext: "+token+"\n")
	outFile := filepath.Join(dir, "out.json")
	cmd := []string{"--image-cmd", `["/your-app/run.sh"]`}
	file := append([]string{"--token-plaintext-file", tokFile, "--allow-plaintext-token"}, cmd...)

	tests := []struct {
		name     string
		stdin    string
		args     []string
		code     int
		inStdout bool   // the token is in stdout (a render without --diff)
		stderr   string // what stderr must say
	}{
		{"render", guideDescribe, file, exitOK, true, "warning: plaintext_token"},
		{"render from the config", guideDescribe, append([]string{"--config", cfg, "--profile", "clear"}, cmd...), exitOK, true, "warning: plaintext_token"},
		{"diff", guideDescribe, append(file, "--diff"), exitOK, false, "warning: plaintext_token"},
		{"diff from the config", guideDescribe, append([]string{"--config", cfg, "--profile", "clear", "--diff"}, cmd...), exitOK, false, ""},
		{"diff of a source with its own token", own, append([]string{"--token-secret-arn", testSecretArn, "--diff"}, cmd...), exitOK, false, ""},
		{"diff to --output", guideDescribe, append(file, "--diff", "--output", outFile), exitOK, false, ""},
		{"refused: unknown command", guideDescribe, []string{"--token-plaintext-file", tokFile, "--allow-plaintext-token"}, exitFail, false, "refused: unknown_command"},
		{"refused: windows", "testdata/render/windows.json", []string{"--token-plaintext-file", tokFile, "--allow-plaintext-token"}, exitFail, false, "refused: windows"},
		{"refused: not allowed in the config", guideDescribe, append([]string{"--config", badCfg}, cmd...), exitFail, false, "allowPlaintextToken"},
		{"on argv", guideDescribe, append([]string{"--token-plaintext", token, "--allow-plaintext-token"}, cmd...), exitUsage, false, "--token-plaintext-file FILE"},
		{"on argv with =", guideDescribe, append([]string{"--token-plaintext=" + token}, cmd...), exitUsage, false, "--token-plaintext-file FILE"},
		{"on argv before a bad flag", guideDescribe, []string{"--token-plaintext", token, "--no-such-flag"}, exitUsage, false, "no-such-flag"},
		{"file not allowed", guideDescribe, append([]string{"--token-plaintext-file", tokFile}, cmd...), exitUsage, false, "needs --allow-plaintext-token"},
		{"file and secret", guideDescribe, append(file, "--token-secret-arn", testSecretArn), exitUsage, false, "give one"},
		{"the token in place of the file", guideDescribe, append([]string{"--token-plaintext-file", token, "--allow-plaintext-token"}, cmd...), exitFail, false, "cannot open the file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runRender(t, tt.stdin, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr)
			}
			if strings.Contains(stderr, token) {
				t.Errorf("stderr holds the token:\n%s", stderr)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr does not say %q:\n%s", tt.stderr, stderr)
			}
			if got := strings.Contains(stdout, token); got != tt.inStdout {
				t.Errorf("token in stdout: %v, want %v:\n%s", got, tt.inStdout, stdout)
			}
			if slices.Contains(tt.args, "--diff") {
				diff := stdout
				if slices.Contains(tt.args, "--output") {
					diff = readString(t, outFile)
					if strings.Contains(diff, token) {
						t.Errorf("--output of --diff holds the token")
					}
				}
				if !strings.Contains(diff, `"value": "(redacted)"`) {
					t.Errorf("the diff does not show the token redacted:\n%s", diff)
				}
			}
		})
	}

	// Without --diff, --output holds the token, as what is registered must.
	if code, _, stderr := runRender(t, guideDescribe, append(file, "--output", outFile)...); code != exitOK || !strings.Contains(readString(t, outFile), token) {
		t.Errorf("--output: exit %d, token in the file %v; stderr %s", code, strings.Contains(readString(t, outFile), token), stderr)
	}
	// The diff of a source with its own token redacts it on both sides: the
	// line is unchanged.
	_, stdout, _ := runRender(t, own, append([]string{"--token-secret-arn", testSecretArn, "--diff"}, cmd...)...)
	both := false
	for _, l := range strings.Split(stdout, "\n") {
		both = both || (strings.HasPrefix(l, " ") && strings.Contains(l, `"value": "(redacted)"`))
	}
	if !both {
		t.Errorf("the source's own token is not redacted on both sides:\n%s", stdout)
	}
}

// TestTokenFile: what --token-plaintext-file accepts (the token alone, a
// final newline, UTF-16 from PowerShell) and refuses, never showing it.
func TestTokenFile(t *testing.T) {
	const token = "FAKE-lw-token-7c1e5a93d04b"
	dir := t.TempDir()
	tests := []struct {
		name    string
		content []byte
		err     string // "" when the token is read
	}{
		{"alone", []byte(token), ""},
		{"newline", []byte(token + "\n"), ""},
		{"CRLF and spaces", []byte("  " + token + "\r\n"), ""},
		{"UTF-8 BOM", append([]byte{0xEF, 0xBB, 0xBF}, token+"\n"...), ""},
		{"UTF-16LE (PowerShell >)", utf16LE(token + "\r\n"), ""},
		{"empty", []byte("\n"), "empty"},
		{"two lines", []byte(token + "\n" + token + "\n"), "the token alone"},
		{"a KEY=value line with a space", []byte("token = " + token), "the token alone"},
		{"too large", []byte(strings.Repeat("a", maxTokenFile+1)), "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			if err := os.WriteFile(name, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readTokenFile(name)
			if tt.err == "" {
				if err != nil || got != token {
					t.Errorf("readTokenFile = %q, %v; want the token", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("readTokenFile error %v, want one saying %q", err, tt.err)
			}
			if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), name) {
				t.Errorf("the error %q shows the content or the file name", err)
			}
		})
	}
}

func utf16LE(s string) []byte {
	b := []byte{0xFF, 0xFE}
	for _, r := range s {
		b = append(b, byte(r), byte(r>>8))
	}
	return b
}

func readString(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
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
