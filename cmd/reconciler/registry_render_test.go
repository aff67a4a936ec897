package main

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ecs-sidecar/reconciler/internal/config"
)

// authRegistry serves go-containerregistry's in-memory registry on
// 127.0.0.1 behind a handler that demands basic auth (401 with a Basic
// challenge otherwise), and returns its host:port.
func authRegistry(t *testing.T, user, pass string) string {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// dockerConfigDir writes config.json as docker login writes it, with basic
// auth for host, in a new directory.
func dockerConfigDir(t *testing.T, host, user, pass string) string {
	t.Helper()
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	writeFile(t, filepath.Join(dir, "config.json"), `{"auths":{"`+host+`":{"auth":"`+auth+`"}}}`)
	return dir
}

// render --resolve-images reads a registry that is neither ECR nor named by
// repositoryCredentials with docker login's credentials (DOCKER_CONFIG).
func TestRenderDockerConfigCredentials(t *testing.T) {
	const password = "render-Login-Pa55"
	host := authRegistry(t, "dev", password)
	ref := host + "/shop/web:1.0"
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{Architecture: "amd64", OS: "linux",
		Config: v1.Config{Entrypoint: []string{"/web"}, Cmd: []string{"--port=8080"}}})
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, remote.WithAuth(&authn.Basic{Username: "dev", Password: password})); err != nil {
		t.Fatal(err)
	}
	input := renderInput(t, ref)
	t.Setenv("HOME", t.TempDir()) // not the machine's ~/.docker/config.json

	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no config.json: anonymous
	code, stdout, stderr := runRender(t, input, "--resolve-images", "--token-secret-arn", testSecretArn)
	if code != exitFail || stdout != "" || !strings.Contains(stderr, "image: container app: image "+ref+": auth:") {
		t.Errorf("without docker login: render = %d, stdout %q, stderr:\n%s\nwant 1 and the lookup's auth error", code, stdout, stderr)
	}

	t.Setenv("DOCKER_CONFIG", dockerConfigDir(t, host, "dev", password))
	code, stdout, stderr = runRender(t, input, "--resolve-images", "--token-secret-arn", testSecretArn)
	if code != exitOK {
		t.Fatalf("with docker login: render = %d, stderr:\n%s", code, stderr)
	}
	app := renderedApp(t, stdout)
	if got := append(app.EntryPoint[len(app.EntryPoint)-1:], app.Command...); strings.Join(got, " ") != "/web --port=8080" {
		t.Errorf("app runs %q %q; want the wrapper, then /web --port=8080", app.EntryPoint, app.Command)
	}
	if strings.Contains(stdout+stderr, password) {
		t.Error("the docker login password is in render's output")
	}
}

// useRegistryTransport makes render and run reach every registry host at
// addr (a listener on 127.0.0.1), for the test's duration: a registry can
// be named by a host name that go-containerregistry does not take for a
// local one (those it speaks plain http to unasked).
func useRegistryTransport(t *testing.T, addr string) {
	t.Helper()
	tr := remote.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	registryTransport = tr
	t.Cleanup(func() { registryTransport = nil })
}

// pushTo pushes an image with entrypoint and cmd as ref over tr and returns
// it.
func pushTo(t *testing.T, tr http.RoundTripper, ref string, x any) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	switch v := x.(type) {
	case v1.Image:
		err = remote.Write(r, v, remote.WithTransport(tr))
	case v1.ImageIndex:
		err = remote.WriteIndex(r, v, remote.WithTransport(tr))
	}
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

