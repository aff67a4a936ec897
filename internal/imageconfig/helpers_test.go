package imageconfig

import (
	"archive/tar"
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// testRegistry is go-containerregistry's in-memory registry on 127.0.0.1,
// behind a handler that counts requests by kind and can demand basic auth.
type testRegistry struct {
	host string
	srv  *httptest.Server

	mu     sync.Mutex
	counts map[string]int // "GET manifests", "HEAD manifests", "GET blobs", "GET ping", ...

	user, pass string // when set, every request needs them (401 otherwise)
	hook       func(w http.ResponseWriter, r *http.Request) bool
	inflight   atomic.Int64
	maxInfl    atomic.Int64
}

func newTestRegistry(t testing.TB) *testRegistry {
	t.Helper()
	tr := &testRegistry{counts: map[string]int{}}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	tr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := tr.inflight.Add(1)
		defer tr.inflight.Add(-1)
		for {
			m := tr.maxInfl.Load()
			if n <= m || tr.maxInfl.CompareAndSwap(m, n) {
				break
			}
		}
		tr.mu.Lock()
		tr.counts[kind(r)]++
		user, pass, hook := tr.user, tr.pass, tr.hook
		tr.mu.Unlock()
		if user != "" {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
		}
		if hook != nil && hook(w, r) {
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(tr.srv.Close)
	tr.host = strings.TrimPrefix(tr.srv.URL, "http://")
	return tr
}

// kind names a registry request: method and what it asks for.
func kind(r *http.Request) string {
	p := r.URL.Path
	switch {
	case p == "/v2/" || p == "/v2":
		return r.Method + " ping"
	case strings.Contains(p, "/manifests/"):
		return r.Method + " manifests"
	case strings.Contains(p, "/blobs/uploads"):
		return r.Method + " uploads"
	case strings.Contains(p, "/blobs/"):
		return r.Method + " blobs"
	}
	return r.Method + " other"
}

func (tr *testRegistry) reset() {
	tr.mu.Lock()
	tr.counts = map[string]int{}
	tr.mu.Unlock()
	tr.maxInfl.Store(0)
}

func (tr *testRegistry) count() map[string]int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := map[string]int{}
	for k, v := range tr.counts {
		out[k] = v
	}
	return out
}

func (tr *testRegistry) total() int {
	n := 0
	for _, v := range tr.count() {
		n += v
	}
	return n
}

func (tr *testRegistry) requireAuth(user, pass string) {
	tr.mu.Lock()
	tr.user, tr.pass = user, pass
	tr.mu.Unlock()
}

func (tr *testRegistry) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	tr.mu.Lock()
	tr.hook = h
	tr.mu.Unlock()
}

func (tr *testRegistry) ref(repoTag string) string { return tr.host + "/" + repoTag }

// push writes img (or an index) under ref, then zeroes the counters.
func (tr *testRegistry) push(t testing.TB, ref string, x any) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	tr.mu.Lock()
	auth := authn.Authenticator(authn.Anonymous)
	if tr.user != "" {
		auth = &authn.Basic{Username: tr.user, Password: tr.pass}
	}
	tr.mu.Unlock()
	switch v := x.(type) {
	case v1.Image:
		err = remote.Write(r, v, remote.WithAuth(auth))
	case v1.ImageIndex:
		err = remote.WriteIndex(r, v, remote.WithAuth(auth))
	default:
		t.Fatalf("push %T", x)
	}
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	tr.reset()
}

// file is an entry of a test layer: a regular file, a directory ("dir"),
// a symlink ("link" to target) or a whiteout (a name starting .wh.).
type file struct {
	path   string
	kind   string // "", "dir", "link"
	target string
}

func layer(t testing.TB, files ...file) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.path, Mode: 0o755, ModTime: time.Unix(0, 0)}
		switch f.kind {
		case "dir":
			h.Typeflag = tar.TypeDir
		case "link":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.target
		default:
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.path))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			io.WriteString(tw, f.path)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// image builds an image with config c (Entrypoint, Cmd, User) and layers.
func image(t testing.TB, c v1.Config, arch string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config = c
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t testing.TB, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// clock is a settable clock for TTL tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newResolver(t testing.TB, o Options) *Resolver {
	t.Helper()
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func container(name, image string) *types.ContainerDefinition {
	return &types.ContainerDefinition{Name: aws.String(name), Image: aws.String(image)}
}
