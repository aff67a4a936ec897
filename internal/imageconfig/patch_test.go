package imageconfig

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// What the resolver reads drives the patch: the image's command is written
// out, a distroless image gets the agent's own shell, a failed lookup is a
// refusal unless the task definition states the command, and a moved tag
// is a new spec.
func TestResolvedImagesDriveThePatch(t *testing.T) {
	reg := newTestRegistry(t)
	clk := newClock()
	r := newResolver(t, Options{DetectShell: true, TagTTL: time.Minute, Now: clk.Now})
	distroless := image(t, v1.Config{Entrypoint: []string{"/server"}, Cmd: []string{"--port", "8080"}}, "amd64",
		layer(t, file{path: "server"}, file{path: "etc/passwd"}))
	reg.push(t, reg.ref("api:prod"), distroless)
	prof := patch.Profile{TokenSecretArn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:lacework-AbCdEf"}
	taskDef := func(c types.ContainerDefinition) *types.TaskDefinition {
		c.Essential = aws.Bool(true)
		return &types.TaskDefinition{
			Family: aws.String("api"), Revision: 3,
			RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
			ExecutionRoleArn:        aws.String("arn:aws:iam::123456789012:role/exec"),
			ContainerDefinitions:    []types.ContainerDefinition{c},
		}
	}
	instrument := func(td *types.TaskDefinition) (*patch.Result, error) {
		images, _ := r.Images(context.Background(), td)
		return patch.Instrument(td, nil, prof, images, patch.Options{})
	}

	res, err := instrument(taskDef(*container("api", reg.ref("api:prod"))))
	if err != nil {
		t.Fatal(err)
	}
	var app types.ContainerDefinition
	for _, c := range res.Input.ContainerDefinitions {
		if aws.ToString(c.Name) == "api" {
			app = c
		}
	}
	wantEntry := []string{"/var/lib/lacework-backup/distroless/bin/sh", "/var/lib/lacework-backup/lacework-sidecar.sh", "/server"}
	if d := cmp.Diff(app.EntryPoint, wantEntry); d != "" {
		t.Errorf("entryPoint (-got +want):\n%s", d)
	}
	if d := cmp.Diff(app.Command, []string{"--port", "8080"}); d != "" {
		t.Errorf("command (-got +want):\n%s", d)
	}

	// The tag moves to a new image: past the TTL, a new spec.
	reg.push(t, reg.ref("api:prod"), image(t, v1.Config{Entrypoint: []string{"/server"}, Cmd: []string{"--port", "9090"}}, "amd64",
		layer(t, file{path: "server"}, file{path: "etc/passwd"})))
	clk.Advance(2 * time.Minute)
	moved, err := instrument(taskDef(*container("api", reg.ref("api:prod"))))
	if err != nil {
		t.Fatal(err)
	}
	if moved.Spec == res.Spec {
		t.Errorf("spec %s unchanged after the tag moved to a new image", moved.Spec)
	}

	// A lookup that fails: refused, nothing guessed.
	_, err = instrument(taskDef(*container("api", reg.ref("api:gone"))))
	var refusal *patch.Refusal
	if !errors.As(err, &refusal) || !refusal.Has(patch.CodeUnknownCommand) {
		t.Errorf("err = %v, want a refusal with %s", err, patch.CodeUnknownCommand)
	}
	// ... unless the task definition states the whole command.
	stated := *container("api", reg.ref("api:gone"))
	stated.EntryPoint, stated.Command = []string{"/server"}, []string{"--port", "8080"}
	if _, err := instrument(taskDef(stated)); err != nil {
		t.Errorf("a task definition that states its command: %v", err)
	}
}
