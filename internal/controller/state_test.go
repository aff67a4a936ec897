package controller

import (
	"bytes"
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// A source's content, kept packed in the cache, comes back as
// DescribeTaskDefinition returned it, less the fields ECS adds on its own,
// and Instrument makes the same twin from either.
func TestSourceContentKeptWhole(t *testing.T) {
	w := newWorld(t)
	arn := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true", "team": "payments"},
		func(c *types.ContainerDefinition) {
			c.Environment = []types.KeyValuePair{{Name: aws.String("MODE"), Value: aws.String("prod")}, {Name: aws.String("EMPTY"), Value: aws.String("")}}
			c.Secrets = []types.Secret{{Name: aws.String("DB"), ValueFrom: aws.String("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf")}}
			c.DockerLabels = map[string]string{"a": "b"}
			c.Ulimits = []types.Ulimit{{Name: types.UlimitNameNofile, SoftLimit: 1024, HardLimit: 4096}}
		})
	out, err := w.ecs.DescribeTaskDefinition(context.Background(), &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String(arn), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
	})
	if err != nil {
		t.Fatal(err)
	}
	tags := cloneTags(out.Tags)
	rev, err := newRevision(out.TaskDefinition, tags, patch.Classify(out.TaskDefinition, tags, nil, patch.Options{TagPrefix: "ecs-sidecar/"}))
	if err != nil {
		t.Fatal(err)
	}
	if rev.arn != arn || rev.family != "web" || rev.number != 1 || rev.status != types.TaskDefinitionStatusActive {
		t.Fatalf("revision = %q %q %d %q", rev.arn, rev.family, rev.number, rev.status)
	}
	got, err := rev.content()
	if err != nil {
		t.Fatal(err)
	}
	want := *out.TaskDefinition
	want.RequiresAttributes, want.Compatibilities, want.RegisteredAt, want.RegisteredBy = nil, nil, nil, nil
	if diff := cmp.Diff(got, &want, cmpopts.IgnoreUnexported(types.TaskDefinition{}, types.ContainerDefinition{},
		types.KeyValuePair{}, types.Secret{}, types.Ulimit{}, types.PortMapping{}, types.MountPoint{}, types.VolumeFrom{})); diff != "" {
		t.Errorf("content (-got +want):\n%s", diff)
	}

	profile := patch.Profile{Name: "lacework", TokenSecretArn: tokenArn}.WithDefaults()
	fromSDK, err := patch.Instrument(out.TaskDefinition, tags, profile, nil, patch.Options{TagPrefix: "ecs-sidecar/"})
	if err != nil {
		t.Fatal(err)
	}
	fromCache, err := patch.Instrument(got, rev.tags, profile, nil, patch.Options{TagPrefix: "ecs-sidecar/"})
	if err != nil {
		t.Fatal(err)
	}
	if fromSDK.Spec != fromCache.Spec {
		t.Errorf("spec from the cache %s, from the SDK %s", fromCache.Spec, fromSDK.Spec)
	}
	if diff := cmp.Diff(fromCache.Input, fromSDK.Input, cmpopts.IgnoreUnexported(ecs.RegisterTaskDefinitionInput{}, types.ContainerDefinition{},
		types.KeyValuePair{}, types.Secret{}, types.Ulimit{}, types.PortMapping{}, types.MountPoint{}, types.VolumeFrom{},
		types.Tag{}, types.Volume{}, types.LogConfiguration{}, types.HealthCheck{}, types.LinuxParameters{}, types.ContainerDependency{})); diff != "" {
		t.Errorf("twin from the cache differs (-cache +SDK):\n%s", diff)
	}

	// A twin keeps no content.
	twin := &types.TaskDefinition{TaskDefinitionArn: aws.String(arn + "0"), Family: aws.String("web"), Revision: 10}
	trev, err := newRevision(twin, nil, patch.Class{Kind: patch.KindTwin, SourceRevision: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trev.content(); err == nil {
		t.Error("a twin's content was kept")
	}
}

func TestCloneTags(t *testing.T) {
	in := []types.Tag{
		{Key: aws.String("ecs-sidecar/inject"), Value: aws.String("true")},
		{Key: aws.String("empty"), Value: aws.String("")},
		{Key: aws.String("novalue")},
		{Value: aws.String("nokey")},
	}
	got := cloneTags(in)
	if diff := cmp.Diff(got, in, cmpopts.IgnoreUnexported(types.Tag{})); diff != "" {
		t.Errorf("cloneTags (-got +want):\n%s", diff)
	}
	*in[0].Value = "changed"
	if aws.ToString(got[0].Value) != "true" {
		t.Error("the copy shares the original's pointers")
	}
	if cloneTags(nil) != nil {
		t.Error("cloneTags(nil) is not nil")
	}
}

func TestPackRoundTrip(t *testing.T) {
	big := make([]byte, 200_000)
	for i := range big {
		big[i] = byte(i*7919 + i/13)
	}
	for _, in := range [][]byte{{}, []byte(`{}`), packDict, big} {
		p, err := pack(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := unpack(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, in) {
			t.Errorf("unpack(pack(%d bytes)) = %d bytes, not the same", len(in), len(out))
		}
	}
	if _, err := unpack([]byte("not deflate")); err == nil {
		t.Error("unpack of garbage: no error")
	}
}
