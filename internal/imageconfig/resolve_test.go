package imageconfig

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/ecs-sidecar/reconciler/internal/patch"
)

func TestResolveSingleImage(t *testing.T) {
	reg := newTestRegistry(t)
	img := image(t, v1.Config{Entrypoint: []string{"/docker-entrypoint.sh"}, Cmd: []string{"nginx", "-g", "daemon off;"}, User: "101"}, "amd64")
	reg.push(t, reg.ref("web:1.27"), img)
	r := newResolver(t, Options{})

	got, err := r.Resolve(context.Background(), container("web", reg.ref("web:1.27")), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Entrypoint: []string{"/docker-entrypoint.sh"},
		Cmd:        []string{"nginx", "-g", "daemon off;"},
		User:       "101",
		Digest:     digestOf(t, img),
		Platform:   "linux/amd64",
		Source:     "registry " + reg.ref("web:1.27") + " (anonymous)",
	}
	if d := cmp.Diff(got, want); d != "" {
		t.Errorf("config (-got +want):\n%s", d)
	}
	// One manifest and one config blob, after the ping.
	if d := cmp.Diff(reg.count(), map[string]int{"GET ping": 1, "GET manifests": 1, "GET blobs": 1}); d != "" {
		t.Errorf("registry requests (-got +want):\n%s", d)
	}

	gotPatch := got.ToPatch()
	wantPatch := patch.Image{Entrypoint: want.Entrypoint, Cmd: want.Cmd, User: "101", Digest: want.Digest, Known: true, Source: want.Source}
	if d := cmp.Diff(gotPatch, wantPatch); d != "" {
		t.Errorf("ToPatch (-got +want):\n%s", d)
	}
}

func TestResolveEntrypointAndCmdShapes(t *testing.T) {
	reg := newTestRegistry(t)
	r := newResolver(t, Options{})
	for _, tc := range []struct {
		name      string
		cfg       v1.Config
		wantEntry []string
		wantCmd   []string
	}{
		{"entrypoint-only", v1.Config{Entrypoint: []string{"/app", "--serve"}}, []string{"/app", "--serve"}, nil},
		{"cmd-only", v1.Config{Cmd: []string{"python", "app.py"}}, nil, []string{"python", "app.py"}},
		{"neither", v1.Config{}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg.push(t, reg.ref(tc.name+":latest"), image(t, tc.cfg, "amd64"))
			got, err := r.Resolve(context.Background(), container("app", reg.ref(tc.name+":latest")), nil)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(got.Entrypoint, tc.wantEntry); d != "" {
				t.Errorf("entrypoint (-got +want):\n%s", d)
			}
			if d := cmp.Diff(got.Cmd, tc.wantCmd); d != "" {
				t.Errorf("cmd (-got +want):\n%s", d)
			}
			if !got.ToPatch().Known {
				t.Error("ToPatch: Known is false for a config that was read")
			}
		})
	}
}

// multiArch pushes an index of an amd64 and an arm64/v8 image.
func multiArch(t *testing.T, reg *testRegistry, ref string) (amd, arm v1.Image, idx v1.ImageIndex) {
	t.Helper()
	amd = image(t, v1.Config{Entrypoint: []string{"/app-amd64"}}, "amd64")
	arm = image(t, v1.Config{Entrypoint: []string{"/app-arm64"}}, "arm64")
	idx = mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	reg.push(t, ref, idx)
	return amd, arm, idx
}

func TestResolveMultiArch(t *testing.T) {
	reg := newTestRegistry(t)
	amd, arm, idx := multiArch(t, reg, reg.ref("multi:1"))
	idxDigest, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	r := newResolver(t, Options{})
	for _, tc := range []struct {
		name      string
		rp        *types.RuntimePlatform
		wantEntry string
		wantImg   v1.Image
		wantPlat  string
	}{
		{"no runtimePlatform", nil, "/app-amd64", amd, "linux/amd64"},
		{"X86_64", &types.RuntimePlatform{CpuArchitecture: types.CPUArchitectureX8664, OperatingSystemFamily: types.OSFamilyLinux}, "/app-amd64", amd, "linux/amd64"},
		{"ARM64", &types.RuntimePlatform{CpuArchitecture: types.CPUArchitectureArm64}, "/app-arm64", arm, "linux/arm64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Resolve(context.Background(), container("app", reg.ref("multi:1")), tc.rp)
			if err != nil {
				t.Fatal(err)
			}
			want := Config{Entrypoint: []string{tc.wantEntry}, Digest: digestOf(t, tc.wantImg), IndexDigest: idxDigest.String(),
				Platform: tc.wantPlat, Source: "registry " + reg.ref("multi:1") + " (anonymous)"}
			if d := cmp.Diff(got, want); d != "" {
				t.Errorf("config (-got +want):\n%s", d)
			}
		})
	}
}

