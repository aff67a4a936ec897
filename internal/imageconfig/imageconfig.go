// Package imageconfig reads what a container image declares (ENTRYPOINT,
// CMD, USER) from its registry, the way ECS would pull it: ECR with the
// reconciler's own ecr:GetAuthorizationToken, private registries with the
// container's repositoryCredentials secret, public registries anonymously,
// and multi-arch indexes resolved to the task's CPU architecture.
//
// Most task definitions state neither entryPoint nor command; the wrapper
// entrypoint replaces the image's ENTRYPOINT and, by Docker's merge rules,
// drops its CMD, so the patch must know both (aws-facts.md §5). A lookup
// that fails says why with a LookupError; the patch then refuses the family
// unless the task definition states the whole command. Nothing is guessed.
package imageconfig

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"

	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// Options of New. Zero values take the defaults documented on each field.
type Options struct {
	// ECR gets authorization tokens for ECR registries of its own Region
	// (and of every Region when ECRFor is nil).
	ECR ECRAPI
	// ECRFor, when set, returns the client for an ECR registry's Region, so
	// that images in other Regions are read with a token of their Region.
	ECRFor func(region string) ECRAPI
	// Secrets reads the repositoryCredentials secrets of private registries
	// (those of its own Region, and of every Region when SecretsFor is nil).
	Secrets SecretsAPI
	// SecretsFor, when set, returns the client for a secret's Region (from
	// its ARN), so that a secret in another Region is read there.
	SecretsFor func(region string) SecretsAPI
	// Keychain, when set, gives the credentials of registries that are
	// neither ECR nor named by a container's repositoryCredentials (render
	// sets authn.DefaultKeychain: docker login's credentials); a registry
	// it knows nothing of is read anonymously. Default: none, anonymous.
	Keychain authn.Keychain
	// IsECR says whether a registry host is a private ECR registry, and its
	// Region. Default ECRRegion; tests point it at a loopback registry.
	IsECR func(registry string) (region string, ok bool)
	// Insecure says whether a registry is spoken to over plain http.
	// go-containerregistry already does so for loopback and RFC 1918
	// addresses; this adds others. Default: none.
	Insecure func(registry string) bool
	// Transport is the HTTP transport to registries (default
	// remote.DefaultTransport).
	Transport http.RoundTripper
	// RootCAs, when set, verifies registries' certificates instead of the
	// system's roots (RootCAs builds it: the system's plus CA files). It
	// needs Transport to be an *http.Transport, which is copied.
	RootCAs *x509.CertPool
	// PinDigest makes Images set patch.Image.Pin: the twin runs the image
	// by the digest that was read, not by its tag.
	PinDigest bool

	// TagTTL is how long a tag's resolution is trusted before the registry
	// is asked again (default 5 minutes). Digests are immutable and cached
	// for good.
	TagTTL time.Duration
	// Timeout bounds one lookup's registry work (default 30 seconds).
	Timeout time.Duration
	// MaxConcurrent bounds the lookups that talk to registries at once
	// (default 8).
	MaxConcurrent int
	// MaxCacheEntries bounds each cache (default 10,000 images).
	MaxCacheEntries int

	// DetectShell walks the image's layers to tell whether /bin/sh and sudo
	// exist (Config.HasShell, HasSudo), for the profile's distroless: auto
	// and nonRoot: sudo. Off, both stay unknown.
	DetectShell bool
	// MaxLayerBytes bounds the compressed bytes the walk reads per image
	// (default 256 MiB); past it the answer is unknown.
	MaxLayerBytes int64
	// MaxLayers bounds the layers the walk reads per image (default 128).
	MaxLayers int
	// WalkTimeout bounds the walk's time per image (default the Timeout).
	WalkTimeout time.Duration

	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger gets one debug line per registry lookup (default: discard).
	Logger *slog.Logger
}

// Config is what an image declares, as read from its registry.
type Config struct {
	Entrypoint []string
	Cmd        []string
	User       string
	// Digest is the digest of the image manifest read (for a multi-arch
	// index, the platform's image, not the index).
	Digest string
	// IndexDigest is the digest of the index the image was chosen from;
	// empty for a single-platform reference.
	IndexDigest string
	// Platform is os/arch asked for.
	Platform string
	// Source says where the config came from: registry reference and the
	// kind of authentication (anonymous, ecr, secret).
	Source string
	// HasShell and HasSudo say whether /bin/sh and sudo exist in the image;
	// nil when unknown (DetectShell off, or the walk could not tell).
	HasShell *bool
	HasSudo  *bool
	// ShellDetail says why HasShell is unknown, when it is.
	ShellDetail string
}

