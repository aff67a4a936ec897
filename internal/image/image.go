// Package image builds the reconciler's container image without a Docker
// engine: it cross-compiles the production binary (-tags noembedded, without
// the embedded AWS) for each platform, puts it with a CA bundle and a
// non-root user on an empty base, and assembles an OCI image index of the
// platforms, which it writes as an OCI image layout or pushes to a registry.
//
// It uses go-containerregistry rather than ko: the module is already a
// dependency (internal/imageconfig reads image configs with it), so the
// build needs no other tool to install, and the tests build, inspect, run
// and push the image in-process, against go-containerregistry's in-memory
// registry on loopback. ko would do the same work behind a command whose
// output a test can only read from the outside.
package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's fixed contents. BinaryPath is where the Dockerfile puts the
// binary too, and what the CloudFormation template's health check runs.
const (
	BinaryPath = "/reconciler"
	CABundle   = "/etc/ssl/certs/ca-certificates.crt"
	UID        = 65532
	User       = "65532:65532"
	MetricsTCP = "9102/tcp"
	// ProductionTag is the build tag that leaves internal/awssim out.
	ProductionTag = "noembedded"
	// DefaultSource is the org.opencontainers.image.source label.
	DefaultSource = "https://github.com/ecs-sidecar/reconciler"
	// Package is the binary the image runs.
	Package = "./cmd/reconciler"
)

// DefaultPlatforms are the Fargate architectures: X86_64 and ARM64
// (Graviton, cheaper per vCPU-hour).
var DefaultPlatforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}

// Options say what to build. The zero value of each field has a default.
type Options struct {
	// ModuleDir is the directory of the reconciler's go.mod; default ".".
	ModuleDir string
	// Version is linked in as main.version and labels the image; default "dev".
	Version string
	// Platforms to build; default DefaultPlatforms. Only linux.
	Platforms []v1.Platform
	// CACerts is the build machine's CA bundle copied into the image;
	// default CABundle.
	CACerts string
	// Created is the images' creation time and every file's time; default
	// the Unix epoch, so that the same sources give the same digests.
	// SourceDateEpoch reads it from SOURCE_DATE_EPOCH.
	Created time.Time
	// Source is the org.opencontainers.image.source label; default DefaultSource.
	Source string
	// WorkDir receives the binaries, one per platform; default a temporary
	// directory removed when Build returns (Assemble holds each binary's
	// layer in memory, compressed, so the index outlives the files).
	WorkDir string
	// Go is the go command; default "go".
	Go string
	// Package is the main package compiled; default Package (the
	// reconciler). Tests compile a small stand-in for the platforms they
	// cannot run, to spare a cold cache the whole cross-compile.
	Package string
	// KeepPaths leaves out -trimpath, so that the compile shares the go
	// build cache with `go vet` and `go build` of the same tree: tests use
	// it on a cold CI cache; images are built with -trimpath.
	KeepPaths bool
	// Log receives a line per step; default nowhere.
	Log io.Writer
}

func (o Options) withDefaults() Options {
	if o.ModuleDir == "" {
		o.ModuleDir = "."
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if len(o.Platforms) == 0 {
		o.Platforms = DefaultPlatforms
	}
	if o.CACerts == "" {
		o.CACerts = CABundle
	}
	if o.Created.IsZero() {
		o.Created = time.Unix(0, 0)
	}
	o.Created = o.Created.UTC()
	if o.Source == "" {
		o.Source = DefaultSource
	}
	if o.Go == "" {
		o.Go = "go"
	}
	if o.Package == "" {
		o.Package = Package
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}

// SourceDateEpoch parses SOURCE_DATE_EPOCH (reproducible-builds.org): the
// zero time when the variable is empty.
func SourceDateEpoch(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	s, err := strconv.ParseInt(v, 10, 64)
	if err != nil || s < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970", v)
	}
	return time.Unix(s, 0).UTC(), nil
}

// ParsePlatforms reads "linux/amd64,linux/arm64".
func ParsePlatforms(s string) ([]v1.Platform, error) {
	var ps []v1.Platform
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := v1.ParsePlatform(f)
		if err != nil {
			return nil, err
		}
		if p.OS != "linux" || p.Architecture == "" {
			return nil, fmt.Errorf("platform %q: want linux/ARCH (linux/amd64, linux/arm64)", f)
		}
		if slices.ContainsFunc(ps, func(q v1.Platform) bool { return q.Equals(*p) }) {
			return nil, fmt.Errorf("platform %q twice", f)
		}
		ps = append(ps, *p)
	}
	if len(ps) == 0 {
		return nil, errors.New("no platform")
	}
	return ps, nil
}

