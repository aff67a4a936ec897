package imageconfig_test

import (
	"testing"

	"github.com/ecs-sidecar/reconciler/internal/controller"
	"github.com/ecs-sidecar/reconciler/internal/imageconfig"
	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// The Resolver is the controller's ImageResolver as is.
var _ controller.ImageResolver = (*imageconfig.Resolver)(nil)

func TestDetectShellFor(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    patch.Profile
		want bool
	}{
		{"defaults: distroless auto", patch.Profile{}, true},
		{"distroless stated", patch.Profile{Distroless: patch.DistrolessFalse}, false},
		{"distroless stated, sudo", patch.Profile{Distroless: patch.DistrolessTrue, NonRoot: patch.NonRootSudo}, true},
		{"custom profile", patch.Profile{Type: patch.ProfileTypeCustom}, false},
		{"custom profile, sudo", patch.Profile{Type: patch.ProfileTypeCustom, NonRoot: patch.NonRootSudo}, true},
	} {
		if got := imageconfig.DetectShellFor(tc.p); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