// ToPatch converts c to what the patch reads, with Known set.
func (c Config) ToPatch() patch.Image {
	return patch.Image{
		Entrypoint: slices.Clone(c.Entrypoint),
		Cmd:        slices.Clone(c.Cmd),
		User:       c.User,
		Digest:     c.Digest,
		Known:      true,
		HasShell:   cloneBool(c.HasShell),
		HasSudo:    cloneBool(c.HasSudo),
		Source:     c.Source,
	}
}

func (c Config) clone() Config {
	c.Entrypoint = slices.Clone(c.Entrypoint)
	c.Cmd = slices.Clone(c.Cmd)
	c.HasShell = cloneBool(c.HasShell)
	c.HasSudo = cloneBool(c.HasSudo)
	return c
}

func cloneBool(b *bool) *bool {
	if b == nil {
		return nil
	}
	v := *b
	return &v
}

// Resolver reads image configs with caches. Safe for concurrent use.
type Resolver struct {
	o   Options
	log *slog.Logger
	sem *semaphore.Weighted

	anonymous *remote.Puller // shared: keeps its per-repository transports

	flight      singleflight.Group // lookups, by lookup key
	tokenFlight singleflight.Group // ECR tokens, by Region

	mu     sync.Mutex
	tokens map[string]*ecrToken // by Region
	refs   map[string]refEntry  // by lookup key: tags (TTL) and digests (forever)
	images map[string]Config    // by repository@image-digest and identity
	shells map[string]shellInfo // walk results by repository@image-digest and identity
}

// refEntry is a reference's resolution: the config and the digest the
// reference pointed to (index or image), for revalidating a tag with HEAD.
type refEntry struct {
	cfg     Config
	top     string // the digest the reference resolved to
	fetched time.Time
	digest  bool // a digest reference: never expires
	retry   bool // the shell walk failed: once expired, look up in full
}

