package patch

import (
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
)

func TestValidate(t *testing.T) {
	ok := func() *ecs.RegisterTaskDefinitionInput {
		return &ecs.RegisterTaskDefinitionInput{
			Family:                  aws.String("web"),
			RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
			ContainerDefinitions: []types.ContainerDefinition{
				{Name: aws.String("side"), Image: aws.String("s"), Essential: aws.Bool(false)},
				{Name: aws.String("app"), Image: aws.String("a"),
					DependsOn:   []types.ContainerDependency{{ContainerName: aws.String("side"), Condition: types.ContainerConditionSuccess}},
					VolumesFrom: []types.VolumeFrom{{SourceContainer: aws.String("side")}}},
			},
		}
	}
	tests := []struct {
		name   string
		break_ func(in *ecs.RegisterTaskDefinitionInput)
		want   []Code
	}{
		{"valid", func(*ecs.RegisterTaskDefinitionInput) {}, nil},
		{"11 containers", func(in *ecs.RegisterTaskDefinitionInput) {
			for i := 0; i < 9; i++ {
				in.ContainerDefinitions = append(in.ContainerDefinitions, types.ContainerDefinition{Name: aws.String(strings.Repeat("x", i+1)), Image: aws.String("i")})
			}
		}, []Code{CodeTooManyContainers}},
		{"duplicate name", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].Name = aws.String("app")
		}, []Code{CodeNameCollision, CodeInvalidDependency, CodeInvalidVolumesFrom}},
		{"no essential", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[1].Essential = aws.Bool(false)
		}, []Code{CodeNoEssential}},
		{"SUCCESS on an essential container", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].Essential = nil // ECS's default is essential
		}, []Code{CodeInvalidDependency}},
		{"dependsOn and volumesFrom on missing containers", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[1].DependsOn[0].ContainerName = aws.String("gone")
			in.ContainerDefinitions[1].VolumesFrom[0].SourceContainer = aws.String("gone")
		}, []Code{CodeInvalidDependency, CodeInvalidVolumesFrom}},
		{"a capability other than SYS_PTRACE on Fargate", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[1].LinuxParameters = &types.LinuxParameters{Capabilities: &types.KernelCapabilities{Add: []string{"SYS_PTRACE", "NET_ADMIN"}}}
		}, []Code{CodeFargateCapability}},
		{"read-only root on an instrumented container", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[1].ReadonlyRootFilesystem = aws.Bool(true)
		}, []Code{CodeReadonlyRootFS}},
		{"over 64 KiB", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[1].Command = []string{strings.Repeat("a", MaxSize)}
		}, []Code{CodeTooLarge}},
		{"51 tags and bad tags", func(in *ecs.RegisterTaskDefinitionInput) {
			for i := 0; i < 49; i++ {
				in.Tags = append(in.Tags, types.Tag{Key: aws.String("k" + strings.Repeat("x", i)), Value: aws.String("v")})
			}
			in.Tags = append(in.Tags, types.Tag{Key: aws.String("aws:x"), Value: aws.String("v")}, types.Tag{Key: aws.String("k!"), Value: aws.String("v")})
		}, []Code{CodeTooManyTags, CodeInvalidTag, CodeInvalidTag}},
		{"no family, no image", func(in *ecs.RegisterTaskDefinitionInput) {
			in.Family = nil
			in.ContainerDefinitions[1].Image = nil
		}, []Code{CodeMissingField, CodeMissingField}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ok()
			tt.break_(in)
			var got []Code
			for _, r := range Validate(in, []string{"app"}) {
				got = append(got, r.Code)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Validate codes (-got +want):\n%s", diff)
			}
		})
	}
}

func TestWireSize(t *testing.T) {
	in := &ecs.RegisterTaskDefinitionInput{Family: aws.String("web"), ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("a\"b"), Cpu: 0, Essential: aws.Bool(false)}}}
	want := `{"containerDefinitions":[{"essential":false,"name":"a\"b"}],"family":"web"}`
	if got := string(appendWire(nil, reflect.ValueOf(in))); got != want {
		t.Errorf("appendWire = %s, want %s", got, want)
	}
	if got := WireSize(in); got != len(want) {
		t.Errorf("WireSize = %d, want %d", got, len(want))
	}
}
