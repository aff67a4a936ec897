package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/google/go-cmp/cmp"

	"github.com/ecs-sidecar/reconciler/internal/patch"
)

const imageConfigDir = "testdata/imageconfig"

// TestImageConfigGolden runs render --image-config command lines and
// compares exit code, stderr and stdout with testdata/imageconfig/NAME.golden
// (a missing golden file fails; -update rewrites them).
func TestImageConfigGolden(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.json")
	writeFile(t, empty, "\n")
	f := func(name string) string { return "main-application=" + filepath.Join(imageConfigDir, name) }
	tok := []string{"--token-secret-arn", testSecretArn}
	tests := []struct {
		name string
		args []string
	}{
		// Renders.
		{"crane", append(tok, "--image-config", f("guide-crane.json"))},
		{"inspect", append(tok, "--image-config", f("guide-inspect.json"))},
		{"wins-over-flags", append(tok, "--image-cmd", `["/other"]`, "--image-user", "nobody", "--image-config", f("guide-crane.json"))},
		{"platform-warning", append(tok, "--image-config", f("arm64.json"))},
		// Refusals: the patch needs what the file does not say.
		{"no-command", append(tok, "--image-config", f("no-command.json"))},
		// The file is not an image config (exit 1).
		{"inspect-two", append(tok, "--image-config", f("two-images.json"))},
		{"manifest", append(tok, "--image-config", f("manifest.json"))},
		{"index", append(tok, "--image-config", f("index.json"))},
		{"container-inspect", append(tok, "--image-config", f("container-inspect.json"))},
		{"no-config", append(tok, "--image-config", f("no-config.json"))},
		{"not-json", append(tok, "--image-config", f("not-json.txt"))},
		{"empty", append(tok, "--image-config", "main-application="+empty)},
		{"missing-file", append(tok, "--image-config", f("no-such-file.json"))},
		// Bad command lines (exit 2).
		{"usage-syntax", append(tok, "--image-config", filepath.Join(imageConfigDir, "guide-crane.json"))},
		{"usage-unknown-container", append(tok, "--image-config", "main-app="+filepath.Join(imageConfigDir, "guide-crane.json"))},
		{"usage-twice", append(tok, "--image-config", f("guide-crane.json"), "--image-config", f("guide-inspect.json"))},
		{"usage-resolve-images", append(tok, "--resolve-images", "--image-config", f("guide-crane.json"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runRender(t, guideDescribe, tt.args...)
			stderr = strings.ReplaceAll(stderr, dir, "TMP")
			checkGolden(t, filepath.Join(imageConfigDir, tt.name+".golden"), renderTranscript(code, stdout, stderr))
		})
	}
}

// TestImageConfigSameAsFlags: a crane config that says CMD X renders as
// --image-cmd X does (no digest in either), and docker image inspect of the
// same image only adds its digest to the spec.
func TestImageConfigSameAsFlags(t *testing.T) {
	tok := []string{"--token-secret-arn", testSecretArn}
	_, fromFlags, _ := runRender(t, guideDescribe, append(tok, "--image-cmd", `["/your-app/run.sh"]`)...)
	code, fromCrane, stderr := runRender(t, guideDescribe, append(tok, "--image-config", "main-application="+filepath.Join(imageConfigDir, "guide-crane.json"))...)
	if code != exitOK {
		t.Fatalf("crane config: exit %d: %s", code, stderr)
	}
	if diff := cmp.Diff(fromCrane, fromFlags); diff != "" {
		t.Errorf("--image-config with a crane config renders differently from --image-cmd (-config +flags):\n%s", diff)
	}
	_, withDigest, _ := runRender(t, guideDescribe, append(tok, "--image-cmd", `["/your-app/run.sh"]`,
		"--image-digest", "sha256:2222222222222222222222222222222222222222222222222222222222222222")...)
	_, fromInspect, _ := runRender(t, guideDescribe, append(tok, "--image-config", "main-application="+filepath.Join(imageConfigDir, "guide-inspect.json"))...)
	if diff := cmp.Diff(fromInspect, withDigest); diff != "" {
		t.Errorf("--image-config with docker image inspect output renders differently from --image-cmd --image-digest (-config +flags):\n%s", diff)
	}
}

// TestImageConfigUTF16: Windows PowerShell's > writes UTF-16 with a byte
// order mark; such a file reads as its UTF-8 twin.
func TestImageConfigUTF16(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(imageConfigDir, "guide-crane.json"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := parseImageConfig(b, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, bigEndian := range []bool{false, true} {
		u := utf16.Encode([]rune("\ufeff" + string(b)))
		out := make([]byte, 0, 2*len(u))
		for _, x := range u {
			if bigEndian {
				out = append(out, byte(x>>8), byte(x))
			} else {
				out = append(out, byte(x), byte(x>>8))
			}
		}
		got, err := parseImageConfig(out, "")
		if err != nil {
			t.Fatalf("big endian %v: %v", bigEndian, err)
		}
		if diff := cmp.Diff(got.img, want.img); diff != "" {
			t.Errorf("big endian %v: UTF-16 file reads differently (-utf16 +utf8):\n%s", bigEndian, diff)
		}
	}
	if _, err := parseImageConfig(append([]byte{0xEF, 0xBB, 0xBF}, b...), ""); err != nil {
		t.Errorf("UTF-8 with a byte order mark: %v", err)
	}
}

// TestParseImageConfig pins the mapping of both shapes onto patch.Image.
func TestParseImageConfig(t *testing.T) {
	tests := []struct {
		name, data, ref string
		want            patch.Image
		os, arch        string
	}{
		{name: "crane config", data: `{"architecture":"arm64","os":"linux","config":{"Entrypoint":["/docker-entrypoint.sh"],"Cmd":["nginx","-g","daemon off;"],"User":"101"}}`,
			want: patch.Image{Known: true, Entrypoint: []string{"/docker-entrypoint.sh"}, Cmd: []string{"nginx", "-g", "daemon off;"}, User: "101"}, os: "linux", arch: "arm64"},
		{name: "crane config, empty config", data: `{"architecture":"amd64","os":"linux","config":{}}`,
			want: patch.Image{Known: true}, os: "linux", arch: "amd64"},
		{name: "inspect, digest of the container's repository", ref: "docker.io/library/nginx:1.27",
			data: `[{"Id":"sha256:aa","RepoDigests":["mirror.example.com/nginx@sha256:bb","nginx@sha256:cc"],"Config":{"Cmd":["nginx"],"Entrypoint":null,"User":""},"Os":"linux","Architecture":"amd64"}]`,
			want: patch.Image{Known: true, Cmd: []string{"nginx"}, Digest: "sha256:cc"}, os: "linux", arch: "amd64"},
		{name: "inspect, another repository: the first digest", ref: "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:dd",
			data: `[{"Id":"sha256:aa","RepoDigests":["mirror.example.com/nginx@sha256:bb","nginx@sha256:cc"],"Config":{"Cmd":["nginx"]}}]`,
			want: patch.Image{Known: true, Cmd: []string{"nginx"}, Digest: "sha256:bb"}},
		{name: "inspect of a local build: the image ID", ref: "app:dev",
			data: `[{"Id":"sha256:aa","RepoTags":["app:dev"],"RepoDigests":[],"Config":{"Entrypoint":["/app"],"User":"app:app"}}]`,
			want: patch.Image{Known: true, Entrypoint: []string{"/app"}, User: "app:app", Digest: "sha256:aa"}},
		{name: "inspect element as an object", ref: "app:dev",
			data: `{"Id":"sha256:aa","Config":{"Entrypoint":["/app"]}}`,
			want: patch.Image{Known: true, Entrypoint: []string{"/app"}, Digest: "sha256:aa"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseImageConfig([]byte(tt.data), tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got.img, tt.want); diff != "" {
				t.Errorf("image (-got +want):\n%s", diff)
			}
			if got.os != tt.os || got.arch != tt.arch {
				t.Errorf("platform %s/%s, want %s/%s", got.os, got.arch, tt.os, tt.arch)
			}
		})
	}
	for _, bad := range []string{`{"config":{"Entrypoint":"/bin/sh -c"}}`, `[{"Id":"sha256:aa","Config":{"Cmd":"x"}}]`, `[1]`, `{"config":null}`, `[{"Id":"x","Config":null}]`} {
		if _, err := parseImageConfig([]byte(bad), ""); err == nil {
			t.Errorf("%s: parsed, want an error", bad)
		}
	}
	// A mistyped member is named in the error.
	if _, err := parseImageConfig([]byte(`{"config":{"Cmd":"nginx"}}`), ""); err == nil || !strings.Contains(err.Error(), "Cmd") {
		t.Errorf("a string Cmd: error %v, want one naming Cmd", err)
	}
}