// New returns a Resolver.
func New(o Options) (*Resolver, error) {
	if o.TagTTL == 0 {
		o.TagTTL = 5 * time.Minute
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxConcurrent == 0 {
		o.MaxConcurrent = 8
	}
	if o.MaxCacheEntries == 0 {
		o.MaxCacheEntries = 10000
	}
	if o.MaxLayerBytes == 0 {
		o.MaxLayerBytes = 256 << 20
	}
	if o.MaxLayers == 0 {
		o.MaxLayers = 128
	}
	if o.WalkTimeout == 0 {
		o.WalkTimeout = o.Timeout
	}
	if o.IsECR == nil {
		o.IsECR = ECRRegion
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Transport == nil {
		o.Transport = remote.DefaultTransport
	}
	if o.RootCAs != nil {
		t, err := withRootCAs(o.Transport, o.RootCAs)
		if err != nil {
			return nil, err
		}
		o.Transport = t
	}
	var bad []string
	if o.TagTTL < 0 {
		bad = append(bad, fmt.Sprintf("tag TTL %v is negative", o.TagTTL))
	}
	if o.Timeout < 0 || o.WalkTimeout < 0 {
		bad = append(bad, "timeouts must be positive")
	}
	if o.MaxConcurrent < 0 || o.MaxCacheEntries < 0 || o.MaxLayers < 0 || o.MaxLayerBytes < 0 {
		bad = append(bad, "limits must be positive")
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("imageconfig: %s", strings.Join(bad, "; "))
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := &Resolver{
		o:      o,
		log:    log,
		sem:    semaphore.NewWeighted(int64(o.MaxConcurrent)),
		tokens: map[string]*ecrToken{},
		refs:   map[string]refEntry{},
		images: map[string]Config{},
		shells: map[string]shellInfo{},
	}
	p, err := r.newPuller(authn.Anonymous)
	if err != nil {
		return nil, err
	}
	r.anonymous = p
	return r, nil
}

func (r *Resolver) newPuller(auth authn.Authenticator) (*remote.Puller, error) {
	p, err := remote.NewPuller(remote.WithAuth(auth), remote.WithTransport(r.o.Transport))
	if err != nil {
		return nil, fmt.Errorf("imageconfig: %w", err)
	}
	return p, nil
}

// Platform returns the os/arch ECS runs a task definition's containers on:
// linux (or windows) and amd64 unless cpuArchitecture is ARM64.
func Platform(rp *types.RuntimePlatform) (v1.Platform, error) {
	p := v1.Platform{OS: "linux", Architecture: "amd64"}
	if rp == nil {
		return p, nil
	}
	switch rp.CpuArchitecture {
	case "", types.CPUArchitectureX8664:
	case types.CPUArchitectureArm64:
		p.Architecture = "arm64"
	default:
		return p, fmt.Errorf("runtimePlatform.cpuArchitecture %q is not X86_64 or ARM64", rp.CpuArchitecture)
	}
	if strings.HasPrefix(string(rp.OperatingSystemFamily), "WINDOWS") {
		p.OS = "windows"
	}
	return p, nil
}

// authKind is how a lookup authenticates: it is part of every cache key, so
// that a container whose credentials are wrong is never answered from what
// another container's credentials read.
type authKind struct {
	kind     string // anonymous, ecr, secret, keychain
	region   string // ecr
	secretID string // secret
}

func (a authKind) identity() string {
	if a.kind == "secret" {
		return "secret:" + a.secretID
	}
	return a.kind
}

// Resolve reads the config of container c's image for the task's runtime
// platform (nil: linux/amd64). Errors are *LookupError.
func (r *Resolver) Resolve(ctx context.Context, c *types.ContainerDefinition, rp *types.RuntimePlatform) (Config, error) {
	image := aws.ToString(c.Image)
	plat, err := Platform(rp)
	if err != nil {
		return Config{}, &LookupError{Code: CodeInvalidReference, Image: image, Err: err}
	}
	ref, err := r.parse(image)
	if err != nil {
		return Config{}, &LookupError{Code: CodeInvalidReference, Image: image, Err: err}
	}
	ak := authKind{kind: "anonymous"}
	if region, ok := r.o.IsECR(ref.Context().RegistryStr()); ok {
		ak = authKind{kind: "ecr", region: region}
	} else if c.RepositoryCredentials != nil && aws.ToString(c.RepositoryCredentials.CredentialsParameter) != "" {
		ak = authKind{kind: "secret", secretID: aws.ToString(c.RepositoryCredentials.CredentialsParameter)}
	} else if r.o.Keychain != nil {
		ak = authKind{kind: "keychain"}
	}
	key := ref.Name() + "|" + plat.String() + "|" + ak.identity()

	r.mu.Lock()
	e, ok := r.refs[key]
	r.mu.Unlock()
	if ok && r.fresh(e) {
		return e.cfg.clone(), nil
	}

	ch := r.flight.DoChan(key, func() (any, error) {
		// The flight outlives any one caller: each caller waits for it
		// under its own context, and the flight has its own timeout.
		fctx := context.WithoutCancel(ctx)
		if err := r.sem.Acquire(fctx, 1); err != nil {
			return nil, err
		}
		defer r.sem.Release(1)
		fctx, cancel := context.WithTimeout(fctx, r.o.Timeout)
		defer cancel()
		r.log.Debug("resolving image", "image", image, "platform", plat.String(), "auth", ak.kind)
		cfg, err := r.lookup(fctx, image, ref, plat, ak, key)
		if err != nil {
			r.log.Debug("image lookup failed", "image", image, "code", CodeOf(err), "err", err)
			return nil, err
		}
		r.log.Debug("resolved image", "image", image, "digest", cfg.Digest, "source", cfg.Source)
		return cfg, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return Config{}, lookupErr(image, "", res.Err)
		}
		return res.Val.(Config).clone(), nil
	case <-ctx.Done():
		return Config{}, lookupErr(image, "", ctx.Err())
	}
}

func (r *Resolver) parse(image string) (name.Reference, error) {
	if image == "" {
		return nil, fmt.Errorf("the container has no image")
	}
	ref, err := name.ParseReference(image)
	if err != nil {
		return nil, err
	}
	if r.o.Insecure != nil && r.o.Insecure(ref.Context().RegistryStr()) {
		return name.ParseReference(image, name.Insecure)
	}
	return ref, nil
}

// lookup talks to the registry: at most a HEAD for a tag whose TTL ran out,
// otherwise the manifest (and the platform's manifest for an index) and the
// config blob, skipping the config when the image digest is cached.
func (r *Resolver) lookup(ctx context.Context, image string, ref name.Reference, plat v1.Platform, ak authKind, key string) (Config, error) {
	_, isDigest := ref.(name.Digest)

	now := r.o.Now()
	r.mu.Lock()
	old, stale := r.refs[key]
	r.mu.Unlock()
	if stale && r.fresh(old) {
		return old.cfg, nil // stored by the flight that ended just before this one
	}
	var puller *remote.Puller
	authSource := ak.kind // what Source says: the keychain's answer may be anonymous
	switch ak.kind {
	case "ecr":
		p, err := r.ecrPuller(ctx, ak.region)
		if err != nil {
			return Config{}, lookupErr(image, CodeCredentials, err)
		}
		puller = p
	case "secret":
		auth, err := r.secretAuth(ctx, ak.secretID)
		if err != nil {
			return Config{}, lookupErr(image, CodeCredentials, err)
		}
		// A puller of its own, dropped after this lookup: the credentials
		// are not kept.
		p, err := r.newPuller(auth)
		if err != nil {
			return Config{}, err
		}
		puller = p
	case "keychain":
		p, kind, err := r.keychainPuller(ctx, ref)
		if err != nil {
			return Config{}, lookupErr(image, CodeCredentials, err)
		}
		puller, authSource = p, kind
	default:
		puller = r.anonymous
	}
	if stale && !isDigest && !old.retry {
		// The tag's TTL ran out: a HEAD tells whether it still points where
		// it did.
		d, err := puller.Head(ctx, ref)
		if err != nil {
			return Config{}, lookupErr(image, "", err)
		}
		if d.Digest.String() == old.top {
			old.fetched = now
			r.storeRef(key, old)
			return old.cfg, nil
		}
	}

	desc, err := puller.Get(ctx, ref)
	if err != nil {
		return Config{}, lookupErr(image, "", err)
	}
	top := desc.Digest.String()
	repo := ref.Context()
	cfg := Config{Platform: plat.String(), Source: fmt.Sprintf("registry %s (%s)", ref.Name(), authSource)}
	var img v1.Image
	switch mt := desc.MediaType; {
	case mt.IsSchema1():
		return Config{}, &LookupError{Code: CodeSchema1, Image: image, Err: fmt.Errorf("schema 1 manifest %s has no image config", top)}
	case mt.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return Config{}, lookupErr(image, "", err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return Config{}, lookupErr(image, "", err)
		}
		child, ok := pick(im, plat)
		if !ok {
			return Config{}, &LookupError{Code: CodePlatformMissing, Image: image, Err: fmt.Errorf("index %s has no %s image (it has %s)", top, plat.String(), platforms(im))}
		}
		cfg.IndexDigest = top
		cfg.Digest = child.Digest.String()
		if c, ok := r.cachedImage(repo, cfg.Digest, ak); ok {
			return r.keep(key, c, cfg, top, isDigest, now), nil
		}
		cd, err := puller.Get(ctx, repo.Digest(cfg.Digest))
		if err != nil {
			return Config{}, lookupErr(image, "", err)
		}
		if cd.MediaType.IsSchema1() {
			return Config{}, &LookupError{Code: CodeSchema1, Image: image, Err: fmt.Errorf("schema 1 manifest %s has no image config", cfg.Digest)}
		}
		if !cd.MediaType.IsImage() {
			return Config{}, &LookupError{Code: CodeUnsupported, Image: image, Err: fmt.Errorf("index %s: %s entry is %s, not an image", top, plat.String(), cd.MediaType)}
		}
		if img, err = cd.Image(); err != nil {
			return Config{}, lookupErr(image, "", err)
		}
	case mt.IsImage():
		cfg.Digest = top
		if c, ok := r.cachedImage(repo, cfg.Digest, ak); ok {
			return r.keep(key, c, cfg, top, isDigest, now), nil
		}
		if img, err = desc.Image(); err != nil {
			return Config{}, lookupErr(image, "", err)
		}
	default:
		return Config{}, &LookupError{Code: CodeUnsupported, Image: image, Err: fmt.Errorf("%s is %s, not an image", top, mt)}
	}

	cf, err := img.ConfigFile()
	if err != nil {
		return Config{}, lookupErr(image, "", fmt.Errorf("config of %s: %w", cfg.Digest, err))
	}
	if cf == nil {
		return Config{}, &LookupError{Code: CodeUnsupported, Image: image, Err: fmt.Errorf("%s has no config", cfg.Digest)}
	}
	cfg.Entrypoint = slices.Clone(cf.Config.Entrypoint)
	cfg.Cmd = slices.Clone(cf.Config.Cmd)
	cfg.User = cf.Config.User
	final := true
	if r.o.DetectShell {
		var si shellInfo
		si, final = r.shell(ctx, puller, repo, cfg.Digest, ak, img)
		cfg.HasShell, cfg.HasSudo, cfg.ShellDetail = si.hasShell, si.hasSudo, si.detail
	}
	if !final {
		// The walk failed for a reason not the image's (time, network):
		// answer, but keep the reference only for its TTL and the image not
		// at all, so that the next lookup walks again.
		c := cfg.clone()
		r.storeRef(key, refEntry{cfg: c, top: top, fetched: now, retry: true})
		return c, nil
	}
	r.storeImage(repo, cfg.Digest, ak, cfg)
	return r.keep(key, cfg, cfg, top, isDigest, now), nil
}

// fresh says whether a reference's resolution may be used without asking
// the registry.
func (r *Resolver) fresh(e refEntry) bool {
	if e.digest && !e.retry {
		return true
	}
	return r.o.Now().Before(e.fetched.Add(r.o.TagTTL))
}

// keep records the reference's resolution and returns cfg with the
// per-reference fields (index digest, source) of ref.
func (r *Resolver) keep(key string, cached, ref Config, top string, isDigest bool, now time.Time) Config {
	c := cached.clone()
	c.IndexDigest, c.Platform, c.Source = ref.IndexDigest, ref.Platform, ref.Source
	r.storeRef(key, refEntry{cfg: c, top: top, fetched: now, digest: isDigest})
	return c
}

func (r *Resolver) storeRef(key string, e refEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.refs[key]; !ok {
		shrink(r.refs, r.o.MaxCacheEntries)
	}
	r.refs[key] = e
}

func imageKey(repo name.Repository, digest string, ak authKind) string {
	return repo.Name() + "@" + digest + "|" + ak.identity()
}

// cachedImage returns the config of an image digest already read.
func (r *Resolver) cachedImage(repo name.Repository, digest string, ak authKind) (Config, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.images[imageKey(repo, digest, ak)]
	return c, ok
}

func (r *Resolver) storeImage(repo name.Repository, digest string, ak authKind, c Config) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := imageKey(repo, digest, ak)
	if _, ok := r.images[k]; !ok {
		shrink(r.images, r.o.MaxCacheEntries)
	}
	r.images[k] = c.clone()
}

// shrink drops about a quarter of m when it is full. Entries are cheap to
// read again; the bound only keeps a long-running process from growing with
// every image ever deployed.
func shrink[V any](m map[string]V, max int) {
	if len(m) < max {
		return
	}
	n := max / 4
	if n == 0 {
		n = 1
	}
	for k := range m {
		if n == 0 {
			break
		}
		delete(m, k)
		n--
	}
}

// pick chooses the image of platform p in an index, as the container
// runtime does: same OS and architecture; a variant only when asked for.
func pick(im *v1.IndexManifest, p v1.Platform) (v1.Descriptor, bool) {
	for _, d := range im.Manifests {
		if d.Platform == nil {
			continue
		}
		if d.Platform.OS == p.OS && d.Platform.Architecture == p.Architecture &&
			(p.Variant == "" || d.Platform.Variant == p.Variant) && isManifest(d.MediaType) {
			return d, true
		}
	}
	return v1.Descriptor{}, false
}

func isManifest(mt ggcrtypes.MediaType) bool {
	return mt == "" || mt.IsImage() || mt.IsSchema1()
}

func platforms(im *v1.IndexManifest) string {
	var s []string
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.OS != "unknown" {
			s = append(s, d.Platform.String())
		}
	}
	if len(s) == 0 {
		return "no platform"
	}
	return strings.Join(s, ", ")
}

// Images resolves every container of td, concurrently, and returns the
// configs read by container name, with one error per container that could
// not be read (a *LookupError, wrapped with the container's name). It is
// the controller's ImageResolver and what render --resolve-images calls.
func (r *Resolver) Images(ctx context.Context, td *types.TaskDefinition) (map[string]patch.Image, []error) {
	type result struct {
		name string
		img  patch.Image
		err  error
	}
	results := make([]result, len(td.ContainerDefinitions))
	var wg sync.WaitGroup
	for i := range td.ContainerDefinitions {
		c := &td.ContainerDefinitions[i]
		wg.Go(func() {
			cfg, err := r.Resolve(ctx, c, td.RuntimePlatform)
			img := cfg.ToPatch()
			if r.o.PinDigest && err == nil {
				img.Pin = PinnedReference(aws.ToString(c.Image), cfg)
			}
			results[i] = result{name: aws.ToString(c.Name), img: img, err: err}
		})
	}
	wg.Wait()
	images := map[string]patch.Image{}
	var errs []error
	for _, x := range results {
		if x.err != nil {
			errs = append(errs, fmt.Errorf("container %s: %w", x.name, x.err))
			continue
		}
		images[x.name] = x.img
	}
	return images, errs
}

// DetectShellFor says whether profile p reads what the layer walk finds
// (Options.DetectShell): the lacework profile's distroless: auto, and any
// profile's nonRoot: sudo. Without it the walk's bytes need not be spent.
func DetectShellFor(p patch.Profile) bool {
	p = p.WithDefaults()
	return (p.Type == patch.ProfileTypeLacework && p.Distroless == patch.DistrolessAuto) || p.NonRoot == patch.NonRootSudo
}
