package awssim

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestClustersOverSDK(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	for i := range 3 {
		must[*ecs.CreateClusterOutput](t)(e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{
			ClusterName: aws.String(fmt.Sprintf("c%d", 2-i)),
			Tags:        []types.Tag{{Key: aws.String("team"), Value: aws.String("sec")}},
		}))
	}
	// Idempotent: creating again returns the same cluster.
	again := must[*ecs.CreateClusterOutput](t)(e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("c0")}))
	if got, want := aws.ToString(again.Cluster.ClusterArn), "arn:aws:ecs:us-east-1:123456789012:cluster/c0"; got != want {
		t.Errorf("cluster ARN: got %s, want %s", got, want)
	}

	var got []string
	p := ecs.NewListClustersPaginator(e.ecs, &ecs.ListClustersInput{MaxResults: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		out := must[*ecs.ListClustersOutput](t)(p.NextPage(ctx))
		got = append(got, out.ClusterArns...)
		pages++
	}
	want := []string{
		"arn:aws:ecs:us-east-1:123456789012:cluster/c0",
		"arn:aws:ecs:us-east-1:123456789012:cluster/c1",
		"arn:aws:ecs:us-east-1:123456789012:cluster/c2",
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("ListClusters (-got +want):\n%s", diff)
	}
	if pages != 2 {
		t.Errorf("pages: got %d, want 2", pages)
	}

	d := must[*ecs.DescribeClustersOutput](t)(e.ecs.DescribeClusters(ctx, &ecs.DescribeClustersInput{
		Clusters: []string{"c1", "nope", want[2]}, Include: []types.ClusterField{types.ClusterFieldTags},
	}))
	var names []string
	for _, c := range d.Clusters {
		names = append(names, aws.ToString(c.ClusterName)+"/"+aws.ToString(c.Status)+"/"+aws.ToString(c.Tags[0].Value))
	}
	if diff := cmp.Diff(names, []string{"c1/ACTIVE/sec", "c2/ACTIVE/sec"}); diff != "" {
		t.Errorf("DescribeClusters (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(d.Failures, []types.Failure{{Arn: aws.String("arn:aws:ecs:us-east-1:123456789012:cluster/nope"), Reason: aws.String("MISSING")}}, cmpopts.IgnoreUnexported(types.Failure{})); diff != "" {
		t.Errorf("failures (-got +want):\n%s", diff)
	}
}

func TestRegisterDescribeRoundTrip(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	in := DemoTaskDefinition("web", "nginx:1.27", []types.Tag{{Key: aws.String("ecs-sidecar/inject"), Value: aws.String("true")}})
	in.TaskRoleArn = aws.String("arn:aws:iam::123456789012:role/app")
	in.ContainerDefinitions = append(in.ContainerDefinitions, types.ContainerDefinition{
		Name: aws.String("init"), Image: aws.String("busybox"), Essential: aws.Bool(false),
		Command:         []string{"sh", "-c", "true"},
		LinuxParameters: &types.LinuxParameters{Capabilities: &types.KernelCapabilities{Add: []string{"SYS_PTRACE"}}},
		Secrets:         []types.Secret{{Name: aws.String("TOKEN"), ValueFrom: aws.String("arn:aws:secretsmanager:us-east-1:123456789012:secret:tok-AbCdEf")}},
	})
	in.ContainerDefinitions[0].DependsOn = []types.ContainerDependency{{ContainerName: aws.String("init"), Condition: types.ContainerConditionSuccess}}
	in.ContainerDefinitions[0].VolumesFrom = []types.VolumeFrom{{SourceContainer: aws.String("init"), ReadOnly: aws.Bool(true)}}
	in.RuntimePlatform = &types.RuntimePlatform{CpuArchitecture: types.CPUArchitectureArm64, OperatingSystemFamily: types.OSFamilyLinux}
	in.EphemeralStorage = &types.EphemeralStorage{SizeInGiB: 30}

	e.clock.Advance(time.Minute)
	reg := must[*ecs.RegisterTaskDefinitionOutput](t)(e.ecs.RegisterTaskDefinition(ctx, in))
	desc := must[*ecs.DescribeTaskDefinitionOutput](t)(e.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String("web:1"), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
	}))
	td := desc.TaskDefinition
	if diff := cmp.Diff(reg.TaskDefinition, td, cmpopts.IgnoreUnexported(allTypes...)); diff != "" {
		t.Errorf("register and describe differ (-register +describe):\n%s", diff)
	}
	// Read-only fields, filled as ECS fills them.
	wantRO := types.TaskDefinition{
		TaskDefinitionArn: aws.String("arn:aws:ecs:us-east-1:123456789012:task-definition/web:1"),
		Revision:          1,
		Status:            types.TaskDefinitionStatusActive,
		RegisteredAt:      aws.Time(t0.Add(time.Minute)),
		RegisteredBy:      aws.String("arn:aws:iam::123456789012:root"),
		Compatibilities:   []types.Compatibility{types.CompatibilityEc2, types.CompatibilityFargate},
		RequiresAttributes: []types.Attribute{
			{Name: aws.String("com.amazonaws.ecs.capability.docker-remote-api.1.18")},
			{Name: aws.String("com.amazonaws.ecs.capability.docker-remote-api.1.19")},
			{Name: aws.String("com.amazonaws.ecs.capability.logging-driver.awslogs")},
			{Name: aws.String("com.amazonaws.ecs.capability.task-iam-role")},
			{Name: aws.String("ecs.capability.container-ordering")},
			{Name: aws.String("ecs.capability.execution-role-awslogs")},
			{Name: aws.String("ecs.capability.secrets.asm.environment-variables")},
			{Name: aws.String("ecs.capability.task-eni")},
		},
	}
	gotRO := types.TaskDefinition{
		TaskDefinitionArn: td.TaskDefinitionArn, Revision: td.Revision, Status: td.Status,
		RegisteredAt: td.RegisteredAt, RegisteredBy: td.RegisteredBy,
		Compatibilities: td.Compatibilities, RequiresAttributes: td.RequiresAttributes,
	}
	if diff := cmp.Diff(gotRO, wantRO, cmpopts.IgnoreUnexported(allTypes...)); diff != "" {
		t.Errorf("read-only fields (-got +want):\n%s", diff)
	}
	// Every member sent comes back as sent (ECS adds defaults, compared with EquateEmpty).
	back := RegisterInputFrom(td)
	back.Tags = desc.Tags
	if diff := cmp.Diff(back, in, cmpopts.IgnoreUnexported(allTypes...), cmpopts.EquateEmpty(), cmpopts.IgnoreFields(types.ContainerDefinition{}, "Cpu"),
		cmp.FilterPath(func(p cmp.Path) bool { return strings.HasSuffix(p.String(), "Essential") }, cmp.Ignore())); diff != "" {
		t.Errorf("round trip (-described +registered):\n%s", diff)
	}
	if got := aws.ToBool(td.ContainerDefinitions[0].Essential); !got {
		t.Errorf("essential of app: got false")
	}

	// Revisions are numbered per family.
	must[*ecs.RegisterTaskDefinitionOutput](t)(e.ecs.RegisterTaskDefinition(ctx, fargateTD("web")))
	other := must[*ecs.RegisterTaskDefinitionOutput](t)(e.ecs.RegisterTaskDefinition(ctx, fargateTD("api")))
	latest := must[*ecs.DescribeTaskDefinitionOutput](t)(e.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web")}))
	if got := []int32{latest.TaskDefinition.Revision, other.TaskDefinition.Revision}; !cmp.Equal(got, []int32{2, 1}) {
		t.Errorf("revisions web, api: got %v, want [2 1]", got)
	}
	if latest.Tags != nil {
		t.Errorf("tags without include=TAGS: got %v, want none", latest.Tags)
	}
	_, err := e.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web:9")})
	wantAPIErr(t, err, "ClientException", "Unable to describe task definition.")
}