func appImage(t *testing.T, arch string, entrypoint ...string) v1.Image {
	t.Helper()
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{Architecture: arch, OS: "linux", Config: v1.Config{Entrypoint: entrypoint}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// --insecure-registry and images.insecureRegistries allow plain http to the
// host listed, and to no other.
func TestRenderInsecureRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	useRegistryTransport(t, addr)
	_, port, _ := net.SplitHostPort(addr)
	host := "registry.corp.test:" + port
	pushTo(t, registryTransport, host+"/shop/web:1", appImage(t, "amd64", "/plain-http"))
	input := renderInput(t, host+"/shop/web:1")
	tok := []string{"--resolve-images", "--token-secret-arn", testSecretArn}

	code, _, stderr := runRender(t, input, tok...)
	if code != exitFail || !strings.Contains(stderr, "image: container app:") {
		t.Errorf("not listed: render = %d, stderr:\n%s\nwant 1 and the lookup error", code, stderr)
	}
	code, _, stderr = runRender(t, input, append(tok, "--insecure-registry", "other.corp.test:"+port)...)
	if code != exitFail {
		t.Errorf("another host listed: render = %d, stderr:\n%s\nwant 1", code, stderr)
	}
	code, stdout, stderr := runRender(t, input, append(tok, "--insecure-registry", host)...)
	if code != exitOK || !strings.Contains(strings.Join(renderedApp(t, stdout).EntryPoint, " "), "/plain-http") {
		t.Errorf("--insecure-registry %s: render = %d, stderr:\n%s\nwant the image read over http", host, code, stderr)
	}
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, cfg, "images:\n  insecureRegistries: ['"+host+"']\n")
	code, stdout, stderr = runRender(t, input, append(tok, "--config", cfg)...)
	if code != exitOK || !strings.Contains(strings.Join(renderedApp(t, stdout).EntryPoint, " "), "/plain-http") {
		t.Errorf("images.insecureRegistries: render = %d, stderr:\n%s\nwant the image read over http", code, stderr)
	}

	for _, bad := range []string{"http://" + host, host + "/shop", "registry.corp.test:99999"} {
		code, _, stderr = runRender(t, input, append(tok, "--insecure-registry", bad)...)
		if code != exitUsage || !strings.Contains(stderr, "render: --insecure-registry: must be a registry host or host:port") {
			t.Errorf("--insecure-registry %s: render = %d, stderr %q; want 2 and the form", bad, code, stderr)
		}
	}
}

// A registry whose certificate a private CA signed is read only with
// --registry-ca (or images.caFiles) naming that CA.
func TestRenderRegistryCA(t *testing.T) {
	srv := httptest.NewTLSServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "https://")
	useRegistryTransport(t, addr)
	_, port, _ := net.SplitHostPort(addr)
	host := "example.com:" + port // httptest's certificate names example.com
	push := srv.Client().Transport.(*http.Transport).Clone()
	push.DialContext = registryTransport.DialContext
	pushTo(t, push, host+"/shop/web:1", appImage(t, "amd64", "/tls"))
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	writeFile(t, ca, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	input := renderInput(t, host+"/shop/web:1")
	tok := []string{"--resolve-images", "--token-secret-arn", testSecretArn}

	code, _, stderr := runRender(t, input, tok...)
	if code != exitFail || !strings.Contains(stderr, "certificate") {
		t.Errorf("without the CA: render = %d, stderr:\n%s\nwant 1 and the certificate error", code, stderr)
	}
	code, _, stderr = runRender(t, input, append(tok, "--insecure-registry", host)...)
	if code != exitFail {
		t.Errorf("listed as insecure, without the CA: render = %d, stderr:\n%s\nwant 1 (no verification is skipped)", code, stderr)
	}
	code, stdout, stderr := runRender(t, input, append(tok, "--registry-ca", ca)...)
	if code != exitOK || !strings.Contains(strings.Join(renderedApp(t, stdout).EntryPoint, " "), "/tls") {
		t.Errorf("--registry-ca: render = %d, stderr:\n%s\nwant the image read over verified TLS", code, stderr)
	}
	cfg := filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, "images:\n  caFiles: ['"+ca+"']\n")
	code, stdout, stderr = runRender(t, input, append(tok, "--config", cfg)...)
	if code != exitOK || !strings.Contains(strings.Join(renderedApp(t, stdout).EntryPoint, " "), "/tls") {
		t.Errorf("images.caFiles: render = %d, stderr:\n%s\nwant the image read over verified TLS", code, stderr)
	}

	notPEM := filepath.Join(dir, "notes.txt")
	writeFile(t, notPEM, "hello\n")
	code, _, stderr = runRender(t, input, append(tok, "--registry-ca", notPEM)...)
	if code != exitFail || !strings.Contains(stderr, "render: --registry-ca: "+notPEM+" holds no PEM certificate") {
		t.Errorf("--registry-ca with a text file: render = %d, stderr %q; want 1 naming the file", code, stderr)
	}
	badCfg := filepath.Join(dir, "bad.yaml")
	writeFile(t, badCfg, "images:\n  caFiles: ['"+notPEM+"']\n")
	code, _, stderr = runRender(t, input, append(tok, "--config", badCfg)...)
	if code != exitFail || !strings.Contains(stderr, "images.caFiles[0]: "+notPEM+" holds no PEM certificate") {
		t.Errorf("images.caFiles with a text file: render = %d, stderr %q; want 1 naming the key and the file", code, stderr)
	}
}