func TestResolveMissingPlatform(t *testing.T) {
	reg := newTestRegistry(t)
	amd := image(t, v1.Config{Entrypoint: []string{"/app"}}, "amd64")
	reg.push(t, reg.ref("amdonly:1"), mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}}))
	r := newResolver(t, Options{})
	_, err := r.Resolve(context.Background(), container("app", reg.ref("amdonly:1")), &types.RuntimePlatform{CpuArchitecture: types.CPUArchitectureArm64})
	var le *LookupError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v, want a *LookupError", err)
	}
	if le.Code != CodePlatformMissing {
		t.Errorf("code = %s, want %s (%v)", le.Code, CodePlatformMissing, err)
	}
	if !strings.Contains(err.Error(), "linux/amd64") {
		t.Errorf("error %q does not list the platforms the index has", err)
	}
	// The amd64 platform of the same index resolves.
	if _, err := r.Resolve(context.Background(), container("app", reg.ref("amdonly:1")), nil); err != nil {
		t.Errorf("amd64: %v", err)
	}
}

func TestResolveMovedTagAfterTTL(t *testing.T) {
	reg := newTestRegistry(t)
	clk := newClock()
	r := newResolver(t, Options{TagTTL: time.Minute, Now: clk.Now})
	v1img := image(t, v1.Config{Cmd: []string{"v1"}}, "amd64")
	v2img := image(t, v1.Config{Cmd: []string{"v2"}}, "amd64")
	reg.push(t, reg.ref("app:prod"), v1img)
	c := container("app", reg.ref("app:prod"))

	first, err := r.Resolve(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg.push(t, reg.ref("app:prod"), v2img) // the tag moves

	// Within the TTL the cache answers, without a request.
	clk.Advance(59 * time.Second)
	got, err := r.Resolve(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(got, first); d != "" {
		t.Errorf("within the TTL (-got +want):\n%s", d)
	}
	if n := reg.total(); n != 0 {
		t.Errorf("%d registry requests within the TTL, want 0", n)
	}

	// Past the TTL the moved tag gives the new image and a new digest.
	clk.Advance(2 * time.Second)
	got, err = r.Resolve(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(got.Cmd, []string{"v2"}); d != "" {
		t.Errorf("cmd after the TTL (-got +want):\n%s", d)
	}
	if got.Digest != digestOf(t, v2img) || got.Digest == first.Digest {
		t.Errorf("digest after the TTL = %s, want %s (was %s)", got.Digest, digestOf(t, v2img), first.Digest)
	}

	// Past the TTL again with the tag unmoved, one HEAD revalidates it.
	reg.reset()
	clk.Advance(2 * time.Minute)
	if _, err := r.Resolve(context.Background(), c, nil); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(reg.count(), map[string]int{"HEAD manifests": 1}); d != "" {
		t.Errorf("revalidation requests (-got +want):\n%s", d)
	}
}

func TestResolveDigestReference(t *testing.T) {
	reg := newTestRegistry(t)
	clk := newClock()
	r := newResolver(t, Options{TagTTL: time.Minute, Now: clk.Now})
	img := image(t, v1.Config{Entrypoint: []string{"/pinned"}}, "amd64")
	reg.push(t, reg.ref("pinned:1"), img)
	ref := reg.host + "/pinned@" + digestOf(t, img)

	got, err := r.Resolve(context.Background(), container("app", ref), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != digestOf(t, img) || got.Entrypoint[0] != "/pinned" {
		t.Errorf("got %+v", got)
	}
	// Digests are immutable: no request, however late.
	reg.reset()
	clk.Advance(24 * time.Hour)
	if _, err := r.Resolve(context.Background(), container("app", ref), nil); err != nil {
		t.Fatal(err)
	}
	if n := reg.total(); n != 0 {
		t.Errorf("%d registry requests for a cached digest, want 0", n)
	}
}

func TestResolveFailures(t *testing.T) {
	reg := newTestRegistry(t)
	reg.push(t, reg.ref("exists:1"), image(t, v1.Config{Cmd: []string{"x"}}, "amd64"))
	// A schema 1 manifest, as old registries still serve.
	schema1 := []byte(`{"schemaVersion":1,"name":"old","tag":"1","architecture":"amd64","fsLayers":[],"history":[]}`)
	req, _ := http.NewRequest(http.MethodPut, "http://"+reg.host+"/v2/old/manifests/1", strings.NewReader(string(schema1)))
	req.Header.Set("Content-Type", "application/vnd.docker.distribution.manifest.v1+prettyjws")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT schema 1 manifest: %s", resp.Status)
	}

	r := newResolver(t, Options{})
	for _, tc := range []struct {
		name  string
		c     *types.ContainerDefinition
		rp    *types.RuntimePlatform
		want  Code
		inErr string
	}{
		{"no image", &types.ContainerDefinition{Name: aws.String("app")}, nil, CodeInvalidReference, "no image"},
		{"bad reference", container("app", "UPPER/Case:tag"), nil, CodeInvalidReference, ""},
		{"bad architecture", container("app", reg.ref("exists:1")), &types.RuntimePlatform{CpuArchitecture: "S390X"}, CodeInvalidReference, "S390X"},
		{"missing tag", container("app", reg.ref("exists:2")), nil, CodeNotFound, ""},
		{"missing repository", container("app", reg.ref("nothing:1")), nil, CodeNotFound, ""},
		{"schema1", container("app", reg.ref("old:1")), nil, CodeSchema1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Resolve(context.Background(), tc.c, tc.rp)
			if got := CodeOf(err); got != tc.want {
				t.Errorf("code = %q, want %q (err %v)", got, tc.want, err)
			}
			if !strings.Contains(err.Error(), tc.inErr) {
				t.Errorf("error %q does not say %q", err, tc.inErr)
			}
		})
	}
}

func TestResolveTimeout(t *testing.T) {
	reg := newTestRegistry(t)
	reg.push(t, reg.ref("slow:1"), image(t, v1.Config{Cmd: []string{"x"}}, "amd64"))
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	reg.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/manifests/") {
			select { // hang until the client gives up
			case <-r.Context().Done():
			case <-stop:
			}
			return true
		}
		return false
	})
	r := newResolver(t, Options{Timeout: 200 * time.Millisecond})
	_, err := r.Resolve(context.Background(), container("app", reg.ref("slow:1")), nil)
	if got := CodeOf(err); got != CodeTimeout {
		t.Errorf("code = %q, want %q (err %v)", got, CodeTimeout, err)
	}
}

