package awssim

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"
)

// t0 is the fake clock's start in every test.
var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// env is a simulator served on loopback with real SDK clients pointed at it.
type env struct {
	sim   *Sim
	clock *FakeClock
	url   string
	ecs   *ecs.Client
	sm    *secretsmanager.Client
	ecr   *ecr.Client
	sqs   *sqs.Client
	eb    *eventbridge.Client
}

func awsConfig() aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}
}

// newEnv starts a simulator with a fake clock and the given options on an
// httptest server (127.0.0.1), closed at the end of the test.
func newEnv(t testing.TB, o Options) *env {
	t.Helper()
	clock := NewFakeClock(t0)
	o.Clock = clock
	s := New(o)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return newEnvFor(s, clock, srv.URL)
}

func newEnvFor(s *Sim, clock *FakeClock, url string) *env {
	cfg := awsConfig()
	return &env{
		sim: s, clock: clock, url: url,
		ecs: ecs.NewFromConfig(cfg, func(o *ecs.Options) { o.BaseEndpoint = aws.String(url) }),
		sm:  secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(url) }),
		ecr: ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.BaseEndpoint = aws.String(url) }),
		sqs: sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(url) }),
		eb:  eventbridge.NewFromConfig(cfg, func(o *eventbridge.Options) { o.BaseEndpoint = aws.String(url) }),
	}
}

// apiErr returns the AWS error code and message of err, failing the test if
// err is not an AWS API error.
func apiErr(t testing.TB, err error) (code, msg string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an AWS API error", err, err)
	}
	return ae.ErrorCode(), ae.ErrorMessage()
}

// wantAPIErr fails unless err is an API error with the code and a message
// containing msgPart.
func wantAPIErr(t testing.TB, err error, code, msgPart string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s (%q)", code, msgPart)
	}
	gotCode, gotMsg := apiErr(t, err)
	if gotCode != code || !strings.Contains(gotMsg, msgPart) {
		t.Fatalf("got %s: %q, want %s containing %q", gotCode, gotMsg, code, msgPart)
	}
}

func must[T any](t testing.TB) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// fargateTD is a minimal valid Fargate task definition input.
func fargateTD(family string, containers ...types.ContainerDefinition) *ecs.RegisterTaskDefinitionInput {
	if len(containers) == 0 {
		containers = []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("nginx:1.27"), Essential: aws.Bool(true)}}
	}
	return &ecs.RegisterTaskDefinitionInput{
		Family:                  aws.String(family),
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		NetworkMode:             types.NetworkModeAwsvpc,
		Cpu:                     aws.String("256"),
		Memory:                  aws.String("512"),
		ContainerDefinitions:    containers,
	}
}

var demoNetwork = &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
	Subnets: []string{"subnet-1"}, SecurityGroups: []string{"sg-1"},
}}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