// RegisterInputFrom rebuilds a RegisterTaskDefinitionInput from a
// TaskDefinition by reflection (every member of the same name), as a
// consumer would, to check that the simulator keeps every member.
func RegisterInputFrom(td *types.TaskDefinition) *ecs.RegisterTaskDefinitionInput {
	in := &ecs.RegisterTaskDefinitionInput{}
	copyFieldsByName(in, td)
	return in
}

func TestBuildTaskDefinitionKeepsEveryMember(t *testing.T) {
	// Every input member but tags must have a TaskDefinition field of the
	// same name and type (aws-facts.md section 1): otherwise the simulator
	// would drop it silently when the SDK grows.
	missing := membersMissingFromTaskDefinition()
	if len(missing) != 0 {
		t.Errorf("RegisterTaskDefinitionInput members with no TaskDefinition field: %v", missing)
	}
	in := fargateTD("f")
	in.IpcMode = types.IpcModeTask
	in.PidMode = types.PidModeTask
	in.EnableFaultInjection = aws.Bool(true)
	in.ProxyConfiguration = &types.ProxyConfiguration{ContainerName: aws.String("app")}
	td := buildTaskDefinition(in)
	if td.IpcMode != in.IpcMode || td.PidMode != in.PidMode || !aws.ToBool(td.EnableFaultInjection) || td.ProxyConfiguration == nil {
		t.Errorf("members lost: %+v", td)
	}
	// The stored copy shares nothing with the input.
	in.ContainerDefinitions[0].Image = aws.String("changed")
	if got := aws.ToString(td.ContainerDefinitions[0].Image); got != "nginx:1.27" {
		t.Errorf("image after changing the input: got %s", got)
	}
}