// Binary is a compiled reconciler for one platform.
type Binary struct {
	Platform v1.Platform
	Path     string
}

// Compile cross-compiles the production binary for each platform, as
// `make build` does plus -tags noembedded: CGO_ENABLED=0, -trimpath,
// -ldflags "-s -w -X main.version=VERSION".
func Compile(ctx context.Context, o Options, dir string) ([]Binary, error) {
	o = o.withDefaults()
	var bins []Binary
	for _, p := range o.Platforms {
		if p.OS != "linux" {
			return nil, fmt.Errorf("platform %s: only linux", p)
		}
		out, err := filepath.Abs(filepath.Join(dir, "reconciler-"+p.OS+"-"+p.Architecture+variantSuffix(p)))
		if err != nil {
			return nil, err
		}
		args := []string{"build", "-trimpath", "-tags", ProductionTag, "-ldflags", "-s -w -X main.version=" + o.Version, "-o", out, o.Package}
		if o.KeepPaths {
			args = slices.Delete(args, 1, 2)
		}
		cmd := exec.CommandContext(ctx, o.Go, args...)
		cmd.Dir = o.ModuleDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
		if p.Variant != "" && p.Architecture == "arm" {
			cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
		}
		start := time.Now()
		if msg, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build for %s: %w\n%s", p, err, msg)
		}
		fmt.Fprintf(o.Log, "image: compiled %s for %s in %s\n", o.Package, p, time.Since(start).Round(100*time.Millisecond))
		bins = append(bins, Binary{Platform: p, Path: out})
	}
	return bins, nil
}

func variantSuffix(p v1.Platform) string {
	if p.Variant == "" {
		return ""
	}
	return "-" + p.Variant
}

// Build compiles the binaries and assembles the index.
func Build(ctx context.Context, o Options) (v1.ImageIndex, error) {
	o = o.withDefaults()
	// Read the CA bundle first: a missing one should not cost two compiles.
	if _, err := readCABundle(o.CACerts); err != nil {
		return nil, err
	}
	dir := o.WorkDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "reconciler-image-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	bins, err := Compile(ctx, o, dir)
	if err != nil {
		return nil, err
	}
	return Assemble(o, bins)
}

