package cfnmacro

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/controller"
	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// literalTemplate is a template whose task definition holds no intrinsic
// function: the macro and the continuous reconciler see the same input.
func literalTemplate() map[string]any {
	return map[string]any{
		"AWSTemplateFormatVersion": "2010-09-09",
		"Transform":                "EcsSidecar",
		"Resources": map[string]any{
			"WebTaskDefinition": map[string]any{
				"Type": "AWS::ECS::TaskDefinition",
				"Properties": map[string]any{
					"Family": "web", "Cpu": "256", "Memory": "512", "NetworkMode": "awsvpc",
					"RequiresCompatibilities": []any{"FARGATE"},
					"ExecutionRoleArn":        "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
					"ContainerDefinitions": []any{map[string]any{
						"Name": "app", "Image": "nginx:1.27", "Essential": true,
						"EntryPoint":   []any{"/docker-entrypoint.sh"},
						"Command":      []any{"nginx", "-g", "daemon off;"},
						"PortMappings": []any{map[string]any{"ContainerPort": 80}},
					}},
					"Tags": []any{map[string]any{"Key": "ecs-sidecar/inject", "Value": "true"}},
				},
			},
		},
	}
}

// macroInput decodes the macro's output resource as the register call
// CloudFormation would make.
func macroInput(t *testing.T, out map[string]any) *ecs.RegisterTaskDefinitionInput {
	t.Helper()
	props := out["Resources"].(map[string]any)["WebTaskDefinition"].(map[string]any)["Properties"].(map[string]any)
	var in ecs.RegisterTaskDefinitionInput
	dec := decoder{ph: newPlaceholders(nil)}
	if err := dec.value(reflect.ValueOf(&in).Elem(), props, "Properties"); err != nil {
		t.Fatal(err)
	}
	return &in
}

// TestMacroTwinEqualsRunsTwin (issue 19): for the same task definition,
// the macro's revision and the twin the continuous reconciler registers
// have the same containers and volumes. By design they differ in the
// sidecar's source label (0: there is no separate source revision; N for
// the twin of revision N) and in the tags (the macro's
// ecs-sidecar/deploy-time, the twin's ecs-sidecar/source and spec).
func TestMacroTwinEqualsRunsTwin(t *testing.T) {
	cfg := testConfig(t)
	out, rep, err := Transform(literalTemplate(), nil, Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Resources) != 1 || rep.Resources[0].Outcome != Instrumented {
		t.Fatalf("report %+v: want the task definition instrumented", rep)
	}
	macro := macroInput(t, out)

	// What `run` does: the source as ECS describes it (revision 1), the
	// profile its tag picks, patch.Instrument with the source's number.
	var srcIn ecs.RegisterTaskDefinitionInput
	dec := decoder{ph: newPlaceholders(nil)}
	src := literalTemplate()["Resources"].(map[string]any)["WebTaskDefinition"].(map[string]any)["Properties"].(map[string]any)
	if err := dec.value(reflect.ValueOf(&srcIn).Elem(), src, "Properties"); err != nil {
		t.Fatal(err)
	}
	td := taskDefinition(&srcIn)
	td.Revision = 1
	td.TaskDefinitionArn = aws.String("arn:aws:ecs:us-east-1:123456789012:task-definition/web:1")
	prof, ok := cfg.Profile(cfg.DefaultProfile)
	if !ok {
		t.Fatalf("no profile %q", cfg.DefaultProfile)
	}
	res, err := patch.Instrument(td, srcIn.Tags, prof, nil, patch.Options{TagPrefix: cfg.TagPrefix, SourceRevision: 1})
	if err != nil {
		t.Fatal(err)
	}
	run := res.Input

	sourceLabel := func(cs []types.ContainerDefinition) []types.ContainerDefinition {
		out := make([]types.ContainerDefinition, len(cs))
		for i, c := range cs {
			out[i] = c
			if len(c.DockerLabels) > 0 {
				labels := map[string]string{}
				for k, v := range c.DockerLabels {
					if !strings.HasSuffix(k, "source") {
						labels[k] = v
					}
				}
				out[i].DockerLabels = labels
			}
		}
		return out
	}
	// As JSON: the SDK types' exported fields, what ECS is sent.
	asJSON := func(v any) any {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var out any
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if diff := cmp.Diff(asJSON(sourceLabel(run.ContainerDefinitions)), asJSON(sourceLabel(macro.ContainerDefinitions))); diff != "" {
		t.Errorf("containers: run's twin (-) and the macro's (+) differ beyond the source label:\n%s", diff)
	}
	if diff := cmp.Diff(asJSON(run.Volumes), asJSON(macro.Volumes)); diff != "" {
		t.Errorf("volumes: run's twin (-) and the macro's (+):\n%s", diff)
	}
	// And the source label is the one difference in the containers.
	if diff := cmp.Diff(asJSON(run.ContainerDefinitions), asJSON(macro.ContainerDefinitions)); diff == "" {
		t.Error("the source labels are equal: the macro's should say 0, run's the source revision (1)")
	}
}

// TestMacroRevisionIsCoveredByTheReconciler: a revision the macro made,
// registered (as CloudFormation would) on the simulated account over HTTP
// and run by a service, is classified covered by the controller: no twin
// is registered, the service is not moved, its coverage is covered_manual.
func TestMacroRevisionIsCoveredByTheReconciler(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	out, _, err := Transform(literalTemplate(), nil, Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	in := macroInput(t, out)

	sim := awssim.New(awssim.Options{})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	client := ecs.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")},
		func(o *ecs.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	if _, err := client.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("prod")}); err != nil {
		t.Fatal(err)
	}
	reg, err := client.RegisterTaskDefinition(ctx, in)
	if err != nil {
		t.Fatalf("register the macro's revision: %v", err)
	}
	if _, err := client.CreateService(ctx, &ecs.CreateServiceInput{
		Cluster: aws.String("prod"), ServiceName: aws.String("web"), TaskDefinition: reg.TaskDefinition.TaskDefinitionArn,
		DesiredCount: aws.Int32(1), LaunchType: types.LaunchTypeFargate,
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}},
	}); err != nil {
		t.Fatal(err)
	}
	ctl, err := controller.New(controller.Options{ECS: client, TagPrefix: cfg.TagPrefix, Profile: cfg.Profile, DefaultProfile: cfg.DefaultProfile})
	if err != nil {
		t.Fatal(err)
	}
	if err := ctl.SweepServices(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := ctl.Reconcile(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Actions) != 0 {
		t.Errorf("the reconciler acted on the macro's revision: %+v", res.Actions)
	}
	n := 0
	ctl.EachCoverage(func(s controller.ServiceStatus) {
		n++
		if s.State != controller.StateCoveredManual {
			t.Errorf("%s: coverage %q, want %q (instrumented at deploy time)", s.Service, s.State, controller.StateCoveredManual)
		}
	})
	if n != 1 {
		t.Errorf("%d services in the coverage, want 1", n)
	}
}
