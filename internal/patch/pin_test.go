package patch

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
)

// Image.Pin (images.pinDigest): the twin's instrumented container runs the
// image by the digest whose config the patch read; Source gives the source
// its tag back; the spec changes only when a pin is given, so that twins
// made without pinning keep their specs.
func TestPinnedImage(t *testing.T) {
	const (
		tagged = "registry.example.com:5000/shop/web:1.0"
		pinned = "registry.example.com:5000/shop/web@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	)
	td := fargate(
		types.ContainerDefinition{Name: aws.String("app"), Image: aws.String(tagged), Essential: aws.Bool(true)},
		types.ContainerDefinition{Name: aws.String("envoy"), Image: aws.String("public.ecr.aws/appmesh/aws-appmesh-envoy:v1"), Essential: aws.Bool(true), EntryPoint: []string{"/envoy"}},
	)
	td.ProxyConfiguration = &types.ProxyConfiguration{ContainerName: aws.String("envoy"), Type: types.ProxyConfigurationTypeAppmesh}
	p := Profile{TokenSecretArn: rolesSecret}
	img := Image{Entrypoint: []string{"/web"}, Cmd: []string{"serve"}, Digest: "sha256:2222222222222222222222222222222222222222222222222222222222222222", Known: true}
	pinnedImg := img
	pinnedImg.Pin = pinned
	envoyPin := Image{Known: true, Pin: "public.ecr.aws/appmesh/aws-appmesh-envoy@sha256:3333333333333333333333333333333333333333333333333333333333333333"}

	plain, err := Instrument(td, nil, p, map[string]Image{"app": img}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Instrument(td, nil, p, map[string]Image{"app": pinnedImg, "envoy": envoyPin}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(container(t, plain, "app").Image); got != tagged {
		t.Errorf("without a pin the twin runs %s, want the tag %s", got, tagged)
	}
	if got := aws.ToString(container(t, res, "app").Image); got != pinned {
		t.Errorf("pinned twin runs %s, want %s", got, pinned)
	}
	// Only what the patch wraps is pinned: the proxy, left alone, keeps its
	// reference even when a pin is offered for it.
	if got := aws.ToString(container(t, res, "envoy").Image); got != "public.ecr.aws/appmesh/aws-appmesh-envoy:v1" {
		t.Errorf("the envoy proxy (left alone) runs %s, want its own reference", got)
	}
	if plain.Spec == res.Spec {
		t.Errorf("pinning kept the spec %s: a twin made without the pin would be taken for the pinned one", plain.Spec)
	}
	// The spec without a pin is what it was before pins existed: the same
	// Image without the field hashes alike.
	again, err := Instrument(td, nil, p, map[string]Image{"app": img, "envoy": {Known: true}}, Options{})
	if err != nil || again.Spec != plain.Spec {
		t.Errorf("spec without pin: %v (%v), want %s", again.Spec, err, plain.Spec)
	}

	back, err := Source(taskDefinitionOf(res.Input), res.Input.Tags, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := registerInput(td)
	if diff := cmp.Diff(normalize(t, wire(back)), normalize(t, wire(want))); diff != "" {
		t.Errorf("Source(pinned twin) is not the source (-got +want):\n%s", diff)
	}
	// The registered twin is recognised as such.
	if k := Classify(taskDefinitionOf(res.Input), res.Input.Tags, nil, Options{}).Kind; k != KindTwin {
		t.Errorf("pinned twin classified %s, want %s", k, KindTwin)
	}

	// A pin equal to the image (a digest reference already) changes nothing
	// in the container and records nothing to undo.
	byDigest := fargate(types.ContainerDefinition{Name: aws.String("app"), Image: aws.String(pinned), Essential: aws.Bool(true)})
	same := img
	same.Pin = pinned
	r2, err := Instrument(byDigest, nil, p, map[string]Image{"app": same}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if lbl := container(t, r2, "app").DockerLabels[DefaultTagPrefix+KeyPatch]; lbl == "" || strings.Contains(lbl, `"image"`) {
		t.Errorf("patch label %q records an image for a reference already pinned", lbl)
	}
}
