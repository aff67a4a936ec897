package main

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	// noEmbeddedTag is the build tag of the production build (noembedded.go).
	noEmbeddedTag = "noembedded"
	awssimPkg     = "github.com/ecs-sidecar/reconciler/internal/awssim"
)

// deps lists the packages the binary links, with the given build tags.
func deps(t *testing.T, tags string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-tags", tags, ".").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list -deps -tags %q: %v\n%s", tags, err, ee.Stderr)
		}
		t.Fatalf("go list -deps -tags %q: %v", tags, err)
	}
	return strings.Fields(string(out))
}

// The production build leaves the embedded AWS out; the default build, which
// `make run` and `go run ./cmd/reconciler` use, keeps it.
func TestNoEmbeddedBuildLeavesOutAWSSim(t *testing.T) {
	if got := deps(t, ""); !slices.Contains(got, awssimPkg) {
		t.Errorf("the default build does not link %s: `run --embedded` and `sim` would have nothing to serve", awssimPkg)
	}
	got := deps(t, noEmbeddedTag)
	for _, p := range got {
		if p == awssimPkg || strings.HasPrefix(p, awssimPkg+"/") {
			t.Errorf("-tags %s links %s", noEmbeddedTag, p)
		}
	}
	if !slices.Contains(got, "github.com/ecs-sidecar/reconciler/internal/controller") {
		t.Errorf("-tags %s does not link internal/controller: the list is not the binary's (%d packages)", noEmbeddedTag, len(got))
	}
}

// The production build compiles, works, and refuses what needs the embedded
// AWS with the reason and exit 1 (not a usage error: the flags exist).
func TestNoEmbeddedBuildRefusesEmbedded(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "reconciler")
	if out, err := exec.Command("go", "build", "-tags", noEmbeddedTag, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags %s: %v\n%s", noEmbeddedTag, err, out)
	}
	run := func(args ...string) (stdout, stderr string, code int) {
		t.Helper()
		var o, e bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &o, &e
		// No AWS: nothing may be reached, whatever the machine's variables.
		cmd.Env = []string{"AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true", "HOME=" + t.TempDir()}
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			code = ee.ExitCode()
		default:
			t.Fatalf("%v: %v", args, err)
		}
		return o.String(), e.String(), code
	}

	if out, errOut, code := run("version"); code != exitOK || !strings.HasPrefix(out, "reconciler ") {
		t.Errorf("version: exit %d, stdout %q, stderr %q; want exit 0 and the version", code, out, errOut)
	}
	const reason = "this build has no embedded AWS"
	for _, args := range [][]string{
		{"sim"},
		{"sim", "--seed", "demo"},
		{"run", "--embedded"},
		{"plan", "--embedded"},
	} {
		out, errOut, code := run(args...)
		if code != exitFail {
			t.Errorf("%v: exit %d, want %d", args, code, exitFail)
		}
		if !strings.Contains(errOut, reason) || !strings.Contains(errOut, "default build") {
			t.Errorf("%v: stderr %q, want the reason %q and the way out", args, errOut, reason)
		}
		if out != "" {
			t.Errorf("%v: stdout %q, want nothing", args, out)
		}
	}
}