// Assemble puts each binary into an image and the images into an OCI
// index. The same binaries and options give the same digests.
func Assemble(o Options, bins []Binary) (v1.ImageIndex, error) {
	o = o.withDefaults()
	certs, err := readCABundle(o.CACerts)
	if err != nil {
		return nil, err
	}
	base, err := baseLayer(certs, o.Created)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{
		"org.opencontainers.image.title":       "ecs-sidecar-reconciler",
		"org.opencontainers.image.description": "adds a security agent sidecar to ECS task definitions and moves services to them",
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.source":      o.Source,
		"org.opencontainers.image.created":     o.Created.Format(time.RFC3339),
	}
	var revision string
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, b := range bins {
		bin, err := os.ReadFile(b.Path)
		if err != nil {
			return nil, err
		}
		rev := binaryRevision(b.Path)
		if revision == "" {
			revision = rev
		}
		img, err := platformImage(o, b.Platform, base, bin, labels, rev)
		if err != nil {
			return nil, fmt.Errorf("image for %s: %w", b.Platform, err)
		}
		p := b.Platform
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	anns := map[string]string{}
	for k, v := range labels {
		anns[k] = v
	}
	if revision != "" {
		anns["org.opencontainers.image.revision"] = revision
	}
	return mutate.Annotations(idx, anns).(v1.ImageIndex), nil
}

func platformImage(o Options, p v1.Platform, base v1.Layer, bin []byte, labels map[string]string, revision string) (v1.Image, error) {
	app, err := gzipLayer([]tarEntry{{name: strings.TrimPrefix(BinaryPath, "/"), mode: 0o755, body: bin}}, o.Created)
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: o.Created}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "reconciler image: /etc/passwd, /etc/group (nonroot 65532), " + CABundle, Comment: "internal/image"}},
		mutate.Addendum{Layer: app, History: v1.History{Created: created, CreatedBy: "reconciler image: " + BinaryPath + " (go build -tags " + ProductionTag + ", " + o.Version + ")", Comment: "internal/image"}},
	)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = created
	cf.Author = ""
	cf.Config.User = User
	cf.Config.Entrypoint = []string{BinaryPath}
	cf.Config.Cmd = []string{"run"}
	cf.Config.WorkingDir = "/"
	cf.Config.Env = []string{"HOME=/home/nonroot", "SSL_CERT_FILE=" + CABundle}
	cf.Config.ExposedPorts = map[string]struct{}{MetricsTCP: {}}
	cf.Config.Labels = map[string]string{}
	for k, v := range labels {
		cf.Config.Labels[k] = v
	}
	if revision != "" {
		cf.Config.Labels["org.opencontainers.image.revision"] = revision
	}
	return mutate.ConfigFile(img, cf)
}

// binaryRevision is the VCS revision the go command stamped into the
// binary ("+dirty" when the work tree had changes), or "".
func binaryRevision(path string) string {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return ""
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" && modified == "true" {
		rev += "+dirty"
	}
	return rev
}

func readCABundle(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("CA bundle %s is missing: the image needs it for TLS to AWS (Debian/Ubuntu: apt-get install ca-certificates; elsewhere pass the bundle's path)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("CA bundle: %w", err)
	}
	if !bytes.Contains(b, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("CA bundle %s has no PEM certificate", path)
	}
	return b, nil
}

// The user's name and home follow distroless's nonroot user, which the
// Dockerfile's base has, so that both images agree.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group = "root:x:0:\nnonroot:x:65532:\n"
)

// baseLayer is what every platform shares: the users, the CA bundle and
// the directories a program expects (a writable /tmp, the user's home).
// The same bytes in each image make one blob in a layout or a registry.
func baseLayer(certs []byte, t time.Time) (v1.Layer, error) {
	return gzipLayer([]tarEntry{
		{name: "etc/", dir: true, mode: 0o755},
		{name: "etc/group", mode: 0o644, body: []byte(group)},
		{name: "etc/passwd", mode: 0o644, body: []byte(passwd)},
		{name: "etc/ssl/", dir: true, mode: 0o755},
		{name: "etc/ssl/certs/", dir: true, mode: 0o755},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, body: certs},
		{name: "home/", dir: true, mode: 0o755},
		{name: "home/nonroot/", dir: true, mode: 0o700, uid: UID},
		{name: "tmp/", dir: true, mode: 0o1777},
	}, t)
}

type tarEntry struct {
	name string
	dir  bool
	mode int64
	uid  int
	body []byte
}

// gzipLayer writes the entries as a gzipped tar, every time t and owner
// root unless said otherwise, then makes an OCI layer of the bytes.
func gzipLayer(entries []tarEntry, t time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{
			Name: e.name, Mode: e.mode, ModTime: t, Uid: e.uid, Gid: e.uid,
			Typeflag: tar.TypeReg, Size: int64(len(e.body)),
		}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
