package imageconfig

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strings"
)

// InsecureHosts returns an Options.Insecure that allows plain http for the
// registries listed (host or host:port, as image references write them;
// compared without regard to case). The registry is still asked over https
// first, with its certificate verified; plain http is the fallback.
func InsecureHosts(hosts []string) func(registry string) bool {
	if len(hosts) == 0 {
		return nil
	}
	set := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		set[strings.ToLower(h)] = true
	}
	return func(registry string) bool { return set[strings.ToLower(registry)] }
}

// MaxCAFileBytes bounds a CA file: a bundle of a few hundred certificates
// fits; a file larger than this is not a CA bundle.
const MaxCAFileBytes = 1 << 20

// ReadCAFile reads the PEM certificates of a CA file. The error says what
// is wrong with the file without quoting its content.
func ReadCAFile(path string) ([]*x509.Certificate, error) {
	fi, err := os.Stat(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("cannot read %s: %v", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("cannot read %s: %v", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxCAFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s", path)
	}
	if len(b) > MaxCAFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a CA bundle", path, MaxCAFileBytes)
	}
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			// A private key given by mistake is refused, not skipped: the
			// user meant something else.
			return nil, fmt.Errorf("%s: PEM block %d is %q, not CERTIFICATE", path, n, blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: PEM block %d is not an X.509 certificate", path, n)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path)
	}
	return certs, nil
}

// RootCAs returns the system's roots with the certificates of files added,
// for Options.RootCAs; nil when files is empty (the system's roots alone).
func RootCAs(files []string) (*x509.CertPool, error) {
	if len(files) == 0 {
		return nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, f := range files {
		certs, err := ReadCAFile(f)
		if err != nil {
			return nil, fmt.Errorf("imageconfig: CA file: %w", err)
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
	}
	return pool, nil
}

// withRootCAs returns a copy of t that verifies registries' certificates
// against pool.
func withRootCAs(t http.RoundTripper, pool *x509.CertPool) (http.RoundTripper, error) {
	ht, ok := t.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("imageconfig: RootCAs needs an *http.Transport as Transport, got %T", t)
	}
	ht = ht.Clone()
	if ht.TLSClientConfig == nil {
		ht.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	ht.TLSClientConfig.RootCAs = pool
	return ht, nil
}

// secretRegion is the Region of a Secrets Manager secret ARN
// (arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME), or "" for a
// name, which ECS resolves in the task's Region.
func secretRegion(id string) string {
	parts := strings.SplitN(id, ":", 7)
	if len(parts) < 7 || parts[0] != "arn" || parts[2] != "secretsmanager" {
		return ""
	}
	return parts[3]
}

// PinnedReference is image rewritten to the digest the lookup resolved: the
// index's for a multi-platform image (so that ECS still picks the
// platform), else the image's, with the tag dropped. It is "" when image is
// a digest reference already (ECS runs that digest) or nothing was
// resolved.
func PinnedReference(image string, c Config) string {
	d := c.IndexDigest
	if d == "" {
		d = c.Digest
	}
	if d == "" || strings.Contains(image, "@") {
		return ""
	}
	repo := image
	slash := strings.LastIndexByte(repo, '/')
	if i := strings.LastIndexByte(repo[slash+1:], ':'); i >= 0 {
		repo = repo[:slash+1+i]
	}
	return repo + "@" + d
}
