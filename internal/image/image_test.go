package image

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const testVersion = "v0.0.0-imagetest"

// built is the one build of both platforms that the tests share: two
// cross-compiles are most of the tests' time. It compiles with the flags
// `make image` uses, so after a `make image` the go build cache has both.
var built struct {
	once sync.Once
	opts Options
	bins []Binary
	idx  v1.ImageIndex
	err  error
}

func buildOnce(t *testing.T) ([]Binary, v1.ImageIndex) {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "reconciler-imagetest-")
		if err != nil {
			built.err = err
			return
		}
		// Removed by TestMain.
		built.opts = Options{ModuleDir: "../..", Version: testVersion, Created: time.Unix(1700000000, 0), KeepPaths: true}
		start := time.Now()
		// The reconciler for the host's platform, which the tests run; a
		// stand-in for the other (a cold cache would compile the whole
		// dependency graph again for it: minutes of CI). IMAGE_TEST_ALL=1
		// compiles the reconciler for both.
		for _, p := range DefaultPlatforms {
			o := built.opts
			o.Platforms = []v1.Platform{p}
			if p.Architecture != runtime.GOARCH && os.Getenv("IMAGE_TEST_ALL") != "1" {
				o.Package = "./internal/image/testdata/standin"
			}
			bins, err := Compile(context.Background(), o, dir)
			if err != nil {
				built.err = err
				return
			}
			built.bins = append(built.bins, bins...)
		}
		built.idx, built.err = Assemble(built.opts, built.bins)
		log.Printf("image test: compiled and assembled %d platforms in %s", len(built.bins), time.Since(start).Round(100*time.Millisecond))
	})
	if built.err != nil {
		t.Fatalf("build: %v", built.err)
	}
	return built.bins, built.idx
}

func TestMain(m *testing.M) {
	code := m.Run()
	if len(built.bins) > 0 {
		os.RemoveAll(filepath.Dir(built.bins[0].Path))
	}
	os.Exit(code)
}

// imageFor is the index's image for the platform.
func imageFor(t *testing.T, idx v1.ImageIndex, p v1.Platform) v1.Image {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.Equals(p) {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return img
		}
	}
	t.Fatalf("no image for %s in the index", p)
	return nil
}

// files reads the image's flattened filesystem: name -> header and body.
func files(t *testing.T, img v1.Image) map[string]fileEntry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	m := map[string]fileEntry{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		m["/"+strings.TrimSuffix(h.Name, "/")] = fileEntry{h, b}
	}
	return m
}

type fileEntry struct {
	h    *tar.Header
	body []byte
}

