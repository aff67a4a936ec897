package patch

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// labelled is c with the reconciler's source label, as a forger writes it.
func labelled(c types.ContainerDefinition) types.ContainerDefinition {
	c.DockerLabels = map[string]string{DefaultTagPrefix + KeySource: "1", DefaultTagPrefix + KeySpec: "0123456789ab"}
	return c
}

func markerTags() []types.Tag {
	return []types.Tag{
		{Key: aws.String(DefaultTagPrefix + KeySource), Value: aws.String("1")},
		{Key: aws.String(DefaultTagPrefix + KeySpec), Value: aws.String("0123456789ab")},
	}
}

// scriptApp is an app container that runs the agent script and takes
// volumes from side.
func scriptApp(side string) types.ContainerDefinition {
	c := ctr("app", "example/app:1", true)
	c.EntryPoint = []string{SidecarScript, "/bin/app"}
	c.VolumesFrom = []types.VolumeFrom{{SourceContainer: aws.String(side), ReadOnly: aws.Bool(true)}}
	return c
}

// TestClassifyNeedsContent: being covered, or being a twin, takes the
// sidecar's content (a container that runs the agent script and takes
// volumes from a non-essential or datacollector sidecar), never a docker
// label alone: anyone who registers a task definition can write one.
func TestClassifyNeedsContent(t *testing.T) {
	p := Profile{TokenSecretArn: rolesSecret}
	twin, err := Instrument(fargate(ctr("app", "example/app:1", true)), nil, p, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	twinTD := taskDefinitionOf(twin.Input)

	tests := []struct {
		name string
		td   *types.TaskDefinition
		tags []types.Tag
		want Kind
	}{
		{"label alone on the app", fargate(labelled(ctr("app", "example/app:1", true))), nil, KindPlain},
		{"label alone with marker tags", fargate(labelled(ctr("app", "example/app:1", true))), markerTags(), KindPlain},
		{"labelled non-essential container nobody uses", fargate(ctr("app", "example/app:1", true), labelled(ctr("side", "busybox", false))), markerTags(), KindPlain},
		{"volumes from a labelled sidecar, no agent script", fargate(func() types.ContainerDefinition {
			c := scriptApp("side")
			c.EntryPoint = []string{"/bin/app"}
			return c
		}(), labelled(ctr("side", "busybox", false))), nil, KindPlain},
		{"agent script, labelled sidecar essential", fargate(scriptApp("side"), labelled(ctr("side", "busybox", true))), nil, KindEmbeddedAgent},
		{"agent script, volumes from a container that does not exist", fargate(scriptApp("gone")), nil, KindEmbeddedAgent},
		{"patch label and wrapper, no marker tags", fargate(func() types.ContainerDefinition {
			c := scriptApp("side")
			c.EntryPoint = []string{"env", "/bin/app"}
			c.DockerLabels = map[string]string{DefaultTagPrefix + KeyPatch: `{"entryPoint":["/bin/app"]}`}
			return c
		}(), labelled(ctr("side", "busybox", false))), nil, KindPlain},
		// With the marker tags that content makes a twin candidate, which
		// the controller deploys only if it equals what the patch makes of
		// its source (a custom profile's twin looks like this).
		{"patch label, wrapper and marker tags", fargate(func() types.ContainerDefinition {
			c := scriptApp("side")
			c.EntryPoint = []string{"env", "/bin/app"}
			c.DockerLabels = map[string]string{DefaultTagPrefix + KeyPatch: `{"entryPoint":["/bin/app"]}`}
			return c
		}(), labelled(ctr("side", "busybox", false))), markerTags(), KindTwin},
		{"marker tags on a plain task definition", fargate(ctr("app", "example/app:1", true)), markerTags(), KindPlain},
		{"the guide's hand-made sidecar", guideExample(t), nil, KindManualSidecar},
		{"hand-made, datacollector image left essential", fargate(scriptApp("dc"), ctr("dc", "lacework/datacollector:latest-sidecar", true)), nil, KindManualSidecar},
		{"hand-made, a non-essential sidecar of any name", fargate(scriptApp("files"), ctr("files", "example/agent-files:1", false)), nil, KindManualSidecar},
		{"the reconciler's sidecar without marker tags", twinTD, nil, KindManualSidecar},
		{"a twin", twinTD, twin.Input.Tags, KindTwin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.td, tt.tags, nil, Options{}).Kind; got != tt.want {
				t.Errorf("Classify = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestLabelForgeryInstrumented: a task definition whose container carries
// the sidecar's label, and nothing else of it, is instrumented like any
// other; its twin is a twin and gives the forgery back as its source.
func TestLabelForgeryInstrumented(t *testing.T) {
	src := fargate(labelled(ctr("app", "example/app:1", true)))
	res, err := Instrument(src, markerTags(), Profile{TokenSecretArn: rolesSecret}, nil, Options{})
	if err != nil {
		t.Fatalf("Instrument(label-only forgery) = %v, want a twin", err)
	}
	if len(res.Instrumented) != 1 || res.Instrumented[0] != "app" {
		t.Errorf("instrumented %v, want [app]", res.Instrumented)
	}
	twin := taskDefinitionOf(res.Input)
	if cl := Classify(twin, res.Input.Tags, nil, Options{}); cl.Kind != KindTwin || cl.Containers[0] != DefaultSidecarName {
		t.Errorf("Classify(twin of the forgery) = %+v, want a twin whose sidecar is %s", cl, DefaultSidecarName)
	}
	back, err := Source(twin, res.Input.Tags, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(back.ContainerDefinitions); n != 1 || back.ContainerDefinitions[0].DockerLabels[DefaultTagPrefix+KeySource] != "1" {
		t.Errorf("Source(twin) has %d containers, labels %v; want the forgery's one container, its label kept", n, back.ContainerDefinitions[0].DockerLabels)
	}
}

// TestSourceNeedsContent: Source refuses a revision whose only claim to be
// a twin is a label.
func TestSourceNeedsContent(t *testing.T) {
	_, err := Source(fargate(labelled(ctr("app", "example/app:1", true))), markerTags(), Options{})
	if !errors.Is(err, ErrNotTwin) {
		t.Errorf("Source(label only) = %v, want ErrNotTwin", err)
	}
}

// TestCustomTwinRecognised: a custom profile's twin runs the profile's
// wrapper, not the Lacework script. With its marker tags it is a twin
// (Classify knows it by its patch records); without them Classify, which
// has no profile, sees a plain task definition, and Instrument, which has
// it, refuses it as covered.
func TestCustomTwinRecognised(t *testing.T) {
	p := Profile{Type: ProfileTypeCustom, SidecarName: "agent", SidecarImage: "example/agent:2",
		Custom: &CustomProfile{Wrapper: []string{"/agent/run", "--"}}}
	res, err := Instrument(fargate(ctr("app", "example/app:1", true)), nil, p, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	twin := taskDefinitionOf(res.Input)
	if cl := Classify(twin, res.Input.Tags, nil, Options{}); cl.Kind != KindTwin {
		t.Errorf("Classify(custom twin) = %s, want twin", cl.Kind)
	}
	if cl := Classify(twin, nil, nil, Options{}); cl.Kind != KindPlain {
		t.Errorf("Classify(custom twin without tags) = %s, want plain", cl.Kind)
	}
	_, err = Instrument(twin, nil, p, nil, Options{})
	if ref := (*Refusal)(nil); !errors.As(err, &ref) || !ref.Has(CodeAlreadyCovered) {
		t.Errorf("Instrument(custom twin without tags) = %v, want already_covered", err)
	}
}
