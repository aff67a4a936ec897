package imageconfig

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// ECRAPI is the ECR call the resolver makes, with the SDK v2 signature, so
// that *ecr.Client satisfies it as is.
type ECRAPI interface {
	GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, optFns ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
}

// SecretsAPI is the Secrets Manager call the resolver makes, with the SDK v2
// signature, so that *secretsmanager.Client satisfies it as is.
type SecretsAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// ECR registry hosts: <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]
// and the dual-stack <account>.dkr-ecr[-fips].<region>.on.aws.
var (
	reECR          = regexp.MustCompile(`^[0-9]{12}\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$`)
	reECRDualStack = regexp.MustCompile(`^[0-9]{12}\.dkr-ecr(?:-fips)?\.([a-z0-9-]+)\.on\.aws$`)
)

// ECRRegion reports whether host (a registry, with or without a port) is a
// private ECR registry, and its Region. ECR Public (public.ecr.aws) is not:
// it is pulled anonymously, as ECS does.
func ECRRegion(host string) (region string, ok bool) {
	h := strings.ToLower(host)
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	for _, re := range []*regexp.Regexp{reECR, reECRDualStack} {
		if m := re.FindStringSubmatch(h); m != nil {
			return m[1], true
		}
	}
	return "", false
}

// tokenMargin: an ECR token is renewed this long before it expires, so that
// no lookup starts with a token that dies on the way.
const tokenMargin = 5 * time.Minute

// ecrToken is one Region's ECR authorization token and the puller that uses
// it. A token is valid for every registry of its Region the principal may
// pull from (GetAuthorizationToken's registryIds no longer scope it), so one
// is kept per Region, until it expires.
type ecrToken struct {
	expires time.Time
	puller  *remote.Puller
}

// ecrPuller returns the puller authenticated for ECR in region, fetching a
// token when there is none or it is about to expire. Concurrent callers for
// a Region share one GetAuthorizationToken call.
func (r *Resolver) ecrPuller(ctx context.Context, region string) (*remote.Puller, error) {
	now := r.o.Now()
	r.mu.Lock()
	t := r.tokens[region]
	r.mu.Unlock()
	if t != nil && now.Before(t.expires.Add(-tokenMargin)) {
		return t.puller, nil
	}
	ch := r.tokenFlight.DoChan(region, func() (any, error) {
		// Re-check: a flight that just ended may have stored a fresh token.
		r.mu.Lock()
		t := r.tokens[region]
		r.mu.Unlock()
		if t != nil && r.o.Now().Before(t.expires.Add(-tokenMargin)) {
			return t, nil
		}
		t, err := r.fetchECRToken(context.WithoutCancel(ctx), region)
		if err != nil {
			return nil, err
		}
		r.mu.Lock()
		r.tokens[region] = t
		r.mu.Unlock()
		return t, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*ecrToken).puller, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (r *Resolver) fetchECRToken(ctx context.Context, region string) (*ecrToken, error) {
	api := r.o.ECR
	if r.o.ECRFor != nil {
		api = r.o.ECRFor(region)
	}
	if api == nil {
		return nil, &LookupError{Code: CodeCredentials, Err: fmt.Errorf("no ECR client for Region %s", region)}
	}
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	out, err := api.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return nil, &LookupError{Code: CodeCredentials, Err: fmt.Errorf("ecr:GetAuthorizationToken in %s: %w", region, err)}
	}
	if len(out.AuthorizationData) == 0 || out.AuthorizationData[0].AuthorizationToken == nil {
		return nil, &LookupError{Code: CodeCredentials, Err: fmt.Errorf("ecr:GetAuthorizationToken in %s: no token in the answer", region)}
	}
	d := out.AuthorizationData[0]
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(d.AuthorizationToken))
	user, pass, ok := strings.Cut(string(raw), ":")
	if err != nil || !ok || user == "" || pass == "" {
		return nil, &LookupError{Code: CodeCredentials, Err: fmt.Errorf("ecr:GetAuthorizationToken in %s: the token is not base64 user:password", region)}
	}
	expires := r.o.Now().Add(12 * time.Hour)
	if d.ExpiresAt != nil {
		expires = *d.ExpiresAt
	}
	p, err := r.newPuller(&authn.Basic{Username: user, Password: pass})
	if err != nil {
		return nil, err
	}
	r.log.Debug("ecr token fetched", "region", region, "expires", expires)
	return &ecrToken{expires: expires, puller: p}, nil
}

// secretAuth reads a private registry's credentials from the Secrets Manager
// secret that the container's repositoryCredentials names. The value is
// returned to the one lookup that needs it and is kept nowhere else; no
// error carries it.
func (r *Resolver) secretAuth(ctx context.Context, secretID string) (authn.Authenticator, error) {
	api := r.o.Secrets
	region := secretRegion(secretID)
	if r.o.SecretsFor != nil && region != "" {
		// A secret of another Region is read there: the home Region's
		// client would answer ResourceNotFoundException.
		api = r.o.SecretsFor(region)
	}
	if api == nil {
		return nil, &LookupError{Code: CodeCredentials, Err: fmt.Errorf("repositoryCredentials %s: no Secrets Manager client", secretID)}
	}
	out, err := api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID)})
	if err != nil {
		return nil, &LookupError{Code: CodeCredentials, Err: fmt.Errorf("secretsmanager:GetSecretValue %s: %w", secretID, err)}
	}
	var body []byte
	switch {
	case out.SecretString != nil:
		body = []byte(*out.SecretString)
	case out.SecretBinary != nil:
		body = out.SecretBinary
	}
	var creds struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	// The JSON error is dropped on purpose: a syntax error's text may quote
	// part of the secret.
	if json.Unmarshal(body, &creds) != nil || creds.Username == "" || creds.Password == "" {
		return nil, &LookupError{Code: CodeCredentials, Err: fmt.Errorf("repositoryCredentials %s: %w", secretID, errBadSecret)}
	}
	return &authn.Basic{Username: creds.Username, Password: creds.Password}, nil
}

var errBadSecret = errors.New(`the secret is not a JSON object with "username" and "password"`)

// keychainPuller returns a puller with the keychain's credentials for ref's
// registry (docker login's, through render's authn.DefaultKeychain), or the
// anonymous one when the keychain has none; kind says which, for Source.
// Like a secret's, the credentials are kept by no cache.
func (r *Resolver) keychainPuller(ctx context.Context, ref name.Reference) (*remote.Puller, string, error) {
	auth, err := authn.Resolve(ctx, r.o.Keychain, ref.Context())
	if err != nil {
		// A credential helper's output, or a broken config file's text,
		// may hold a credential: only a missing or unreadable file is
		// named.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, "", &LookupError{Code: CodeCredentials, Err: fmt.Errorf("docker credentials: %s: %v", pe.Path, pe.Err)}
		}
		return nil, "", &LookupError{Code: CodeCredentials, Err: errors.New("docker credentials: the Docker config (DOCKER_CONFIG, ~/.docker/config.json) or its credential helper failed")}
	}
	if auth == nil || auth == authn.Anonymous {
		return r.anonymous, "anonymous", nil
	}
	p, err := r.newPuller(auth)
	if err != nil {
		return nil, "", err
	}
	return p, "docker-config", nil
}
