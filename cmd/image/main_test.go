package main

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ecs-sidecar/reconciler/internal/image"
)

func runImage(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	getenv := func(k string) string {
		if k == "SOURCE_DATE_EPOCH" {
			return "1700000000"
		}
		return ""
	}
	code = run(context.Background(), args, strings.NewReader(stdin), &o, &e, getenv)
	return o.String(), e.String(), code
}

// Bad usage fails before any compile, with exit 2.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"--platform", "windows/amd64"}, "", "--platform"},
		{[]string{"--platform", "linux/amd64,linux/amd64"}, "", "twice"},
		{[]string{"--out", ""}, "", "nothing to do"},
		{[]string{"--password-stdin"}, "token", "needs --push"},
		{[]string{"--push", "127.0.0.1:1/r:v", "--password-stdin"}, "\n", "stdin is empty"},
		{[]string{"extra"}, "", "unexpected arguments"},
		{[]string{"--no-such-flag"}, "", "no-such-flag"},
	} {
		out, errOut, code := runImage(t, tc.stdin, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and %q on stderr", tc.args, code, out, errOut, tc.want)
		}
	}
	out, errOut, code := runImage(t, "", "--help")
	if code != 0 || !strings.Contains(out, "usage: image") || !strings.Contains(out, "-push") || errOut != "" {
		t.Errorf("--help: exit %d, stdout %q, stderr %q; want exit 0 and the usage on stdout", code, out, errOut)
	}
}

// One platform, written to a layout and pushed with a password on stdin
// to an in-memory registry on loopback: the printed ImageUri is the
// pushed index, pinned by digest.
func TestBuildWriteAndPush(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skipf("no Fargate platform for %s", runtime.GOARCH)
	}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "AWS" || p != "ecr-token" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/ecs-sidecar-reconciler:v0.0.0-cmdtest"
	dir := filepath.Join(t.TempDir(), "image")

	out, errOut, code := runImage(t, "ecr-token\n", "-C", "../..", "--version", "v0.0.0-cmdtest",
		"--platform", "linux/"+runtime.GOARCH, "--keep-paths", "--out", dir, "--push", ref, "--password-stdin")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	m := regexp.MustCompile(`(?m)^image: ImageUri=(\S+@sha256:[0-9a-f]{64})$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no ImageUri=...@sha256: line in:\n%s", out)
	}
	pinned, err := name.NewDigest(m[1])
	if err != nil {
		t.Fatal(err)
	}
	lp, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.IndexManifest()
	if err != nil || len(top.Manifests) != 1 {
		t.Fatalf("layout index.json: %+v, %v; want one entry", top, err)
	}
	if got := top.Manifests[0].Digest.String(); got != pinned.DigestStr() {
		t.Errorf("the layout's index is %s, the pushed one %s", got, pinned.DigestStr())
	}
	pulled, err := remote.Index(pinned, remote.WithAuthFromKeychain(image.StaticKeychain{Username: "AWS", Password: "ecr-token"}))
	if err != nil {
		t.Fatal(err)
	}
	im, err := pulled.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Platform.String() != "linux/"+runtime.GOARCH {
		t.Errorf("pushed index: %+v, want the one platform linux/%s", im.Manifests, runtime.GOARCH)
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		t.Error(err)
	}
}