func TestListTaskDefinitions(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	for _, f := range []string{"b", "a", "b", "c", "a", "b"} {
		must[*ecs.RegisterTaskDefinitionOutput](t)(e.ecs.RegisterTaskDefinition(ctx, fargateTD(f)))
	}
	must[*ecs.DeregisterTaskDefinitionOutput](t)(e.ecs.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("b:2")}))
	arn := func(s string) string { return "arn:aws:ecs:us-east-1:123456789012:task-definition/" + s }
	list := func(in ecs.ListTaskDefinitionsInput) []string {
		var all []string
		p := ecs.NewListTaskDefinitionsPaginator(e.ecs, &in)
		for p.HasMorePages() {
			all = append(all, must[*ecs.ListTaskDefinitionsOutput](t)(p.NextPage(ctx)).TaskDefinitionArns...)
		}
		return all
	}
	for _, tc := range []struct {
		name string
		in   ecs.ListTaskDefinitionsInput
		want []string
	}{
		{"all active", ecs.ListTaskDefinitionsInput{}, []string{arn("a:1"), arn("a:2"), arn("b:1"), arn("b:3"), arn("c:1")}},
		{"pages of 2", ecs.ListTaskDefinitionsInput{MaxResults: aws.Int32(2)}, []string{arn("a:1"), arn("a:2"), arn("b:1"), arn("b:3"), arn("c:1")}},
		{"desc pages of 2", ecs.ListTaskDefinitionsInput{MaxResults: aws.Int32(2), Sort: types.SortOrderDesc}, []string{arn("c:1"), arn("b:3"), arn("b:1"), arn("a:2"), arn("a:1")}},
		{"family", ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("b")}, []string{arn("b:1"), arn("b:3")}},
		{"family desc page 1", ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("b"), Sort: types.SortOrderDesc, MaxResults: aws.Int32(1)}, []string{arn("b:3"), arn("b:1")}},
		{"family is not a prefix", ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("a:")}, nil},
		{"inactive", ecs.ListTaskDefinitionsInput{Status: types.TaskDefinitionStatusInactive}, []string{arn("b:2")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(list(tc.in), tc.want, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
	_, err := e.ecs.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{MaxResults: aws.Int32(101)})
	wantAPIErr(t, err, "InvalidParameterException", "maxResults")
	_, err = e.ecs.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{NextToken: aws.String("garbage")})
	wantAPIErr(t, err, "InvalidParameterException", "Invalid token")
}

