package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ecs-sidecar/reconciler/internal/awsjson"
	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/config"
)

// startRegistry serves go-containerregistry's in-memory registry on
// 127.0.0.1 and returns its host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// pushImage pushes an image whose config declares entrypoint, cmd and user
// (and no layers) as ref.
func pushImage(t *testing.T, ref string, entrypoint, cmd []string, user string) {
	t.Helper()
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: "amd64", OS: "linux",
		Config: v1.Config{Entrypoint: entrypoint, Cmd: cmd, User: user},
	})
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// renderInput is a describe-task-definition output of one essential
// container that states neither entryPoint nor command.
func renderInput(t *testing.T, image string) string {
	t.Helper()
	td := awssim.DemoTaskDefinition("web", image, nil)
	out := ecs.DescribeTaskDefinitionOutput{TaskDefinition: &types.TaskDefinition{
		Family: td.Family, Revision: 3, ContainerDefinitions: td.ContainerDefinitions,
		RequiresCompatibilities: td.RequiresCompatibilities, NetworkMode: td.NetworkMode,
		Cpu: td.Cpu, Memory: td.Memory, ExecutionRoleArn: td.ExecutionRoleArn,
	}}
	out.TaskDefinition.ContainerDefinitions[0].EntryPoint = nil
	out.TaskDefinition.ContainerDefinitions[0].Command = nil
	b, err := awsjson.Codec{Service: awsjson.ECS}.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "td.json")
	writeFile(t, path, string(b))
	return path
}

// renderedApp decodes render's output and returns the app container.
func renderedApp(t *testing.T, stdout string) types.ContainerDefinition {
	t.Helper()
	var in ecs.RegisterTaskDefinitionInput
	if err := (awsjson.Codec{Service: awsjson.ECS}).Unmarshal([]byte(stdout), &in); err != nil {
		t.Fatalf("render output: %v\n%s", err, stdout)
	}
	for _, c := range in.ContainerDefinitions {
		if aws.ToString(c.Name) == "app" {
			return c
		}
	}
	t.Fatalf("no app container in\n%s", stdout)
	return types.ContainerDefinition{}
}

// The wrapper replaces the image's ENTRYPOINT and, by Docker's rules, drops
// its CMD: render --resolve-images reads both from the registry and puts
// them behind the wrapper, so the application starts as before.
func TestRenderResolveImages(t *testing.T) {
	host := startRegistry(t)
	pushImage(t, host+"/shop/web:1.0", []string{"/usr/bin/tini", "--"}, []string{"web", "--port=8080"}, "")

	code, stdout, stderr := runRender(t, renderInput(t, host+"/shop/web:1.0"),
		"--resolve-images", "--token-secret-arn", testSecretArn)
	if code != exitOK {
		t.Fatalf("render = %d, stderr:\n%s", code, stderr)
	}
	app := renderedApp(t, stdout)
	want := []string{"/usr/bin/tini", "--", "web", "--port=8080"}
	got := append(slices.Clone(app.EntryPoint), app.Command...)
	if !slices.Equal(got[len(got)-len(want):], want) || !strings.Contains(strings.Join(app.EntryPoint, " "), "lacework") {
		t.Errorf("app runs %q; want the wrapper, then %q", got, want)
	}

	// Without the registry's answer the command is unknown: refused, with
	// the lookup's reason, and nothing written.
	code, stdout, stderr = runRender(t, renderInput(t, host+"/shop/missing:1.0"),
		"--resolve-images", "--token-secret-arn", testSecretArn)
	if code != exitFail || stdout != "" || !strings.Contains(stderr, "image: ") || !strings.Contains(stderr, "refused: ") {
		t.Errorf("missing image: render = %d, stdout %q, stderr %q; want 1, no output, the lookup error and the refusal", code, stdout, stderr)
	}

	code, _, stderr = runRender(t, renderInput(t, host+"/shop/web:1.0"), "--resolve-images", "--image-cmd", `["x"]`)
	if code != exitUsage || !strings.Contains(stderr, "cannot be combined") {
		t.Errorf("--resolve-images with --image-cmd = %d, %q; want 2 and why", code, stderr)
	}
}

// `reconciler run` reads image configs by default: a family whose task
// definition states no command is instrumented from its image's config,
// and its service moves to the twin.
func TestRunInstrumentsFromTheImageConfig(t *testing.T) {
	host := startRegistry(t)
	pushImage(t, host+"/shop/api:2", []string{"/api"}, []string{"serve"}, "")

	sim := awssim.New(awssim.Options{})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	ctx := t.Context()
	e := sim.ECS()
	if _, err := e.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("prod")}); err != nil {
		t.Fatal(err)
	}
	in := awssim.DemoTaskDefinition("api", host+"/shop/api:2", []types.Tag{{Key: aws.String("ecs-sidecar/inject"), Value: aws.String("true")}})
	in.ContainerDefinitions[0].EntryPoint, in.ContainerDefinitions[0].Command = nil, nil
	if _, err := e.RegisterTaskDefinition(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateService(ctx, &ecs.CreateServiceInput{
		Cluster: aws.String("prod"), ServiceName: aws.String("api"), TaskDefinition: aws.String("api:1"), DesiredCount: aws.Int32(1),
	}); err != nil {
		t.Fatal(err)
	}

	cfg := config.Default()
	cfg.AWS.Region, cfg.AWS.Endpoint = "us-east-1", srv.URL
	cfg.Metrics.Listen = "127.0.0.1:0"
	p := cfg.Profiles[config.BuiltinProfile]
	p.TokenSecretArn = testSecretArn
	cfg.Profiles[config.BuiltinProfile] = p
	if !cfg.Images.Resolve {
		t.Fatal("images.resolve is off by default; want on")
	}
	var logs bytes.Buffer
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- runReconciler(runCtx, slog.New(slog.NewTextHandler(&logs, nil)), cfg,
			&aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, observability{})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	}()

	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		out, err := e.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"api"}})
		if err != nil {
			t.Fatal(err)
		}
		if arn := aws.ToString(out.Services[0].TaskDefinition); !strings.HasSuffix(arn, "/api:1") {
			td, err := e.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(arn)})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range td.TaskDefinition.ContainerDefinitions {
				if aws.ToString(c.Name) != "app" {
					continue
				}
				got := append(slices.Clone(c.EntryPoint), c.Command...)
				if len(got) < 2 || !slices.Equal(got[len(got)-2:], []string{"/api", "serve"}) {
					b, _ := json.Marshal(c)
					t.Errorf("twin's app container runs %q; want the wrapper, then /api serve: %s", got, b)
				}
				return
			}
			t.Fatalf("twin %s has no app container", arn)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the service was not moved to a twin within 30s")
}
