package awssim

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

func container(name, image string, essential bool) types.ContainerDefinition {
	return types.ContainerDefinition{Name: aws.String(name), Image: aws.String(image), Essential: aws.Bool(essential)}
}

func TestRegisterValidationOverSDK(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	eleven := make([]types.ContainerDefinition, 11)
	for i := range eleven {
		eleven[i] = container(fmt.Sprintf("c%d", i), "busybox", true)
	}
	bigEnv := []types.KeyValuePair{{Name: aws.String("BIG"), Value: aws.String(strings.Repeat("x", 70_000))}}
	tags51 := make([]types.Tag, 51)
	for i := range tags51 {
		tags51[i] = types.Tag{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")}
	}
	for _, tc := range []struct {
		name      string
		edit      func(in *ecs.RegisterTaskDefinitionInput)
		code, msg string
	}{
		{"bad family", func(in *ecs.RegisterTaskDefinitionInput) { in.Family = aws.String("web app") }, "ClientException", "Family contains invalid characters"},
		{"11 containers", func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions = eleven }, "ClientException", "at most 10 containers"},
		{"no name", func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[0].Name = nil }, "ClientException", "Container.name should not be null or empty."},
		{"no image", func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[0].Image = aws.String("") }, "ClientException", "Container.image should not be null or empty."},
		{"duplicate names", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions = append(in.ContainerDefinitions, container("app", "busybox", false))
		}, "ClientException", "Duplicate container name 'app'"},
		{"no essential", func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[0].Essential = aws.Bool(false) }, "ClientException", "at least one essential container"},
		{"dependsOn unknown", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].DependsOn = []types.ContainerDependency{{ContainerName: aws.String("ghost"), Condition: types.ContainerConditionStart}}
		}, "ClientException", "depends on container 'ghost'"},
		{"SUCCESS on essential", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions = append(in.ContainerDefinitions, container("side", "busybox", true))
			in.ContainerDefinitions[0].DependsOn = []types.ContainerDependency{{ContainerName: aws.String("side"), Condition: types.ContainerConditionSuccess}}
		}, "ClientException", "cannot be set on an essential container"},
		{"COMPLETE on essential (default)", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions = append(in.ContainerDefinitions, types.ContainerDefinition{Name: aws.String("side"), Image: aws.String("busybox")})
			in.ContainerDefinitions[0].DependsOn = []types.ContainerDependency{{ContainerName: aws.String("side"), Condition: types.ContainerConditionComplete}}
		}, "ClientException", "COMPLETE condition cannot be set"},
		{"HEALTHY without health check", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions = append(in.ContainerDefinitions, container("side", "busybox", false))
			in.ContainerDefinitions[0].DependsOn = []types.ContainerDependency{{ContainerName: aws.String("side"), Condition: types.ContainerConditionHealthy}}
		}, "ClientException", "has no health check"},
		{"volumesFrom unknown", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].VolumesFrom = []types.VolumeFrom{{SourceContainer: aws.String("ghost")}}
		}, "ClientException", "source container 'ghost'"},
		{"Fargate capability", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].LinuxParameters = &types.LinuxParameters{Capabilities: &types.KernelCapabilities{Add: []string{"SYS_PTRACE", "NET_ADMIN"}}}
		}, "ClientException", "only supports the SYS_PTRACE"},
		{"Fargate pair", func(in *ecs.RegisterTaskDefinitionInput) { in.Memory = aws.String("4096") }, "ClientException", "No Fargate configuration exists for given values: 256 CPU, 4096 memory."},
		{"Fargate pair in vCPU/GB", func(in *ecs.RegisterTaskDefinitionInput) {
			in.Cpu, in.Memory = aws.String("1 vCPU"), aws.String("1 GB")
		}, "ClientException", "No Fargate configuration exists"},
		{"Fargate cpu", func(in *ecs.RegisterTaskDefinitionInput) { in.Cpu = nil }, "ClientException", "Fargate requires that 'cpu' be defined at the task level."},
		{"Fargate network mode", func(in *ecs.RegisterTaskDefinitionInput) { in.NetworkMode = types.NetworkModeBridge }, "ClientException", "Fargate only supports network mode 'awsvpc'."},
		{"no memory anywhere (EC2)", func(in *ecs.RegisterTaskDefinitionInput) {
			in.RequiresCompatibilities, in.Memory, in.Cpu, in.NetworkMode = nil, nil, nil, ""
		}, "ClientException", "At least one of 'memory' or 'memoryReservation' must be specified."},
		{"64 KiB", func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[0].Environment = bigEnv }, "ClientException", "Max allowed length is '65536' bytes."},
		{"51 tags", func(in *ecs.RegisterTaskDefinitionInput) { in.Tags = tags51 }, "InvalidParameterException", "at most 50 tags"},
		{"tag pattern", func(in *ecs.RegisterTaskDefinitionInput) {
			in.Tags = []types.Tag{{Key: aws.String("k"), Value: aws.String("a,b")}}
		}, "InvalidParameterException", "regular expression"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := fargateTD("web")
			tc.edit(in)
			_, err := e.ecs.RegisterTaskDefinition(ctx, in)
			wantAPIErr(t, err, tc.code, tc.msg)
		})
	}
	// Nothing invalid was registered.
	if got := e.sim.State().Families; len(got) != 0 {
		t.Errorf("families after invalid registrations: got %v, want none", got)
	}

	// Valid edge cases pass: 10 containers, SYS_PTRACE on Fargate, every
	// Fargate pair form, SUCCESS on a non-essential container.
	ten := make([]types.ContainerDefinition, 10)
	for i := range ten {
		ten[i] = container(fmt.Sprintf("c%d", i), "busybox", i == 0)
	}
	ten[0].DependsOn = []types.ContainerDependency{{ContainerName: aws.String("c1"), Condition: types.ContainerConditionSuccess}}
	ten[0].VolumesFrom = []types.VolumeFrom{{SourceContainer: aws.String("c1")}}
	ten[0].LinuxParameters = &types.LinuxParameters{Capabilities: &types.KernelCapabilities{Add: []string{"SYS_PTRACE"}}}
	ok := fargateTD("web", ten...)
	ok.Cpu, ok.Memory = aws.String("16 vCPU"), aws.String("120 GB")
	if _, err := e.ecs.RegisterTaskDefinition(ctx, ok); err != nil {
		t.Errorf("valid task definition refused: %v", err)
	}
}

func TestFargatePairs(t *testing.T) {
	for _, tc := range []struct {
		cpu, mem int
		want     bool
	}{
		{256, 512, true}, {256, 2048, true}, {256, 3072, false}, {512, 4096, true}, {512, 5120, false},
		{1024, 2048, true}, {1024, 1024, false}, {2048, 16384, true}, {4096, 30720, true}, {4096, 31744, false},
		{8192, 16384, true}, {8192, 20480, true}, {8192, 17408, false}, {16384, 122880, true}, {16384, 40960, true},
		{16384, 36864, false}, {128, 512, false},
	} {
		if got := fargatePair(tc.cpu, tc.mem); got != tc.want {
			t.Errorf("fargatePair(%d, %d): got %v, want %v", tc.cpu, tc.mem, got, tc.want)
		}
	}
}
