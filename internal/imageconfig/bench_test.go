package imageconfig

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// sharedImages pushes n images, one repository each, and returns their
// references.
func sharedImages(t testing.TB, reg *testRegistry, n int) []string {
	t.Helper()
	refs := make([]string, n)
	for i := range n {
		refs[i] = reg.ref(fmt.Sprintf("svc%02d:1", i))
		reg.push(t, refs[i], image(t, v1.Config{Entrypoint: []string{"/svc"}, Cmd: []string{fmt.Sprint(i)}}, "amd64"))
	}
	return refs
}

// resolveFleet resolves containers task definitions of 10 containers each,
// container i running image i mod len(refs), all task definitions at once.
func resolveFleet(t testing.TB, r *Resolver, refs []string, containers int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, containers)
	for td := 0; td < containers/10; td++ {
		def := &types.TaskDefinition{}
		for c := range 10 {
			i := td*10 + c
			def.ContainerDefinitions = append(def.ContainerDefinitions, *container(fmt.Sprint("c", c), refs[i%len(refs)]))
		}
		wg.Go(func() {
			images, es := r.Images(context.Background(), def)
			for _, e := range es {
				errs <- e
			}
			if len(images) != 10 && len(es) == 0 {
				errs <- fmt.Errorf("%d images for 10 containers", len(images))
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

// 1,000 containers sharing 50 images cost one manifest and one config per
// image, plus go-containerregistry's /v2/ ping once per repository (its
// Puller authenticates per repository scope).
func TestRequestsForSharedImages(t *testing.T) {
	reg := newTestRegistry(t)
	refs := sharedImages(t, reg, 50)
	r := newResolver(t, Options{})
	resolveFleet(t, r, refs, 1000)
	want := map[string]int{"GET ping": 50, "GET manifests": 50, "GET blobs": 50}
	if d := cmp.Diff(reg.count(), want); d != "" {
		t.Errorf("registry requests for 1,000 containers of 50 images (-got +want):\n%s", d)
	}
	// A second sweep within the TTL costs nothing.
	reg.reset()
	resolveFleet(t, r, refs, 1000)
	if n := reg.total(); n != 0 {
		t.Errorf("%d registry requests for a second sweep within the TTL, want 0", n)
	}
}

// BenchmarkResolve reports resolutions per second with and without the
// cache, and registry requests per resolution.
//
//	go test -run '^$' -bench . -benchtime 2000x ./internal/imageconfig/
func BenchmarkResolve(b *testing.B) {
	reg := newTestRegistry(b)
	img := image(b, v1.Config{Entrypoint: []string{"/app"}, Cmd: []string{"serve"}}, "amd64")
	reg.push(b, reg.ref("bench:1"), img)
	c := container("app", reg.ref("bench:1"))
	ctx := context.Background()

	b.Run("uncached", func(b *testing.B) {
		reg.reset()
		b.ReportAllocs()
		for b.Loop() {
			r, err := New(Options{}) // empty caches: ping, manifest, config
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.Resolve(ctx, c, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "resolutions/s")
		b.ReportMetric(float64(reg.total())/float64(b.N), "requests/op")
	})
	b.Run("cached", func(b *testing.B) {
		r, err := New(Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Resolve(ctx, c, nil); err != nil {
			b.Fatal(err)
		}
		reg.reset()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Resolve(ctx, c, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "resolutions/s")
		b.ReportMetric(float64(reg.total())/float64(b.N), "requests/op")
	})
}

// BenchmarkFleet resolves 1,000 containers sharing 50 images with an empty
// cache, and reports the registry requests that took.
func BenchmarkFleet(b *testing.B) {
	reg := newTestRegistry(b)
	refs := sharedImages(b, reg, 50)
	reg.reset()
	for b.Loop() {
		r, err := New(Options{})
		if err != nil {
			b.Fatal(err)
		}
		resolveFleet(b, r, refs, 1000)
	}
	counts := reg.count()
	b.ReportMetric(float64(reg.total())/float64(b.N), "requests/1000containers")
	b.ReportMetric(float64(counts["GET manifests"])/float64(b.N), "manifests/1000containers")
	b.ReportMetric(float64(counts["GET blobs"])/float64(b.N), "configs/1000containers")
}