func TestListTaskDefinitionFamilies(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	for _, f := range []string{"web-b", "web-a", "api", "web-c"} {
		must[*ecs.RegisterTaskDefinitionOutput](t)(e.ecs.RegisterTaskDefinition(ctx, fargateTD(f)))
	}
	must[*ecs.DeregisterTaskDefinitionOutput](t)(e.ecs.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{
		TaskDefinition: aws.String("arn:aws:ecs:us-east-1:123456789012:task-definition/web-c:1")}))
	list := func(in ecs.ListTaskDefinitionFamiliesInput) []string {
		var all []string
		p := ecs.NewListTaskDefinitionFamiliesPaginator(e.ecs, &in)
		for p.HasMorePages() {
			all = append(all, must[*ecs.ListTaskDefinitionFamiliesOutput](t)(p.NextPage(ctx)).Families...)
		}
		return all
	}
	for _, tc := range []struct {
		name string
		in   ecs.ListTaskDefinitionFamiliesInput
		want []string
	}{
		{"default lists active and inactive", ecs.ListTaskDefinitionFamiliesInput{}, []string{"api", "web-a", "web-b", "web-c"}},
		{"prefix by 1", ecs.ListTaskDefinitionFamiliesInput{FamilyPrefix: aws.String("web-"), MaxResults: aws.Int32(1)}, []string{"web-a", "web-b", "web-c"}},
		{"active", ecs.ListTaskDefinitionFamiliesInput{Status: types.TaskDefinitionFamilyStatusActive}, []string{"api", "web-a", "web-b"}},
		{"inactive", ecs.ListTaskDefinitionFamiliesInput{Status: types.TaskDefinitionFamilyStatusInactive}, []string{"web-c"}},
		{"all", ecs.ListTaskDefinitionFamiliesInput{Status: types.TaskDefinitionFamilyStatusAll, MaxResults: aws.Int32(3)}, []string{"api", "web-a", "web-b", "web-c"}},
		{"prefix matches nothing", ecs.ListTaskDefinitionFamiliesInput{FamilyPrefix: aws.String("zzz")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(list(tc.in), tc.want, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

func TestDeregisterAndInactiveCannotDeploy(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	must[*ecs.CreateClusterOutput](t)(e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("c")}))
	for range 2 {
		must[*ecs.RegisterTaskDefinitionOutput](t)(e.ecs.RegisterTaskDefinition(ctx, fargateTD("web")))
	}
	e.clock.Advance(time.Second)
	out := must[*ecs.DeregisterTaskDefinitionOutput](t)(e.ecs.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("web:2")}))
	if got := out.TaskDefinition.Status; got != types.TaskDefinitionStatusInactive {
		t.Errorf("status: got %s", got)
	}
	if got := out.TaskDefinition.DeregisteredAt; got == nil || !got.Equal(t0.Add(time.Second)) {
		t.Errorf("deregisteredAt: got %v", got)
	}
	// The family name now resolves to the newest ACTIVE revision.
	d := must[*ecs.DescribeTaskDefinitionOutput](t)(e.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web")}))
	if got := d.TaskDefinition.Revision; got != 1 {
		t.Errorf("latest ACTIVE of web: got revision %d, want 1", got)
	}
	// INACTIVE revisions can still be described...
	d = must[*ecs.DescribeTaskDefinitionOutput](t)(e.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web:2")}))
	if got := d.TaskDefinition.Status; got != types.TaskDefinitionStatusInactive {
		t.Errorf("web:2 status: got %s", got)
	}
	// ...but not deployed.
	_, err := e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("s"),
		TaskDefinition: aws.String("web:2"), LaunchType: types.LaunchTypeFargate, NetworkConfiguration: demoNetwork})
	wantAPIErr(t, err, "ClientException", "TaskDefinition is inactive")
	must[*ecs.CreateServiceOutput](t)(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("s"),
		TaskDefinition: aws.String("web:1"), LaunchType: types.LaunchTypeFargate, NetworkConfiguration: demoNetwork}))
	_, err = e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s"), TaskDefinition: aws.String("web:2")})
	wantAPIErr(t, err, "ClientException", "TaskDefinition is inactive")
	_, err = e.ecs.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("web")})
	wantAPIErr(t, err, "ClientException", "Revision is missing.")
}

