package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/controller"
	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// planWorld is an embedded AWS on 127.0.0.1 with one opted-in family whose
// container states its command, one service on it, and a config file.
func planWorld(t *testing.T) (sim *awssim.Sim, configPath string) {
	t.Helper()
	sim = awssim.New(awssim.Options{})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	ctx := context.Background()
	e := sim.ECS()
	if _, err := e.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("prod")}); err != nil {
		t.Fatal(err)
	}
	in := awssim.DemoTaskDefinition("web", "nginx:1.27", []types.Tag{{Key: aws.String("ecs-sidecar/inject"), Value: aws.String("true")}})
	in.ContainerDefinitions[0].EntryPoint = []string{"/docker-entrypoint.sh"}
	in.ContainerDefinitions[0].Command = []string{"nginx", "-g", "daemon off;"}
	// An X-Ray daemon beside the app, as in AWS's X-Ray on ECS examples:
	// an agent, left alone.
	in.ContainerDefinitions = append(in.ContainerDefinitions, types.ContainerDefinition{
		Name: aws.String("xray"), Image: aws.String("public.ecr.aws/xray/aws-xray-daemon:3.3.7"), Essential: aws.Bool(true),
	})
	if _, err := e.RegisterTaskDefinition(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateService(ctx, &ecs.CreateServiceInput{
		Cluster: aws.String("prod"), ServiceName: aws.String("web"), TaskDefinition: aws.String("web:1"), DesiredCount: aws.Int32(1),
	}); err != nil {
		t.Fatal(err)
	}
	configPath = filepath.Join(t.TempDir(), "config.yaml")
	doc := "aws: {region: us-east-1, endpoint: '" + srv.URL + "'}\n" +
		"images: {resolve: false}\n" + // nginx:1.27 is not on loopback
		"profiles: {lacework: {tokenSecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:t-AbCdEf'}}\n"
	if err := os.WriteFile(configPath, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	return sim, configPath
}

func writeCalls(sim *awssim.Sim) int {
	n := 0
	for _, e := range sim.Journal() {
		if e.Call != nil {
			n++
		}
	}
	return n
}

func TestPlanShowsChangesAndWritesNothing(t *testing.T) {
	sim, path := planWorld(t)
	before := writeCalls(sim)
	code, stdout, stderr := runMain(t, "", "plan", "--config", path)
	if code != planChanges {
		t.Fatalf("plan = %d, want %d (changes); stderr:\n%s", code, planChanges, stderr)
	}
	for _, want := range []string{"web", "instrument", "opted_in_by_tag", "register_twin", "update_service", "prod/web: web:1 -> (twin of web:1)", "left alone xray=agent_image", "Nothing was written"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("plan output lacks %q:\n%s", want, stdout)
		}
	}
	if after := writeCalls(sim); after != before {
		t.Errorf("plan made %d write calls", after-before)
	}

	code, stdout, _ = runMain(t, "", "plan", "--config", path, "--output", "json")
	if code != planChanges {
		t.Fatalf("plan --output json = %d, want %d", code, planChanges)
	}
	var plans []controller.FamilyPlan
	if err := json.Unmarshal([]byte(stdout), &plans); err != nil {
		t.Fatalf("plan --output json is not JSON: %v\n%s", err, stdout)
	}
	if len(plans) != 1 || plans[0].Family != "web" || len(plans[0].Actions) != 2 {
		t.Errorf("plan JSON = %+v, want web with two actions", plans)
	}
}

func TestPlanAfterApplyHasNoChanges(t *testing.T) {
	sim, path := planWorld(t)
	if code, _, stderr := runMain(t, "", "plan", "--config", path); code != planChanges {
		t.Fatalf("first plan = %d, want changes; %s", code, stderr)
	}
	// Apply it with an enforcing controller over the Go API.
	ctl, err := controller.New(controller.Options{ECS: sim.ECS(), Profile: func(string) (patch.Profile, bool) {
		return patch.Profile{TokenSecretArn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:t-AbCdEf"}.WithDefaults(), true
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ctl.SweepServices(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := ctl.Reconcile(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runMain(t, "", "plan", "--config", path)
	if code != planNoChanges {
		t.Fatalf("plan after apply = %d, want %d; stdout:\n%s\nstderr:\n%s", code, planNoChanges, stdout, stderr)
	}
}

func TestPlanUsageErrorsExit1(t *testing.T) {
	for _, args := range [][]string{{"plan", "--bogus"}, {"plan", "--output", "xml"}, {"plan", "stray"}} {
		if code, _, _ := runMain(t, "", args...); code != planError {
			t.Errorf("%v = %d, want %d", args, code, planError)
		}
	}
}
