package imageconfig

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// shellOutcome is what the tests compare: nil pointers print as "unknown".
func shellOutcome(c Config) [2]string {
	s := func(b *bool) string {
		switch {
		case b == nil:
			return "unknown"
		case *b:
			return "yes"
		}
		return "no"
	}
	return [2]string{s(c.HasShell), s(c.HasSudo)}
}

func TestDetectShell(t *testing.T) {
	reg := newTestRegistry(t)
	r := newResolver(t, Options{DetectShell: true})
	cfg := v1.Config{Entrypoint: []string{"/app"}}
	debianBase := layer(t, // Debian 12 / Ubuntu: merged /usr, sh -> dash
		file{path: "usr/", kind: "dir"}, file{path: "usr/bin/", kind: "dir"},
		file{path: "bin", kind: "link", target: "usr/bin"},
		file{path: "usr/bin/dash"}, file{path: "usr/bin/sh", kind: "link", target: "dash"})
	for _, tc := range []struct {
		name   string
		layers []v1.Layer
		want   [2]string // shell, sudo
	}{
		{"distroless", []v1.Layer{
			layer(t, file{path: "etc/", kind: "dir"}, file{path: "etc/passwd"}),
			layer(t, file{path: "app"}),
		}, [2]string{"no", "no"}},
		{"shell", []v1.Layer{
			layer(t, file{path: "bin/", kind: "dir"}, file{path: "bin/sh"}, file{path: "bin/busybox"}),
			layer(t, file{path: "app"}),
		}, [2]string{"yes", "no"}},
		{"bin symlink to usr/bin", []v1.Layer{debianBase, layer(t, file{path: "app"})}, [2]string{"yes", "no"}},
		{"sudo through the bin symlink", []v1.Layer{debianBase, layer(t, file{path: "usr/bin/sudo"})}, [2]string{"yes", "yes"}},
		{"absolute symlink", []v1.Layer{
			layer(t, file{path: "bin/", kind: "dir"}, file{path: "bin/sh", kind: "link", target: "/usr/local/../bin/ash"},
				file{path: "usr/local/bin/", kind: "dir"}, file{path: "usr/bin/ash"}),
		}, [2]string{"yes", "no"}},
		{"dangling symlink", []v1.Layer{
			layer(t, file{path: "bin/", kind: "dir"}, file{path: "bin/sh", kind: "link", target: "dash"}),
		}, [2]string{"no", "no"}},
		{"symlink loop", []v1.Layer{
			layer(t, file{path: "bin", kind: "link", target: "bin2"}, file{path: "bin2", kind: "link", target: "bin"}),
		}, [2]string{"no", "no"}},
		{"whiteout of /bin/sh in an upper layer", []v1.Layer{
			layer(t, file{path: "bin/", kind: "dir"}, file{path: "bin/sh"}, file{path: "usr/bin/sudo"}),
			layer(t, file{path: "bin/.wh.sh"}),
		}, [2]string{"no", "yes"}},
		{"whiteout of the sh symlink's target", []v1.Layer{
			debianBase,
			layer(t, file{path: "usr/bin/.wh.dash"}),
		}, [2]string{"no", "no"}},
		{"whiteout of /bin, then a new /bin/sh above it", []v1.Layer{
			layer(t, file{path: "bin/", kind: "dir"}, file{path: "bin/sudo"}),
			layer(t, file{path: ".wh.bin"}),
			layer(t, file{path: "bin/", kind: "dir"}, file{path: "bin/sh"}),
		}, [2]string{"yes", "no"}},
		{"opaque /bin", []v1.Layer{
			layer(t, file{path: "bin/", kind: "dir"}, file{path: "bin/sh"}),
			layer(t, file{path: "bin/", kind: "dir"}, file{path: "bin/.wh..wh..opq"}, file{path: "bin/app"}),
		}, [2]string{"no", "no"}},
		{"/bin replaced by a file", []v1.Layer{
			layer(t, file{path: "bin/", kind: "dir"}, file{path: "bin/sh"}),
			layer(t, file{path: "bin"}),
		}, [2]string{"no", "no"}},
		{"/bin/sh is a directory", []v1.Layer{
			layer(t, file{path: "bin/sh/", kind: "dir"}),
		}, [2]string{"no", "no"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := reg.ref(strings.NewReplacer(" ", "-", "/", "", ",", "", "'", "").Replace(tc.name) + ":1")
			reg.push(t, ref, image(t, cfg, "amd64", tc.layers...))
			got, err := r.Resolve(context.Background(), container("app", ref), nil)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(shellOutcome(got), tc.want); d != "" {
				t.Errorf("[shell sudo] (-got +want):\n%s", d)
			}
			p := got.ToPatch()
			if d := cmp.Diff(shellOutcome(Config{HasShell: p.HasShell, HasSudo: p.HasSudo}), tc.want); d != "" {
				t.Errorf("ToPatch [shell sudo] (-got +want):\n%s", d)
			}
		})
	}
}