func TestIndexHasBothPlatformsAndTheirConfigs(t *testing.T) {
	_, idx := buildOnce(t)
	if mt, err := idx.MediaType(); err != nil || mt != types.OCIImageIndex {
		t.Errorf("index media type %q (%v), want %q", mt, err, types.OCIImageIndex)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range im.Manifests {
		if d.Platform == nil {
			t.Errorf("manifest %s has no platform", d.Digest)
			continue
		}
		got = append(got, d.Platform.String())
		if d.MediaType != types.OCIManifestSchema1 {
			t.Errorf("%s: media type %q, want %q", d.Platform, d.MediaType, types.OCIManifestSchema1)
		}
	}
	if diff := cmp.Diff(got, []string{"linux/amd64", "linux/arm64"}); diff != "" {
		t.Errorf("index platforms (-got +want):\n%s", diff)
	}
	if im.Annotations["org.opencontainers.image.version"] != testVersion {
		t.Errorf("index annotations %v: want org.opencontainers.image.version=%s", im.Annotations, testVersion)
	}

	var baseDigests []v1.Hash
	for _, p := range DefaultPlatforms {
		img := imageFor(t, idx, p)
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != p.OS || cf.Architecture != p.Architecture {
			t.Errorf("%s: config says %s/%s", p, cf.OS, cf.Architecture)
		}
		c := cf.Config
		if c.User != "65532:65532" {
			t.Errorf("%s: User %q, want 65532:65532 (non-root)", p, c.User)
		}
		if diff := cmp.Diff(c.Entrypoint, []string{"/reconciler"}); diff != "" {
			t.Errorf("%s: Entrypoint (-got +want):\n%s", p, diff)
		}
		if diff := cmp.Diff(c.Cmd, []string{"run"}); diff != "" {
			t.Errorf("%s: Cmd (-got +want):\n%s", p, diff)
		}
		if diff := cmp.Diff(c.ExposedPorts, map[string]struct{}{"9102/tcp": {}}); diff != "" {
			t.Errorf("%s: ExposedPorts (-got +want):\n%s", p, diff)
		}
		if !slices.Contains(c.Env, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt") {
			t.Errorf("%s: Env %q has no SSL_CERT_FILE", p, c.Env)
		}
		for k, want := range map[string]string{
			"org.opencontainers.image.version": testVersion,
			"org.opencontainers.image.source":  DefaultSource,
		} {
			if c.Labels[k] != want {
				t.Errorf("%s: label %s=%q, want %q", p, k, c.Labels[k], want)
			}
		}
		if want := time.Unix(1700000000, 0).UTC(); !cf.Created.Time.Equal(want) {
			t.Errorf("%s: Created %v, want %v (Options.Created)", p, cf.Created.Time, want)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.Config.MediaType != types.OCIConfigJSON || len(m.Layers) != 2 {
			t.Fatalf("%s: config %q, %d layers; want %q and 2 layers (base, binary)", p, m.Config.MediaType, len(m.Layers), types.OCIConfigJSON)
		}
		for _, l := range m.Layers {
			if l.MediaType != types.OCILayer {
				t.Errorf("%s: layer media type %q, want %q", p, l.MediaType, types.OCILayer)
			}
		}
		baseDigests = append(baseDigests, m.Layers[0].Digest)
	}
	if baseDigests[0] != baseDigests[1] {
		t.Errorf("the base layers differ between platforms (%v): they should be one blob", baseDigests)
	}
}

// The binary in each layer is for its platform, and the host's runs.
func TestBinaryFromTheLayerRuns(t *testing.T) {
	_, idx := buildOnce(t)
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for _, p := range DefaultPlatforms {
		f, ok := files(t, imageFor(t, idx, p))["/reconciler"]
		if !ok {
			t.Fatalf("%s: no /reconciler in the image", p)
		}
		if f.h.Mode&0o755 != 0o755 || f.h.Typeflag != tar.TypeReg {
			t.Errorf("%s: /reconciler mode %o type %c, want an executable file", p, f.h.Mode, f.h.Typeflag)
		}
		ef, err := elf.NewFile(bytes.NewReader(f.body))
		if err != nil {
			t.Fatalf("%s: /reconciler is not ELF: %v", p, err)
		}
		if ef.Machine != machines[p.Architecture] {
			t.Errorf("%s: /reconciler is for %v, want %v", p, ef.Machine, machines[p.Architecture])
		}
		if ef.Section(".interp") != nil {
			t.Errorf("%s: /reconciler is dynamically linked (has .interp): the image has no libc", p)
		}
		if p.Architecture != runtime.GOARCH || runtime.GOOS != "linux" {
			continue
		}
		bin := filepath.Join(t.TempDir(), "reconciler")
		if err := os.WriteFile(bin, f.body, 0o755); err != nil {
			t.Fatal(err)
		}
		run := func(args ...string) (string, string, int) {
			t.Helper()
			var o, e bytes.Buffer
			cmd := exec.Command(bin, args...)
			cmd.Stdout, cmd.Stderr = &o, &e
			cmd.Env = []string{"HOME=" + t.TempDir(), "AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true"}
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatalf("%v: %v", args, err)
			}
			return o.String(), e.String(), code
		}
		out, errOut, code := run("version")
		if want := "reconciler " + testVersion + " "; code != 0 || !strings.HasPrefix(out, want) || !strings.Contains(out, "linux/"+p.Architecture) {
			t.Errorf("version: exit %d, stdout %q, stderr %q; want exit 0 and %q...linux/%s", code, out, errOut, want, p.Architecture)
		}
		out, errOut, code = run("healthcheck", "--help")
		if code != 0 || !strings.Contains(out, "healthcheck") || !strings.Contains(out, "-url") || errOut != "" {
			t.Errorf("healthcheck --help: exit %d, stdout %q, stderr %q; want exit 0 and the usage on stdout", code, out, errOut)
		}
		// The production tag: no embedded AWS.
		_, errOut, code = run("sim")
		if code != 1 || !strings.Contains(errOut, "no embedded AWS") {
			t.Errorf("sim: exit %d, stderr %q; want exit 1 and \"no embedded AWS\" (built with -tags %s)", code, errOut, ProductionTag)
		}
	}
}

func TestImageHasCABundleAndNonrootUser(t *testing.T) {
	_, idx := buildOnce(t)
	certs, err := os.ReadFile(CABundle)
	if err != nil {
		t.Fatal(err)
	}
	fs := files(t, imageFor(t, idx, DefaultPlatforms[0]))
	ca, ok := fs["/etc/ssl/certs/ca-certificates.crt"]
	if !ok {
		t.Fatal("no CA bundle in the image")
	}
	if !bytes.Equal(ca.body, certs) {
		t.Errorf("the image's CA bundle (%d bytes) is not this machine's (%d bytes)", len(ca.body), len(certs))
	}
	passwd, group := string(fs["/etc/passwd"].body), string(fs["/etc/group"].body)
	if !slices.Contains(strings.Split(passwd, "\n"), "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin") {
		t.Errorf("/etc/passwd has no nonroot user 65532:\n%s", passwd)
	}
	if !slices.Contains(strings.Split(group, "\n"), "nonroot:x:65532:") {
		t.Errorf("/etc/group has no nonroot group 65532:\n%s", group)
	}
	if h := fs["/home/nonroot"].h; h == nil || h.Uid != UID || h.Typeflag != tar.TypeDir {
		t.Errorf("/home/nonroot: %+v, want a directory of %d", h, UID)
	}
	if h := fs["/tmp"].h; h == nil || h.Mode&0o1777 != 0o1777 {
		t.Errorf("/tmp: %+v, want mode 1777", h)
	}
	want := time.Unix(1700000000, 0)
	for n, f := range fs {
		if !f.h.ModTime.Equal(want) {
			t.Errorf("%s: time %v, want %v (Options.Created)", n, f.h.ModTime, want)
		}
	}
}

// The same binaries and options give the same digest; another time does not.
func TestAssembleIsReproducible(t *testing.T) {
	bins, idx := buildOnce(t)
	d1, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Assemble(built.opts, bins)
	if err != nil {
		t.Fatal(err)
	}
	if d2, _ := again.Digest(); d2 != d1 {
		t.Errorf("assembled twice: %s, then %s", d1, d2)
	}
	o := built.opts
	o.Created = o.Created.Add(time.Second)
	later, err := Assemble(o, bins)
	if err != nil {
		t.Fatal(err)
	}
	if d3, _ := later.Digest(); d3 == d1 {
		t.Errorf("another creation time gave the same digest %s", d1)
	}
}

func TestWriteLayoutHoldsTheIndex(t *testing.T) {
	_, idx := buildOnce(t)
	dir := filepath.Join(t.TempDir(), "image")
	for range 2 { // the second time replaces the first layout
		if _, err := WriteLayout(dir, idx, testVersion); err != nil {
			t.Fatal(err)
		}
	}
	lp, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	if len(top.Manifests) != 1 || top.Manifests[0].Digest != want || !top.Manifests[0].MediaType.IsIndex() {
		t.Fatalf("index.json: %+v, want one entry, the index %s", top.Manifests, want)
	}
	if got := top.Manifests[0].Annotations[RefNameAnnotation]; got != testVersion {
		t.Errorf("ref name %q, want %q", got, testVersion)
	}
	child, err := lp.ImageIndex(want)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range DefaultPlatforms {
		if _, err := imageFor(t, child, p).ConfigFile(); err != nil {
			t.Errorf("%s from the layout: %v", p, err)
		}
	}
	// 1 index, 2 manifests, 2 configs, 2 binaries, 1 shared base.
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	if len(blobs) != 8 {
		t.Errorf("%d blobs in the layout, want 8 (one index, two manifests, two configs, two binaries, one shared base)", len(blobs))
	}

	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteLayout(other, idx, ""); err == nil {
		t.Error("WriteLayout replaced a directory that is not a layout")
	}
	if _, err := os.Stat(filepath.Join(other, "keep")); err != nil {
		t.Errorf("the other directory's file: %v", err)
	}
}

// Push to go-containerregistry's in-memory registry on loopback, behind
// basic auth as ECR's token is used, then pull it back.
func TestPushToRegistry(t *testing.T) {
	_, idx := buildOnce(t)
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "AWS" || p != "token" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	if !strings.HasPrefix(host, "127.0.0.1:") {
		t.Fatalf("test registry on %s, want loopback", host)
	}
	ref := host + "/ecs-sidecar-reconciler:" + testVersion
	ctx := context.Background()

	if _, err := Push(ctx, idx, ref, StaticKeychain{Username: "AWS", Password: "wrong"}); err == nil {
		t.Fatal("push with a wrong password succeeded")
	}
	pinned, err := Push(ctx, idx, ref, StaticKeychain{Username: "AWS", Password: "token"})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	if pinned.DigestStr() != want.String() || !strings.HasPrefix(pinned.String(), host+"/ecs-sidecar-reconciler@sha256:") {
		t.Errorf("pinned reference %s, want %s/ecs-sidecar-reconciler@%s", pinned, host, want)
	}

	auth := remote.WithAuthFromKeychain(StaticKeychain{Username: "AWS", Password: "token"})
	tag, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Index(tag, auth)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := pulled.Digest(); got != want {
		t.Errorf("pulled index %s, pushed %s", got, want)
	}
	// What a Graviton task pulls: the arm64 image, whole.
	arm := v1.Platform{OS: "linux", Architecture: "arm64"}
	img, err := remote.Image(tag, auth, remote.WithPlatform(arm))
	if err != nil {
		t.Fatal(err)
	}
	gotD, _ := img.Digest()
	wantD, _ := imageFor(t, idx, arm).Digest()
	if gotD != wantD {
		t.Errorf("pulled arm64 image %s, pushed %s", gotD, wantD)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n == 0 {
			t.Errorf("layer: %d bytes, %v", n, err)
		}
	}
}

func TestMissingCABundleFailsBeforeCompiling(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "ca-certificates.crt")
	// With no go command: had it compiled first, the error would be another.
	_, err := Build(context.Background(), Options{ModuleDir: "../..", CACerts: missing, Go: "/nonexistent/go"})
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Build with no CA bundle: %v; want an error naming %s as missing", err, missing)
	}
	notPEM := filepath.Join(t.TempDir(), "empty.crt")
	if err := os.WriteFile(notPEM, []byte("nothing"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(context.Background(), Options{CACerts: notPEM, Go: "/nonexistent/go"}); err == nil || !strings.Contains(err.Error(), "no PEM") {
		t.Errorf("Build with a CA bundle that is not PEM: %v", err)
	}
}

func TestParsePlatforms(t *testing.T) {
	got, err := ParsePlatforms("linux/amd64, linux/arm64")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, DefaultPlatforms); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
	for _, bad := range []string{"", "windows/amd64", "linux/amd64,linux/amd64"} {
		if _, err := ParsePlatforms(bad); err == nil {
			t.Errorf("ParsePlatforms(%q) succeeded", bad)
		}
	}
}

func TestSourceDateEpoch(t *testing.T) {
	if got, err := SourceDateEpoch("1700000000"); err != nil || !got.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("SourceDateEpoch(1700000000) = %v, %v", got, err)
	}
	if got, err := SourceDateEpoch(""); err != nil || !got.IsZero() {
		t.Errorf("SourceDateEpoch(\"\") = %v, %v; want the zero time (then the epoch)", got, err)
	}
	if _, err := SourceDateEpoch("yesterday"); err == nil {
		t.Error("SourceDateEpoch(yesterday) succeeded")
	}
}