// --image-timeout (and images.timeout) bound a lookup: a registry that
// never answers fails the lookup with timeout, in about that time.
func TestRenderImageTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	host := strings.TrimPrefix(srv.URL, "http://")
	input := renderInput(t, host+"/slow/app:1")
	tok := []string{"--resolve-images", "--token-secret-arn", testSecretArn}

	start := time.Now()
	code, _, stderr := runRender(t, input, append(tok, "--image-timeout", "300ms")...)
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("--image-timeout 300ms: render took %v", el)
	}
	if code != exitFail || !strings.Contains(stderr, ": timeout:") {
		t.Errorf("--image-timeout 300ms: render = %d, stderr:\n%s\nwant 1 and a timeout", code, stderr)
	}
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, cfg, "images:\n  timeout: 300ms\n")
	start = time.Now()
	code, _, stderr = runRender(t, input, append(tok, "--config", cfg)...)
	if el := time.Since(start); el > 10*time.Second || code != exitFail || !strings.Contains(stderr, ": timeout:") {
		t.Errorf("images.timeout 300ms: render = %d in %v, stderr:\n%s\nwant 1 and a timeout, quickly", code, el, stderr)
	}
	for _, bad := range []string{"0s", "-1s"} {
		code, _, stderr = runRender(t, input, append(tok, "--image-timeout", bad)...)
		if code != exitUsage || !strings.Contains(stderr, "--image-timeout: must be greater than 0") {
			t.Errorf("--image-timeout %s: render = %d, stderr %q; want 2", bad, code, stderr)
		}
	}
}

// The registry flags shape --resolve-images; alone they are a mistake.
func TestRegistryFlagsNeedResolveImages(t *testing.T) {
	input := renderInput(t, "example.com/shop/web:1")
	for _, args := range [][]string{
		{"--insecure-registry", "registry.example.com"},
		{"--registry-ca", "/nonexistent.pem"},
		{"--image-timeout", "5s"},
		{"--pin-digest"},
	} {
		code, stdout, stderr := runRender(t, input, append(args, "--image-cmd", `["x"]`)...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, args[0]+" shapes how --resolve-images reads the registries: give --resolve-images too") {
			t.Errorf("%v without --resolve-images: render = %d, stderr %q; want 2 and why", args, code, stderr)
		}
	}
}

// images.resolve: false in the config and --resolve-images on the command
// line contradict each other: render says so, naming both, and exits 2
// instead of picking one. Without the flag the config renders offline.
func TestRenderResolveImagesAgainstConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, cfg, "images:\n  resolve: false\n")
	input := renderInput(t, "example.com/shop/web:1")
	code, stdout, stderr := runRender(t, input, "--config", cfg, "--resolve-images", "--token-secret-arn", testSecretArn)
	want := "render: --resolve-images conflicts with images.resolve: false in --config " + cfg
	if code != exitUsage || stdout != "" || !strings.Contains(stderr, want) {
		t.Errorf("render = %d, stderr %q; want 2 and %q", code, stderr, want)
	}
	code, _, stderr = runRender(t, input, "--config", cfg, "--image-cmd", `["/web"]`, "--token-secret-arn", testSecretArn)
	if code != exitOK {
		t.Errorf("offline with images.resolve: false: render = %d, stderr:\n%s", code, stderr)
	}
}

