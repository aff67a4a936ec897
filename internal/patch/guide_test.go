package patch

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
)

// guideContainer is what the guide's example fixes of a container.
type guideContainer struct {
	Name        string
	Image       string
	Essential   bool
	Cpu         int32
	EntryPoint  []string
	Command     []string
	VolumesFrom []string // sourceContainer:readOnly
	DependsOn   []string // containerName:condition
	Environment []string // name=value
	Secrets     []string // name=valueFrom
	LogGroup    string   // the awslogs group (the stream prefix may differ)
}

func project(cs []types.ContainerDefinition) []guideContainer {
	var out []guideContainer
	for _, c := range cs {
		g := guideContainer{Name: aws.ToString(c.Name), Image: aws.ToString(c.Image), Essential: isEssential(&c), Cpu: c.Cpu,
			EntryPoint: c.EntryPoint, Command: c.Command}
		for _, v := range c.VolumesFrom {
			g.VolumesFrom = append(g.VolumesFrom, aws.ToString(v.SourceContainer)+":"+map[bool]string{true: "ro", false: "rw"}[aws.ToBool(v.ReadOnly)])
		}
		for _, d := range c.DependsOn {
			g.DependsOn = append(g.DependsOn, aws.ToString(d.ContainerName)+":"+string(d.Condition))
		}
		for _, e := range c.Environment {
			g.Environment = append(g.Environment, aws.ToString(e.Name)+"="+aws.ToString(e.Value))
		}
		for _, s := range c.Secrets {
			g.Secrets = append(g.Secrets, aws.ToString(s.Name)+"="+aws.ToString(s.ValueFrom))
		}
		if c.LogConfiguration != nil {
			g.LogGroup = c.LogConfiguration.Options["awslogs-group"]
		}
		out = append(out, g)
	}
	return out
}

func guideExample(t *testing.T) *types.TaskDefinition {
	t.Helper()
	b, err := os.ReadFile("testdata/guide/guide-full.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ TaskDefinition *types.TaskDefinition }
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.TaskDefinition
}

// TestGuideExample: the guide's main-application container alone, rendered
// with the token as a plaintext variable as the guide does, gives the
// guide's sidecar and app containers. With the token from Secrets Manager,
// the same except the variable becomes a secret.
func TestGuideExample(t *testing.T) {
	want := project(guideExample(t).ContainerDefinitions)

	c := loadCase(t, "testdata/guide-plaintext.json")
	res, err := Instrument(c.TaskDefinition, c.Tags, c.Profile, c.Images, c.Options)
	if err != nil {
		t.Fatal(err)
	}
	got := project(res.Input.ContainerDefinitions)
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("plaintext token: not the guide's containers (-got +want):\n%s", diff)
	}

	c = loadCase(t, "testdata/guide-secret.json")
	res, err = Instrument(c.TaskDefinition, c.Tags, c.Profile, c.Images, c.Options)
	if err != nil {
		t.Fatal(err)
	}
	want[1].Environment = nil
	want[1].Secrets = []string{EnvAccessToken + "=" + c.Profile.TokenSecretArn}
	got = project(res.Input.ContainerDefinitions)
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("secret token: not the guide's containers (-got +want):\n%s", diff)
	}

	// The guide's whole example is a manual sidecar: covered, not touched.
	if cl := Classify(guideExample(t), nil, nil, Options{}); cl.Kind != KindManualSidecar {
		t.Errorf("Classify(guide example) = %s, want %s", cl.Kind, KindManualSidecar)
	}
}
