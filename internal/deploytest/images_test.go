package deploytest

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ecs-sidecar/reconciler/internal/imageconfig"
)

// testRegistry is an in-memory registry on loopback that asks for basic
// auth.
type testRegistry struct {
	host       string
	user, pass string
}

func newTestRegistry(t *testing.T, user, pass string) *testRegistry {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	tr := &testRegistry{user: user, pass: pass}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="deploytest"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tr.host = strings.TrimPrefix(srv.URL, "http://")
	return tr
}

// push writes a linux/amd64 image with config c under repoTag.
func (tr *testRegistry) push(t *testing.T, repoTag string, c v1.Config) string {
	t.Helper()
	cf, err := empty.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", "amd64", c
	img, err := mutate.ConfigFile(empty.Image, cf)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(tr.host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: tr.user, Password: tr.pass})); err != nil {
		t.Fatal(err)
	}
	return ref.String()
}

// registrySecret creates the repositoryCredentials secret of a private
// registry in the sim and returns its ARN.
func registrySecret(t *testing.T, w *world, user, pass string) string {
	t.Helper()
	sm := secretsmanager.NewFromConfig(newClientConfig(t, w.url, simRegion, nil, nil))
	out, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String("registry/private"), SecretString: aws.String(`{"username":"` + user + `","password":"` + pass + `"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ARN)
}

// imageFlow reads image configs as run does (imageconfig.WithAWS on the
// reconciler's clients): an image in "ECR" (a loopback registry taken for
// this Region's ECR, whose password is awssim's GetAuthorizationToken) and
// one in a private registry whose credentials are the secret.
func imageFlow(t *testing.T, w *world, secretArn string) {
	ctx := context.Background()
	ecrReg := newTestRegistry(t, "AWS", "awssim")
	private := newTestRegistry(t, "robot", "s3cret")
	app := ecrReg.push(t, "web:1", v1.Config{Entrypoint: []string{"/app"}, Cmd: []string{"serve"}, User: "1000"})
	tool := private.push(t, "tool:2", v1.Config{Entrypoint: []string{"/tool"}, User: "1000"})
	r, err := imageconfig.New(imageconfig.WithAWS(w.reconcilerConfig(t, simRegion), imageconfig.Options{
		IsECR:     func(host string) (string, bool) { return simRegion, host == ecrReg.host },
		Transport: w.az.transport(remote.DefaultTransport, ecrReg.host, simRegion, simAccount),
	}))
	if err != nil {
		t.Fatal(err)
	}
	mark := w.az.mark()
	images, errs := r.Images(ctx, &types.TaskDefinition{ContainerDefinitions: []types.ContainerDefinition{
		{Name: aws.String("app"), Image: aws.String(app)},
		{Name: aws.String("tool"), Image: aws.String(tool), RepositoryCredentials: &types.RepositoryCredentials{CredentialsParameter: aws.String(secretArn)}},
	}})
	for _, err := range errs {
		t.Errorf("image config: %v", err)
	}
	if len(images) != 2 {
		t.Errorf("read %d image configs, want 2:\n%s", len(images), formatLog(w.az.since(mark)))
	}
}