func TestDetectShellStopsAtTheTopLayer(t *testing.T) {
	reg := newTestRegistry(t)
	r := newResolver(t, Options{DetectShell: true})
	img := image(t, v1.Config{}, "amd64",
		layer(t, file{path: "usr/bin/a"}),
		layer(t, file{path: "usr/bin/b"}),
		layer(t, file{path: "bin/", kind: "dir"}, file{path: "bin/sh"}, file{path: "usr/bin/sudo"}))
	reg.push(t, reg.ref("top:1"), img)
	got, err := r.Resolve(context.Background(), container("app", reg.ref("top:1")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(shellOutcome(got), [2]string{"yes", "yes"}); d != "" {
		t.Errorf("[shell sudo] (-got +want):\n%s", d)
	}
	// The config blob and the top layer only: the top layer decides both.
	if got := reg.count()["GET blobs"]; got != 2 {
		t.Errorf("%d blob requests, want 2 (config, top layer)", got)
	}

	// The walk is cached by digest: the same image under another tag costs
	// a manifest request and nothing more.
	reg.push(t, reg.ref("top:again"), img)
	again, err := r.Resolve(context.Background(), container("app", reg.ref("top:again")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(shellOutcome(again), [2]string{"yes", "yes"}); d != "" {
		t.Errorf("cached [shell sudo] (-got +want):\n%s", d)
	}
	if d := cmp.Diff(reg.count(), map[string]int{"GET manifests": 1}); d != "" {
		t.Errorf("requests for a known digest (-got +want):\n%s", d)
	}
}

func TestDetectShellBudgets(t *testing.T) {
	reg := newTestRegistry(t)
	big := layer(t, file{path: "bin/", kind: "dir"}, file{path: "bin/sh"}, file{path: "opt/" + strings.Repeat("x", 200)})
	img := image(t, v1.Config{Cmd: []string{"run"}}, "amd64", big, layer(t, file{path: "app"}))
	reg.push(t, reg.ref("big:1"), img)
	size, err := big.Size()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("bytes", func(t *testing.T) {
		r := newResolver(t, Options{DetectShell: true, MaxLayerBytes: size - 1})
		got, err := r.Resolve(context.Background(), container("app", reg.ref("big:1")), nil)
		if err != nil {
			t.Fatal(err) // the config is still read
		}
		if d := cmp.Diff(shellOutcome(got), [2]string{"unknown", "unknown"}); d != "" {
			t.Errorf("[shell sudo] (-got +want):\n%s", d)
		}
		if d := cmp.Diff(got.Cmd, []string{"run"}); d != "" {
			t.Errorf("cmd (-got +want):\n%s", d)
		}
		if !strings.Contains(got.ShellDetail, "bytes") {
			t.Errorf("detail = %q, want it to name the byte budget", got.ShellDetail)
		}
	})
	t.Run("layers", func(t *testing.T) {
		r := newResolver(t, Options{DetectShell: true, MaxLayers: 1})
		got, err := r.Resolve(context.Background(), container("app", reg.ref("big:1")), nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(shellOutcome(got), [2]string{"unknown", "unknown"}); d != "" {
			t.Errorf("[shell sudo] (-got +want):\n%s", d)
		}
	})
	t.Run("enough", func(t *testing.T) {
		r := newResolver(t, Options{DetectShell: true, MaxLayerBytes: 1 << 20})
		got, err := r.Resolve(context.Background(), container("app", reg.ref("big:1")), nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(shellOutcome(got), [2]string{"yes", "no"}); d != "" {
			t.Errorf("[shell sudo] (-got +want):\n%s", d)
		}
	})
}

func TestDetectShellLayerFailureIsUnknownAndRetried(t *testing.T) {
	reg := newTestRegistry(t)
	shellLayer := layer(t, file{path: "bin/", kind: "dir"}, file{path: "bin/sh"})
	img := image(t, v1.Config{Cmd: []string{"run"}}, "amd64", shellLayer)
	reg.push(t, reg.ref("flaky:1"), img)
	ld, err := shellLayer.Digest()
	if err != nil {
		t.Fatal(err)
	}
	reg.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, ld.String()) {
			http.Error(w, "gone", http.StatusNotFound)
			return true
		}
		return false
	})
	clk := newClock()
	r := newResolver(t, Options{DetectShell: true, Now: clk.Now})
	got, err := r.Resolve(context.Background(), container("app", reg.ref("flaky:1")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(shellOutcome(got), [2]string{"unknown", "unknown"}); d != "" {
		t.Errorf("[shell sudo] with a failing layer (-got +want):\n%s", d)
	}
	if got.ShellDetail == "" {
		t.Error("no detail for an unknown shell")
	}
	// A network failure is not the image's: it is not cached, and the
	// same image under a new tag is walked again.
	reg.setHook(nil)
	reg.push(t, reg.ref("flaky:2"), img)
	got, err = r.Resolve(context.Background(), container("app", reg.ref("flaky:2")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(shellOutcome(got), [2]string{"yes", "no"}); d != "" {
		t.Errorf("[shell sudo] once the layer is served (-got +want):\n%s", d)
	}
}

func TestResolveSymlinks(t *testing.T) {
	layers := []layerView{{ // one complete layer
		entries: map[string]entry{
			"/bin":                 {kind: 'l', link: "usr/bin"},
			"/usr":                 {kind: 'd'},
			"/usr/bin":             {kind: 'd'},
			"/usr/bin/sh":          {kind: 'l', link: "../../etc/alternatives/sh"},
			"/etc":                 {kind: 'd'},
			"/etc/alternatives":    {kind: 'd'},
			"/etc/alternatives/sh": {kind: 'l', link: "/usr/bin/dash"},
			"/usr/bin/dash":        {kind: 'f'},
			"/usr/bin/file":        {kind: 'f'},
			"/deep":                {kind: 'l', link: "/bin/../bin/./sh"},
		},
		whiteouts: map[string]bool{}, opaque: map[string]bool{},
	}}
	v := fsView{layers: layers, complete: true}
	for _, tc := range []struct {
		path string
		want lookupState
	}{
		{"/bin/sh", found},
		{"/usr/bin/sh", found},
		{"/deep", found},
		{"/usr/bin/file/sh", absent}, // ENOTDIR
		{"/usr/bin", absent},         // a directory is not a shell
		{"/nope/sh", absent},
	} {
		if got := v.resolve(tc.path); got != tc.want {
			t.Errorf("resolve(%s) = %d, want %d", tc.path, got, tc.want)
		}
	}
	// With layers still unread below, a path no layer mentions is undecided.
	partial := fsView{layers: layers}
	if got := partial.resolve("/nope/sh"); got != undecided {
		t.Errorf("resolve(/nope/sh) on a partial view = %d, want undecided", got)
	}
}

func TestDetectShellTimeBudget(t *testing.T) {
	reg := newTestRegistry(t)
	shellLayer := layer(t, file{path: "bin/", kind: "dir"}, file{path: "bin/sh"})
	reg.push(t, reg.ref("hang:1"), image(t, v1.Config{Cmd: []string{"run"}}, "amd64", shellLayer))
	ld, err := shellLayer.Digest()
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	reg.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, ld.String()) {
			select { // the layer never comes
			case <-r.Context().Done():
			case <-stop:
			}
			return true
		}
		return false
	})
	r := newResolver(t, Options{DetectShell: true, WalkTimeout: 100 * time.Millisecond, Timeout: 10 * time.Second})
	got, err := r.Resolve(context.Background(), container("app", reg.ref("hang:1")), nil)
	if err != nil {
		t.Fatal(err) // the config was read; only the walk ran out of time
	}
	if d := cmp.Diff(shellOutcome(got), [2]string{"unknown", "unknown"}); d != "" {
		t.Errorf("[shell sudo] (-got +want):\n%s", d)
	}
	if d := cmp.Diff(got.Cmd, []string{"run"}); d != "" {
		t.Errorf("cmd (-got +want):\n%s", d)
	}
}

func TestLimitReadCloser(t *testing.T) {
	for _, tc := range []struct {
		body    string
		limit   int64
		wantErr error
	}{
		{"exactly", 7, nil},
		{"one byte more", 12, errLayerTooLong},
		{"short", 10, nil}, // shorter than declared: the digest check catches it
	} {
		l := &limitReadCloser{rc: io.NopCloser(strings.NewReader(tc.body)), left: tc.limit}
		got, err := io.ReadAll(l)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("%q limit %d: err = %v, want %v", tc.body, tc.limit, err, tc.wantErr)
		}
		if tc.wantErr == nil && string(got) != tc.body {
			t.Errorf("%q limit %d: read %q", tc.body, tc.limit, got)
		}
	}
}
