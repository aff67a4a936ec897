package image

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// RefNameAnnotation names the index in the layout's index.json, as
// skopeo (oci:DIR:NAME) and containerd's import read it.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// WriteLayout writes idx as an OCI image layout at dir: index.json holds
// one entry, the multi-platform index, named refName, so that
// `crane push DIR REF` and `skopeo copy oci:DIR:NAME ...` push all
// platforms at once. An existing layout at dir is replaced; any other
// existing directory that is not empty is refused.
func WriteLayout(dir string, idx v1.ImageIndex, refName string) (layout.Path, error) {
	if err := clearLayout(dir); err != nil {
		return "", err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", err
	}
	var opts []layout.Option
	if refName != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{RefNameAnnotation: refName}))
	}
	if err := p.AppendIndex(idx, opts...); err != nil {
		return "", err
	}
	return p, nil
}

func clearLayout(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(entries) == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return fmt.Errorf("%s exists and is not an OCI image layout: not replacing it", dir)
	}
	return os.RemoveAll(dir)
}

// Push writes idx, its images and their blobs to ref (a tag or a
// repository), authenticating with auth, and returns the reference pinned
// by the index's digest: what the CloudFormation template's ImageUri wants.
func Push(ctx context.Context, idx v1.ImageIndex, ref string, auth authn.Keychain, opts ...remote.Option) (name.Digest, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return name.Digest{}, err
	}
	d, err := idx.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	opts = append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(auth)}, opts...)
	if err := remote.WriteIndex(r, idx, opts...); err != nil {
		return name.Digest{}, fmt.Errorf("push %s: %w", r, err)
	}
	return r.Context().Digest(d.String()), nil
}

// StaticKeychain answers every registry with one username and password,
// for `aws ecr get-login-password | ... --password-stdin`.
type StaticKeychain struct{ Username, Password string }

var _ authn.Keychain = StaticKeychain{}

// Resolve implements authn.Keychain.
func (k StaticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return &authn.Basic{Username: k.Username, Password: k.Password}, nil
}