func TestResolveCallerCancel(t *testing.T) {
	reg := newTestRegistry(t)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	reg.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/manifests/") {
			select {
			case <-r.Context().Done():
			case <-stop:
			}
			return true
		}
		return false
	})
	r := newResolver(t, Options{Timeout: 5 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The flight hangs on the registry; the caller is answered at once.
	_, err := r.Resolve(ctx, container("app", reg.ref("any:1")), nil)
	if got := CodeOf(err); got != CodeCanceled {
		t.Errorf("code = %q, want %q (err %v)", got, CodeCanceled, err)
	}
}

func TestConcurrentLookupsCollapse(t *testing.T) {
	reg := newTestRegistry(t)
	reg.push(t, reg.ref("shared:1"), image(t, v1.Config{Cmd: []string{"x"}}, "amd64"))
	const n = 20
	var started sync.WaitGroup
	started.Add(n)
	gate := make(chan struct{})
	reg.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/manifests/") {
			<-gate // hold the first manifest request until every caller waits
		}
		return false
	})
	r := newResolver(t, Options{})
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			started.Done()
			_, errs[i] = r.Resolve(context.Background(), container("app", reg.ref("shared:1")), nil)
		})
	}
	started.Wait()
	time.Sleep(50 * time.Millisecond) // let the callers reach the flight; the assertion holds either way
	close(gate)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := reg.count()["GET manifests"]; got != 1 {
		t.Errorf("%d manifest requests for %d concurrent lookups of one image, want 1", got, n)
	}
}