// --pin-digest and images.pinDigest make the twin run the image by the
// digest that was read (the index's for a multi-platform image); without
// either it keeps the tag.
func TestRenderPinDigest(t *testing.T) {
	host := startRegistry(t)
	ref := host + "/shop/web:1.0"
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: appImage(t, "amd64", "/web"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: appImage(t, "arm64", "/web"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	pushTo(t, http.DefaultTransport, ref, idx)
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	pinned := host + "/shop/web@" + d.String()
	input := renderInput(t, ref)
	tok := []string{"--resolve-images", "--token-secret-arn", testSecretArn}
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, cfg, "images:\n  pinDigest: true\n")

	specs := map[string]string{}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"default", nil, ref},
		{"--pin-digest", []string{"--pin-digest"}, pinned},
		{"images.pinDigest", []string{"--config", cfg}, pinned},
		{"--pin-digest=false over the config", []string{"--config", cfg, "--pin-digest=false"}, ref},
	} {
		code, stdout, stderr := runRender(t, input, append(tok, tc.args...)...)
		if code != exitOK {
			t.Fatalf("%s: render = %d, stderr:\n%s", tc.name, code, stderr)
		}
		app := renderedApp(t, stdout)
		if got := aws.ToString(app.Image); got != tc.want {
			t.Errorf("%s: app image %s, want %s", tc.name, got, tc.want)
		}
		specs[tc.name] = specOf(t, stdout)
	}
	if specs["default"] == specs["--pin-digest"] || specs["--pin-digest"] != specs["images.pinDigest"] || specs["default"] != specs["--pin-digest=false over the config"] {
		t.Errorf("specs %v: want one for the pinned twins, another for the tagged ones", specs)
	}
}

// specOf is the ecs-sidecar/spec tag of render's output.
func specOf(t *testing.T, stdout string) string {
	t.Helper()
	i := strings.Index(stdout, `"key": "ecs-sidecar/spec"`)
	if i < 0 {
		t.Fatalf("no spec tag in\n%s", stdout)
	}
	rest := stdout[i:]
	j := strings.Index(rest, `"value": "`)
	rest = rest[j+len(`"value": "`):]
	return rest[:strings.IndexByte(rest, '"')]
}

// run and plan take the registry settings from the config: an insecure
// registry named by a host name is read, and images.pinDigest pins.
func TestConfiguredImagesTakesTheRegistrySettings(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	useRegistryTransport(t, addr)
	_, port, _ := net.SplitHostPort(addr)
	host := "registry.corp.test:" + port
	img := appImage(t, "amd64", "/api")
	pushTo(t, registryTransport, host+"/shop/api:2", img)
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	td := &types.TaskDefinition{ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String(host + "/shop/api:2")}}}

	for _, tc := range []struct {
		name    string
		images  func(*config.Images)
		wantErr bool
		wantPin string
	}{
		{"defaults", func(*config.Images) {}, true, ""},
		{"insecure", func(im *config.Images) { im.InsecureRegistries = []string{host} }, false, ""},
		{"insecure and pinned", func(im *config.Images) { im.InsecureRegistries, im.PinDigest = []string{host}, true }, false, host + "/shop/api@" + d.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			tc.images(&cfg.Images)
			r, err := configuredImages(cfg, aws.Config{Region: "us-east-1"}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			images, errs := r.Images(t.Context(), td)
			if tc.wantErr != (len(errs) > 0) {
				t.Fatalf("errors %v, want errors: %v", errs, tc.wantErr)
			}
			if !tc.wantErr && images["app"].Pin != tc.wantPin {
				t.Errorf("pin %q, want %q", images["app"].Pin, tc.wantPin)
			}
		})
	}
	// A CA file the config named that is gone by the time the resolver is
	// made: an error, not the system roots alone.
	cfg := config.Default()
	cfg.Images.CAFiles = []string{filepath.Join(t.TempDir(), "gone.pem")}
	if _, err := configuredImages(cfg, aws.Config{Region: "us-east-1"}, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("configuredImages with a missing CA file: no error")
	}
}
