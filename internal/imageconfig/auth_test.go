package imageconfig

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/cloud"
)

// awsWorld is awssim over HTTP with real SDK clients, counting calls.
type awsWorld struct {
	sim     *awssim.Sim
	clock   *awssim.FakeClock
	ecr     *ecr.Client
	secrets *secretsmanager.Client

	mu    sync.Mutex
	calls map[string]int
}

func newAWSWorld(t *testing.T, ecrPassword string) *awsWorld {
	t.Helper()
	w := &awsWorld{clock: awssim.NewFakeClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)), calls: map[string]int{}}
	w.sim = awssim.New(awssim.Options{Region: "us-east-1", Clock: w.clock, ECRPassword: ecrPassword})
	srv := httptest.NewServer(w.sim.Handler())
	t.Cleanup(srv.Close)
	cfg, _, err := cloud.New(context.Background(), cloud.Options{
		Region: "us-east-1", Endpoint: srv.URL, MaxAttempts: 1,
		StaticCredentials: &aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"},
		Observe: func(service, op, code string) {
			w.mu.Lock()
			w.calls[op]++
			w.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	w.ecr = ecr.NewFromConfig(cfg)
	w.secrets = secretsmanager.NewFromConfig(cfg)
	return w
}

func (w *awsWorld) count(op string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls[op]
}

func (w *awsWorld) secret(t *testing.T, name, value string) string {
	t.Helper()
	out, err := w.secrets.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ARN)
}

func withCreds(c *types.ContainerDefinition, secretArn string) *types.ContainerDefinition {
	c.RepositoryCredentials = &types.RepositoryCredentials{CredentialsParameter: aws.String(secretArn)}
	return c
}

func TestPrivateRegistryWithSecret(t *testing.T) {
	const password = "s3cret-Pa55word"
	w := newAWSWorld(t, "unused")
	reg := newTestRegistry(t)
	reg.requireAuth("ci-bot", password)
	img := image(t, v1.Config{Entrypoint: []string{"/private"}}, "amd64")
	reg.push(t, reg.ref("team/app:1"), img)
	good := w.secret(t, "registry/good", `{"username":"ci-bot","password":"`+password+`"}`)
	wrong := w.secret(t, "registry/wrong", `{"username":"ci-bot","password":"not-the-Pa55word"}`)
	malformed := w.secret(t, "registry/malformed", `ci-bot:`+password)

	var logs bytes.Buffer
	r := newResolver(t, Options{Secrets: w.secrets, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx := context.Background()

	got, err := r.Resolve(ctx, withCreds(container("app", reg.ref("team/app:1")), good), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Entrypoint: []string{"/private"}, Digest: digestOf(t, img), Platform: "linux/amd64",
		Source: "registry " + reg.ref("team/app:1") + " (secret)"}
	if d := cmp.Diff(got, want); d != "" {
		t.Errorf("config (-got +want):\n%s", d)
	}
	if n := w.count("GetSecretValue"); n != 1 {
		t.Errorf("%d GetSecretValue calls, want 1", n)
	}

	// Failures, each after the good credentials read the same image: the
	// cache must not answer a container whose credentials fail.
	for _, tc := range []struct {
		name     string
		c        *types.ContainerDefinition
		want     Code
		mustSay  string
		mustHide string
	}{
		{"wrong credentials", withCreds(container("app", reg.ref("team/app:1")), wrong), CodeAuth, "", "not-the-Pa55word"},
		{"no credentials", container("app", reg.ref("team/app:1")), CodeAuth, "", ""},
		{"missing secret", withCreds(container("app", reg.ref("team/app:1")), "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf"), CodeCredentials, "nope", ""},
		{"malformed secret", withCreds(container("app", reg.ref("team/app:1")), malformed), CodeCredentials, "username", password},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Resolve(ctx, tc.c, nil)
			if got := CodeOf(err); got != tc.want {
				t.Fatalf("code = %q, want %q (err %v)", got, tc.want, err)
			}
			if !strings.Contains(err.Error(), tc.mustSay) {
				t.Errorf("error %q does not say %q", err, tc.mustSay)
			}
			if tc.mustHide != "" && strings.Contains(err.Error(), tc.mustHide) {
				t.Errorf("error %q holds the secret's value", err)
			}
		})
	}
	if strings.Contains(logs.String(), password) || strings.Contains(logs.String(), "not-the-Pa55word") {
		t.Errorf("a credential reached the log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "resolved image") {
		t.Errorf("the log has no lookup line (is the logger used?):\n%s", logs.String())
	}
	// The secret's value is not kept: a second lookup of a new image reads
	// the secret again.
	reg.push(t, reg.ref("team/app:2"), image(t, v1.Config{Cmd: []string{"two"}}, "amd64"))
	before := w.count("GetSecretValue")
	if _, err := r.Resolve(ctx, withCreds(container("app", reg.ref("team/app:2")), good), nil); err != nil {
		t.Fatal(err)
	}
	if n := w.count("GetSecretValue") - before; n != 1 {
		t.Errorf("%d GetSecretValue calls for a new image, want 1", n)
	}
}

// countingECR counts GetAuthorizationToken calls per Region.
type countingECR struct {
	api ECRAPI
	n   *atomic.Int64
}

func (c countingECR) GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, optFns ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
	c.n.Add(1)
	return c.api.GetAuthorizationToken(ctx, in, optFns...)
}

func TestECRAuthWithAuthorizationToken(t *testing.T) {
	w := newAWSWorld(t, "ecr-token-password")
	reg := newTestRegistry(t)
	reg.requireAuth("AWS", "ecr-token-password")
	reg.push(t, reg.ref("app:1"), image(t, v1.Config{Cmd: []string{"one"}}, "amd64"))
	reg.push(t, reg.ref("app:2"), image(t, v1.Config{Cmd: []string{"two"}}, "amd64"))
	reg.push(t, reg.ref("app:3"), image(t, v1.Config{Cmd: []string{"three"}}, "amd64"))

	// The loopback registry plays an ECR registry of eu-west-1; the token
	// comes from awssim's GetAuthorizationToken through the real SDK client.
	var euCalls atomic.Int64
	var regions []string
	var mu sync.Mutex
	r := newResolver(t, Options{
		ECRFor: func(region string) ECRAPI {
			mu.Lock()
			regions = append(regions, region)
			mu.Unlock()
			return countingECR{api: w.ecr, n: &euCalls}
		},
		IsECR: func(host string) (string, bool) {
			if host == reg.host {
				return "eu-west-1", true
			}
			return ECRRegion(host)
		},
		Now:    w.clock.Now,
		TagTTL: time.Hour,
	})
	ctx := context.Background()
	for _, tag := range []string{"app:1", "app:2"} {
		got, err := r.Resolve(ctx, container("app", reg.ref(tag)), nil)
		if err != nil {
			t.Fatalf("%s: %v", tag, err)
		}
		if !strings.HasSuffix(got.Source, "(ecr)") {
			t.Errorf("source = %q, want ECR auth", got.Source)
		}
	}
	if n := euCalls.Load(); n != 1 {
		t.Errorf("%d GetAuthorizationToken calls for two images, want 1 (the token is cached)", n)
	}
	if d := cmp.Diff(regions, []string{"eu-west-1"}); d != "" {
		t.Errorf("ECRFor regions (-got +want):\n%s", d)
	}

	// Past its 12 hours (less the margin) the token is fetched again.
	w.clock.Advance(12*time.Hour - tokenMargin + time.Second)
	if _, err := r.Resolve(ctx, container("app", reg.ref("app:3")), nil); err != nil {
		t.Fatal(err)
	}
	if n := euCalls.Load(); n != 2 {
		t.Errorf("%d GetAuthorizationToken calls after the token expired, want 2", n)
	}
}

func TestECRTokenRefused(t *testing.T) {
	w := newAWSWorld(t, "pw")
	w.sim.AddGate(func(ctx context.Context, r awssim.Request) error {
		if r.Operation == "GetAuthorizationToken" {
			return &awssim.Error{Code: "AccessDeniedException", Message: "not authorized to perform: ecr:GetAuthorizationToken"}
		}
		return nil
	})
	reg := newTestRegistry(t)
	r := newResolver(t, Options{ECR: w.ecr, IsECR: func(host string) (string, bool) { return "us-east-1", host == reg.host }})
	_, err := r.Resolve(context.Background(), container("app", reg.ref("app:1")), nil)
	if got := CodeOf(err); got != CodeCredentials {
		t.Fatalf("code = %q, want %q (err %v)", got, CodeCredentials, err)
	}
	if !cloud.IsAccessDenied(err) {
		t.Errorf("the SDK's AccessDenied is not in the chain of %v", err)
	}
	if !strings.Contains(err.Error(), reg.ref("app:1")) {
		t.Errorf("error %q does not name the image", err)
	}
	if n := reg.total(); n != 0 {
		t.Errorf("%d registry requests without a token, want 0", n)
	}
}

func TestWithAWS(t *testing.T) {
	sim := awssim.New(awssim.Options{Region: "us-east-1", ECRPassword: "from-with-aws"})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	var mu sync.Mutex
	calls := map[string]int{}
	cfg, _, err := cloud.New(context.Background(), cloud.Options{
		Region: "us-east-1", Endpoint: srv.URL, MaxAttempts: 1,
		StaticCredentials: &aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"},
		Observe: func(service, op, code string) {
			mu.Lock()
			calls[service+" "+op]++
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := newTestRegistry(t)
	reg.requireAuth("AWS", "from-with-aws")
	reg.push(t, reg.ref("app:1"), image(t, v1.Config{Cmd: []string{"x"}}, "amd64"))
	o := WithAWS(cfg, Options{IsECR: func(host string) (string, bool) { return "eu-central-1", host == reg.host }})
	if o.ECRFor("eu-central-1") != o.ECRFor("eu-central-1") || o.ECRFor("us-east-1") != o.ECR {
		t.Error("ECRFor makes a new client per call, or not the home client for the home Region")
	}
	r := newResolver(t, o)
	if _, err := r.Resolve(context.Background(), container("app", reg.ref("app:1")), nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if d := cmp.Diff(calls, map[string]int{"ECR GetAuthorizationToken": 1}); d != "" {
		t.Errorf("AWS calls (-got +want):\n%s", d)
	}
}