func TestTagsOverSDK(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	must[*ecs.CreateClusterOutput](t)(e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("c")}))
	td := fargateTD("web")
	td.Tags = []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}}
	tdARN := aws.ToString(must[*ecs.RegisterTaskDefinitionOutput](t)(e.ecs.RegisterTaskDefinition(ctx, td)).TaskDefinition.TaskDefinitionArn)
	svc := must[*ecs.CreateServiceOutput](t)(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("s"),
		TaskDefinition: aws.String(tdARN), LaunchType: types.LaunchTypeFargate, NetworkConfiguration: demoNetwork}))
	svcARN := aws.ToString(svc.Service.ServiceArn)
	if want := "arn:aws:ecs:us-east-1:123456789012:service/c/s"; svcARN != want {
		t.Errorf("service ARN: got %s, want %s", svcARN, want)
	}
	for _, arn := range []string{tdARN, svcARN, "arn:aws:ecs:us-east-1:123456789012:cluster/c"} {
		t.Run(arn[strings.LastIndex(arn, ":")+1:], func(t *testing.T) {
			must[*ecs.TagResourceOutput](t)(e.ecs.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{
				{Key: aws.String("a"), Value: aws.String("2")}, {Key: aws.String("b"), Value: aws.String("x y/z=+-@.:_")},
			}}))
			must[*ecs.UntagResourceOutput](t)(e.ecs.UntagResource(ctx, &ecs.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"b", "absent"}}))
			must[*ecs.TagResourceOutput](t)(e.ecs.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{{Key: aws.String("c"), Value: aws.String("")}}}))
			got := must[*ecs.ListTagsForResourceOutput](t)(e.ecs.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})).Tags
			want := []types.Tag{{Key: aws.String("a"), Value: aws.String("2")}, {Key: aws.String("c"), Value: aws.String("")}}
			if diff := cmp.Diff(got, want, cmpopts.IgnoreUnexported(types.Tag{})); diff != "" {
				t.Errorf("tags (-got +want):\n%s", diff)
			}
		})
	}
	// DescribeTaskDefinition include=TAGS sees TagResource's changes.
	d := must[*ecs.DescribeTaskDefinitionOutput](t)(e.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(tdARN), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}}))
	if got := len(d.Tags); got != 2 {
		t.Errorf("described tags: got %d, want 2", got)
	}

	fifty := make([]types.Tag, 49)
	for i := range fifty {
		fifty[i] = types.Tag{Key: aws.String(fmt.Sprintf("k%02d", i)), Value: aws.String("v")}
	}
	for _, tc := range []struct {
		name, arn string
		tags      []types.Tag
		code, msg string
	}{
		{"51 tags", tdARN, fifty, "InvalidParameterException", "at most 50 tags"},
		{"aws prefix", tdARN, []types.Tag{{Key: aws.String("AWS:x"), Value: aws.String("v")}}, "InvalidParameterException", "reserved"},
		{"bad char", tdARN, []types.Tag{{Key: aws.String("a*b"), Value: aws.String("v")}}, "InvalidParameterException", "regular expression"},
		{"long key", tdARN, []types.Tag{{Key: aws.String(strings.Repeat("k", 129)), Value: aws.String("v")}}, "InvalidParameterException", "length"},
		{"long value", tdARN, []types.Tag{{Key: aws.String("k"), Value: aws.String(strings.Repeat("v", 257))}}, "InvalidParameterException", "length"},
		{"missing revision", "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7", []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}, "ResourceNotFoundException", "wasn't found"},
		{"missing cluster", "arn:aws:ecs:us-east-1:123456789012:cluster/zz", []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}, "ClusterNotFoundException", "Cluster not found."},
		{"not an ARN", "web:1", []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}, "InvalidParameterException", "ARN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.ecs.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(tc.arn), Tags: tc.tags})
			wantAPIErr(t, err, tc.code, tc.msg)
		})
	}
	_, err := e.ecs.UntagResource(ctx, &ecs.UntagResourceInput{ResourceArn: aws.String(tdARN), TagKeys: []string{"aws:cloudformation:stack-name"}})
	wantAPIErr(t, err, "InvalidParameterException", "reserved")
	td2 := fargateTD("web")
	td2.Tags = []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("1")}}
	_, err = e.ecs.RegisterTaskDefinition(ctx, td2)
	wantAPIErr(t, err, "InvalidParameterException", "reserved")
}