func TestBoundedConcurrency(t *testing.T) {
	reg := newTestRegistry(t)
	const images = 12
	for i := range images {
		reg.push(t, reg.ref("img"+string(rune('a'+i))+":1"), image(t, v1.Config{Cmd: []string{string(rune('a' + i))}}, "amd64"))
	}
	r := newResolver(t, Options{MaxConcurrent: 2})
	var wg sync.WaitGroup
	for i := range images {
		wg.Go(func() {
			if _, err := r.Resolve(context.Background(), container("app", reg.ref("img"+string(rune('a'+i))+":1")), nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := reg.maxInfl.Load(); got > 2 {
		t.Errorf("%d registry requests in flight at once, want at most 2", got)
	}
	if got := reg.count()["GET manifests"]; got != images {
		t.Errorf("%d manifest requests, want %d", got, images)
	}
}

func TestImagesOfTaskDefinition(t *testing.T) {
	reg := newTestRegistry(t)
	img := image(t, v1.Config{Entrypoint: []string{"/app"}, Cmd: []string{"serve"}}, "arm64")
	reg.push(t, reg.ref("app:1"), mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}}))
	r := newResolver(t, Options{})
	td := &types.TaskDefinition{
		RuntimePlatform: &types.RuntimePlatform{CpuArchitecture: types.CPUArchitectureArm64},
		ContainerDefinitions: []types.ContainerDefinition{
			*container("app", reg.ref("app:1")),
			*container("gone", reg.ref("gone:1")),
		},
	}
	got, errs := r.Images(context.Background(), td)
	want := map[string]patch.Image{"app": {Entrypoint: []string{"/app"}, Cmd: []string{"serve"}, Digest: digestOf(t, img), Known: true,
		Source: "registry " + reg.ref("app:1") + " (anonymous)"}}
	if d := cmp.Diff(got, want); d != "" {
		t.Errorf("images (-got +want):\n%s", d)
	}
	if len(errs) != 1 || CodeOf(errs[0]) != CodeNotFound || !strings.Contains(errs[0].Error(), "container gone") {
		t.Errorf("errs = %v, want one not_found for container gone", errs)
	}
}

func TestResultsAreCopies(t *testing.T) {
	reg := newTestRegistry(t)
	reg.push(t, reg.ref("app:1"), image(t, v1.Config{Cmd: []string{"a", "b"}}, "amd64"))
	r := newResolver(t, Options{})
	c := container("app", reg.ref("app:1"))
	got, err := r.Resolve(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	got.Cmd[0] = "mutated"
	again, err := r.Resolve(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(again.Cmd, []string{"a", "b"}); d != "" {
		t.Errorf("a caller's change reached the cache (-got +want):\n%s", d)
	}
}

func TestNewRejectsNegativeOptions(t *testing.T) {
	_, err := New(Options{TagTTL: -1, MaxConcurrent: -1})
	if err == nil || !strings.Contains(err.Error(), "TTL") || !strings.Contains(err.Error(), "limits") {
		t.Errorf("err = %v, want both problems reported", err)
	}
}

func TestECRRegion(t *testing.T) {
	for _, tc := range []struct {
		host, region string
		ok           bool
	}{
		{"123456789012.dkr.ecr.eu-west-1.amazonaws.com", "eu-west-1", true},
		{"123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", "us-gov-west-1", true},
		{"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "cn-north-1", true},
		{"123456789012.dkr-ecr.ap-southeast-2.on.aws", "ap-southeast-2", true},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com:443", "us-east-1", true},
		{"public.ecr.aws", "", false},
		{"index.docker.io", "", false},
		{"ghcr.io", "", false},
		{"12345.dkr.ecr.us-east-1.amazonaws.com", "", false},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example", "", false},
	} {
		region, ok := ECRRegion(tc.host)
		if region != tc.region || ok != tc.ok {
			t.Errorf("ECRRegion(%q) = %q, %v; want %q, %v", tc.host, region, ok, tc.region, tc.ok)
		}
	}
}

func TestInsecureRegistries(t *testing.T) {
	r := newResolver(t, Options{Insecure: func(host string) bool { return host == "mirror.internal:5000" }})
	for _, tc := range []struct{ image, scheme string }{
		{"mirror.internal:5000/app:1", "http"},
		{"registry.example.com/app:1", "https"},
		{"127.0.0.1:5000/app:1", "http"}, // loopback: go-containerregistry's own rule
	} {
		ref, err := r.parse(tc.image)
		if err != nil {
			t.Fatal(err)
		}
		if got := ref.Context().Scheme(); got != tc.scheme {
			t.Errorf("%s: scheme %s, want %s", tc.image, got, tc.scheme)
		}
	}
}
