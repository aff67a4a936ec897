package patch

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// deployTimeTwin instruments td as the CloudFormation macro does: no
// source revision (so no source tag) and the deploy-time tag added.
func deployTimeTwin(t *testing.T, td *types.TaskDefinition, p Profile) (*types.TaskDefinition, []types.Tag) {
	t.Helper()
	td.Revision = 0
	res, err := Instrument(td, nil, p, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := TagValue(res.Input.Tags, DefaultTagPrefix+KeySource); ok {
		t.Fatalf("a revision without a source revision got a source tag: %v", res.Input.Tags)
	}
	tags := append(res.Input.Tags, types.Tag{Key: aws.String(DefaultTagPrefix + KeyDeployTime), Value: aws.String("cloudformation")})
	return taskDefinitionOf(res.Input), tags
}

// TestClassifyDeployTime: a revision instrumented at deploy time is covered
// (never a twin: it has no source), for the lacework profile and for a
// custom one whose wrapper Classify does not know; the deploy-time tag
// alone, on content without our sidecar, proves nothing.
func TestClassifyDeployTime(t *testing.T) {
	lw := Profile{TokenSecretArn: rolesSecret}
	custom := Profile{Type: ProfileTypeCustom, SidecarName: "agent", SidecarImage: "example/agent:2",
		Custom: &CustomProfile{Wrapper: []string{"/agent/run", "--"}}}
	for _, tc := range []struct {
		name string
		p    Profile
	}{{"lacework", lw}, {"custom", custom}} {
		t.Run(tc.name, func(t *testing.T) {
			twin, tags := deployTimeTwin(t, fargate(ctr("app", "example/app:1", true)), tc.p)
			cl := Classify(twin, tags, nil, Options{})
			if cl.Kind != KindManualSidecar || cl.Detail != "instrumented at deploy time (cloudformation)" {
				t.Errorf("Classify = %s (%s), want manual_sidecar instrumented at deploy time", cl.Kind, cl.Detail)
			}
			// Instrumenting it again is refused as covered: the macro and the
			// reconciler leave it alone.
			_, err := Instrument(twin, tags, tc.p, nil, Options{})
			if ref := (*Refusal)(nil); !errors.As(err, &ref) || !ref.Has(CodeAlreadyCovered) {
				t.Errorf("Instrument(deploy-time revision) = %v, want already_covered", err)
			}
		})
	}
	t.Run("tag alone", func(t *testing.T) {
		td := fargate(labelled(ctr("app", "example/app:1", true)))
		tags := []types.Tag{{Key: aws.String(DefaultTagPrefix + KeyDeployTime), Value: aws.String("cloudformation")}}
		if cl := Classify(td, tags, nil, Options{}); cl.Kind != KindPlain {
			t.Errorf("Classify(deploy-time tag, no sidecar) = %s, want plain", cl.Kind)
		}
	})
}
