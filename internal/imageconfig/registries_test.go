package imageconfig

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/cloud"
)

// loopbackAs returns a transport that dials addr (a 127.0.0.1 listener) for
// every host: a registry can then be named by a host name that is not a
// loopback or private address (to which go-containerregistry speaks plain
// http unasked), while every byte stays on 127.0.0.1.
func loopbackAs(addr string) *http.Transport {
	t := remote.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return t
}

// Plain http is spoken only to the registries listed: the same registry,
// named by a host name, is unreachable without the entry (https is tried
// and the server speaks http) and read with it.
func TestInsecureRegistriesOnlyWhenListed(t *testing.T) {
	reg := newTestRegistry(t)
	img := image(t, v1.Config{Entrypoint: []string{"/plain"}}, "amd64")
	reg.push(t, reg.ref("team/app:1"), img)
	_, port, _ := net.SplitHostPort(reg.host)
	host := "registry.internal.test:" + port
	ctx := context.Background()

	for _, tc := range []struct {
		name   string
		listed []string
		ok     bool
	}{
		{"not listed", nil, false},
		{"another host listed", []string{"other.internal.test:" + port}, false},
		{"the host without its port", []string{"registry.internal.test"}, false},
		{"listed", []string{"REGISTRY.internal.test:" + port}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newResolver(t, Options{Transport: loopbackAs(reg.host), Insecure: InsecureHosts(tc.listed)})
			got, err := r.Resolve(ctx, container("app", host+"/team/app:1"), nil)
			if !tc.ok {
				if err == nil {
					t.Fatalf("resolved %+v over plain http without the host listed", got)
				}
				if !strings.Contains(err.Error(), "HTTPS") && !strings.Contains(err.Error(), "https") {
					t.Errorf("error %q does not say https was tried", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Digest != digestOf(t, img) || !cmp.Equal(got.Entrypoint, []string{"/plain"}) {
				t.Errorf("got %+v, want the pushed image", got)
			}
		})
	}
}

// writeCA writes the certificate of a TLS test server as a PEM file.
func writeCA(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A registry whose certificate a private CA signed is trusted only with
// that CA given: the system's roots alone refuse it, and listing it as
// insecure does not skip the verification.
func TestRegistryWithPrivateCA(t *testing.T) {
	srv := httptest.NewTLSServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "https://")
	_, port, _ := net.SplitHostPort(addr)
	// httptest's certificate is for example.com (and 127.0.0.1).
	host := "example.com:" + port
	img := image(t, v1.Config{Cmd: []string{"tls"}}, "amd64")
	reg := &testRegistry{host: host}
	if err := remote.Write(mustRef(t, reg.ref("app:1")), img, remote.WithTransport(withDial(srv.Client().Transport.(*http.Transport), addr))); err != nil {
		t.Fatalf("push: %v", err)
	}
	ca := writeCA(t, srv)
	ctx := context.Background()

	for _, tc := range []struct {
		name     string
		caFiles  []string
		insecure []string
		ok       bool
	}{
		{"system roots only", nil, nil, false},
		{"listed as insecure, no CA", nil, []string{host}, false},
		{"CA file given", []string{ca}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool, err := RootCAs(tc.caFiles)
			if err != nil {
				t.Fatal(err)
			}
			r := newResolver(t, Options{Transport: loopbackAs(addr), RootCAs: pool, Insecure: InsecureHosts(tc.insecure)})
			got, err := r.Resolve(ctx, container("app", host+"/app:1"), nil)
			if !tc.ok {
				if err == nil {
					t.Fatalf("resolved %+v with an unverified certificate", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Digest != digestOf(t, img) {
				t.Errorf("digest %s, want %s", got.Digest, digestOf(t, img))
			}
		})
	}
}

func withDial(base *http.Transport, addr string) *http.Transport {
	t := base.Clone()
	t.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return t
}

func TestReadCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	srv.Close()
	dir := t.TempDir()
	good := writeCA(t, srv)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := write("key.pem", "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n")
	garbage := write("garbage.pem", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
	text := write("notes.txt", "no certificate here\n")
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope.pem"), "cannot read " + filepath.Join(dir, "nope.pem") + ": no such file"},
		{"directory", dir, "is not a regular file"},
		{"no PEM", text, "holds no PEM certificate"},
		{"private key", key, `PEM block 1 is "PRIVATE KEY", not CERTIFICATE`},
		{"not a certificate", garbage, "PEM block 1 is not an X.509 certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadCAFile(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadCAFile = %v, want an error saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "c2VjcmV0") {
				t.Errorf("error %q quotes the file", err)
			}
		})
	}
	certs, err := ReadCAFile(good)
	if err != nil || len(certs) != 1 {
		t.Fatalf("ReadCAFile(good) = %d certificates, %v", len(certs), err)
	}
	if _, err := RootCAs([]string{good, text}); err == nil || !strings.Contains(err.Error(), text) {
		t.Errorf("RootCAs with a bad file = %v, want an error naming it", err)
	}
	if _, err := New(Options{RootCAs: x509Pool(t, good), Transport: roundTripperFunc(nil)}); err == nil {
		t.Error("New with RootCAs and a transport that is not an *http.Transport: no error")
	}
}

func x509Pool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	p, err := RootCAs([]string{file})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fakeSecrets is one Region's Secrets Manager: it answers the secrets it
// holds and counts the calls.
type fakeSecrets struct {
	region string
	values map[string]string
	mu     sync.Mutex
	calls  []string
}

func (f *fakeSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.mu.Lock()
	f.calls = append(f.calls, aws.ToString(in.SecretId))
	f.mu.Unlock()
	v, ok := f.values[aws.ToString(in.SecretId)]
	if !ok {
		return nil, &awssim.Error{Code: "ResourceNotFoundException", Message: "Secrets Manager can't find the specified secret in " + f.region}
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(v)}, nil
}

func (f *fakeSecrets) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// A repositoryCredentials secret is read in the Region its ARN names; a
// bare name, which ECS resolves in the task's Region, in the home Region.
func TestSecretReadInItsRegion(t *testing.T) {
	const password = "eu-Only-Pa55word"
	reg := newTestRegistry(t)
	reg.requireAuth("ci-bot", password)
	reg.push(t, reg.ref("team/app:1"), image(t, v1.Config{Cmd: []string{"x"}}, "amd64"))
	const euARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:registry/eu-AbCdEf"
	creds := `{"username":"ci-bot","password":"` + password + `"}`
	home := &fakeSecrets{region: "us-east-1", values: map[string]string{"registry/home": creds}}
	eu := &fakeSecrets{region: "eu-west-1", values: map[string]string{euARN: creds}}
	var asked []string
	var mu sync.Mutex
	var logs bytes.Buffer
	r := newResolver(t, Options{
		Secrets: home,
		SecretsFor: func(region string) SecretsAPI {
			mu.Lock()
			asked = append(asked, region)
			mu.Unlock()
			if region == "eu-west-1" {
				return eu
			}
			return home
		},
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	ctx := context.Background()
	if _, err := r.Resolve(ctx, withCreds(container("app", reg.ref("team/app:1")), euARN), nil); err != nil {
		t.Fatalf("secret in eu-west-1: %v", err)
	}
	if _, err := r.Resolve(ctx, withCreds(container("app", reg.ref("team/app:1")), "registry/home"), nil); err != nil {
		t.Fatalf("secret by name: %v", err)
	}
	if d := cmp.Diff(eu.seen(), []string{euARN}); d != "" {
		t.Errorf("eu-west-1 calls (-got +want):\n%s", d)
	}
	if d := cmp.Diff(home.seen(), []string{"registry/home"}); d != "" {
		t.Errorf("home Region calls (-got +want):\n%s", d)
	}
	if d := cmp.Diff(asked, []string{"eu-west-1"}); d != "" {
		t.Errorf("SecretsFor asked for (-got +want):\n%s", d)
	}
	// A secret the other Region does not have fails there, and says so
	// without the value of any secret.
	_, err := r.Resolve(ctx, withCreds(container("app", reg.ref("team/app:1")), strings.Replace(euARN, "registry/eu", "registry/gone", 1)), nil)
	if CodeOf(err) != CodeCredentials || !strings.Contains(err.Error(), "eu-west-1") {
		t.Errorf("missing secret in eu-west-1: %v, want a credentials error from eu-west-1", err)
	}
	for _, s := range []string{err.Error(), logs.String()} {
		if strings.Contains(s, password) {
			t.Errorf("the registry password leaked: %s", s)
		}
	}
}

var scopeRE = regexp.MustCompile(`Credential=[^/]+/[0-9]+/([a-z0-9-]+)/`)

// WithAWS reads a secret of another Region with a client of that Region,
// made from the same aws.Config: two awssim accounts, one per Region, behind
// one endpoint that routes each request by the Region it is signed for.
func TestWithAWSReadsSecretsInTheirRegion(t *testing.T) {
	sims := map[string]*awssim.Sim{
		"us-east-1": awssim.New(awssim.Options{Region: "us-east-1"}),
		"eu-west-1": awssim.New(awssim.Options{Region: "eu-west-1"}),
	}
	var mu sync.Mutex
	byRegion := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := scopeRE.FindStringSubmatch(r.Header.Get("Authorization"))
		if m == nil || sims[m[1]] == nil {
			http.Error(w, "unsigned or unknown Region", http.StatusBadRequest)
			return
		}
		mu.Lock()
		byRegion[m[1]]++
		mu.Unlock()
		sims[m[1]].Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg, _, err := cloud.New(context.Background(), cloud.Options{
		Region: "us-east-1", Endpoint: srv.URL, MaxAttempts: 1,
		StaticCredentials: &aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	const password = "cross-Region-Pa55"
	out, err := sims["eu-west-1"].SecretsManager().CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String("registry/eu"), SecretString: aws.String(`{"username":"u","password":"` + password + `"}`)})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.ARN)
	if !strings.Contains(arn, ":eu-west-1:") {
		t.Fatalf("secret ARN %s is not of eu-west-1", arn)
	}
	reg := newTestRegistry(t)
	reg.requireAuth("u", password)
	reg.push(t, reg.ref("app:1"), image(t, v1.Config{Cmd: []string{"x"}}, "amd64"))

	r := newResolver(t, WithAWS(cfg, Options{}))
	got, err := r.Resolve(context.Background(), withCreds(container("app", reg.ref("app:1")), arn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(got.Source, "(secret)") {
		t.Errorf("source %q, want the secret's credentials", got.Source)
	}
	mu.Lock()
	defer mu.Unlock()
	if d := cmp.Diff(byRegion, map[string]int{"eu-west-1": 1}); d != "" {
		t.Errorf("requests by signing Region (-got +want):\n%s", d)
	}
}

// writeDockerConfig writes a config.json with basic auth for host, as
// docker login writes it, in a new directory, and returns the directory.
func writeDockerConfig(t *testing.T, host, user, pass string) string {
	t.Helper()
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	doc := `{"auths":{"` + host + `":{"auth":"` + auth + `"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// With a Keychain (render's docker login credentials) a registry that is
// neither ECR nor named by repositoryCredentials is read with what the
// Docker config holds for it; one it holds nothing for, anonymously; a
// repositoryCredentials secret still wins.
func TestKeychainCredentials(t *testing.T) {
	const password = "docker-Login-Pa55"
	reg := newTestRegistry(t)
	reg.requireAuth("dev", password)
	img := image(t, v1.Config{Entrypoint: []string{"/behind-login"}}, "amd64")
	reg.push(t, reg.ref("team/app:1"), img)
	open := newTestRegistry(t)
	open.push(t, open.ref("lib/tool:1"), image(t, v1.Config{Cmd: []string{"tool"}}, "amd64"))

	t.Setenv("HOME", t.TempDir()) // no ~/.docker/config.json of the machine's
	t.Setenv("DOCKER_CONFIG", writeDockerConfig(t, reg.host, "dev", password))
	ctx := context.Background()

	if _, err := newResolver(t, Options{}).Resolve(ctx, container("app", reg.ref("team/app:1")), nil); CodeOf(err) != CodeAuth {
		t.Fatalf("without a keychain: %v, want %s", err, CodeAuth)
	}
	var logs bytes.Buffer
	r := newResolver(t, Options{Keychain: authn.DefaultKeychain, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	got, err := r.Resolve(ctx, container("app", reg.ref("team/app:1")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(got.Source, "(docker-config)") || got.Digest != digestOf(t, img) {
		t.Errorf("got %+v, want the image read with the Docker config's credentials", got)
	}
	got, err = r.Resolve(ctx, container("tool", open.ref("lib/tool:1")), nil)
	if err != nil || !strings.HasSuffix(got.Source, "(anonymous)") {
		t.Errorf("registry the Docker config does not know: %+v, %v; want an anonymous read", got, err)
	}
	// repositoryCredentials wins over the keychain: with a secret that
	// does not exist the lookup fails, even though docker login would do.
	_, err = newResolver(t, Options{Keychain: authn.DefaultKeychain, Secrets: &fakeSecrets{region: "us-east-1"}}).
		Resolve(ctx, withCreds(container("app", reg.ref("team/app:1")), "registry/none"), nil)
	if CodeOf(err) != CodeCredentials {
		t.Errorf("repositoryCredentials with a keychain: %v, want the secret's %s error", err, CodeCredentials)
	}

	// Wrong credentials in the Docker config: refused, the password in no
	// error or log line.
	t.Setenv("DOCKER_CONFIG", writeDockerConfig(t, reg.host, "dev", "wrong-Pa55"))
	_, err = newResolver(t, Options{Keychain: authn.DefaultKeychain}).Resolve(ctx, container("app", reg.ref("team/app:1")), nil)
	if CodeOf(err) != CodeAuth {
		t.Errorf("wrong Docker credentials: %v, want %s", err, CodeAuth)
	}
	// A config.json that does not parse: a credentials error that quotes
	// nothing of it.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths": {"x": {"auth": "`+password), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	_, err = newResolver(t, Options{Keychain: authn.DefaultKeychain}).Resolve(ctx, container("app", reg.ref("team/app:1")), nil)
	if CodeOf(err) != CodeCredentials {
		t.Errorf("broken Docker config: %v, want %s", err, CodeCredentials)
	}
	for _, s := range []string{errString(err), logs.String()} {
		if strings.Contains(s, password) || strings.Contains(s, "wrong-Pa55") {
			t.Errorf("a Docker credential leaked: %s", s)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestPinnedReference(t *testing.T) {
	const d = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	const idx = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	for _, tc := range []struct {
		image string
		c     Config
		want  string
	}{
		{"nginx:1.28", Config{Digest: d}, "nginx@" + d},
		{"nginx", Config{Digest: d}, "nginx@" + d},
		{"nginx:1.28", Config{Digest: d, IndexDigest: idx}, "nginx@" + idx},
		{"registry.example.com:5000/team/app:v1", Config{Digest: d}, "registry.example.com:5000/team/app@" + d},
		{"registry.example.com:5000/team/app", Config{Digest: d}, "registry.example.com:5000/team/app@" + d},
		{"123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:latest", Config{Digest: d, IndexDigest: idx}, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app@" + idx},
		{"nginx@" + d, Config{Digest: d}, ""},
		{"nginx:1.28@" + d, Config{Digest: d}, ""},
		{"nginx:1.28", Config{}, ""},
	} {
		if got := PinnedReference(tc.image, tc.c); got != tc.want {
			t.Errorf("PinnedReference(%q, %+v) = %q, want %q", tc.image, tc.c, got, tc.want)
		}
	}
}

// Images with PinDigest gives each container the reference pinned to what
// was read: a multi-platform image by its index digest, so that ECS still
// picks the platform.
func TestImagesPinDigest(t *testing.T) {
	reg := newTestRegistry(t)
	_, _, idx := multiArch(t, reg, reg.ref("multi:1"))
	single := image(t, v1.Config{Cmd: []string{"one"}}, "amd64")
	reg.push(t, reg.ref("single:1"), single)
	idxDigest, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	td := &types.TaskDefinition{ContainerDefinitions: []types.ContainerDefinition{
		*container("multi", reg.ref("multi:1")), *container("single", reg.ref("single:1")),
		*container("missing", reg.ref("missing:1")),
	}}
	for _, pin := range []bool{false, true} {
		images, errs := newResolver(t, Options{PinDigest: pin}).Images(context.Background(), td)
		if len(errs) != 1 {
			t.Fatalf("pin %v: errors %v, want one (the missing image)", pin, errs)
		}
		want := map[string]string{"multi": "", "single": ""}
		if pin {
			want = map[string]string{"multi": reg.host + "/multi@" + idxDigest.String(), "single": reg.host + "/single@" + digestOf(t, single)}
		}
		got := map[string]string{}
		for n, img := range images {
			got[n] = img.Pin
		}
		if d := cmp.Diff(got, want); d != "" {
			t.Errorf("pin %v: pins (-got +want):\n%s", pin, d)
		}
	}
}
