package imageconfig

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
)

// The paths the walk looks for. sudo is looked for where distributions put
// it; the sudo profile's command finds it through PATH.
var (
	shellPath = "/bin/sh"
	sudoPaths = []string{"/usr/bin/sudo", "/bin/sudo", "/usr/sbin/sudo", "/sbin/sudo", "/usr/local/bin/sudo"}
)

// maxSymlinks is the number of symlinks followed in one path, as Linux's
// ELOOP limit.
const maxSymlinks = 40

// shellInfo is the outcome of a layer walk. nil means unknown; detail says
// why.
type shellInfo struct {
	hasShell, hasSudo *bool
	detail            string
}

// shell returns whether the image has /bin/sh and sudo, walking its layers
// once per digest. Outcomes that the image alone decides (found, absent,
// over the byte or layer budget) are cached; a timeout or a network error
// is not, so the next lookup tries again.
func (r *Resolver) shell(ctx context.Context, puller *remote.Puller, repo name.Repository, digest string, ak authKind, img v1.Image) (si shellInfo, final bool) {
	k := imageKey(repo, digest, ak)
	r.mu.Lock()
	si, ok := r.shells[k]
	r.mu.Unlock()
	if ok {
		return si, true
	}
	m, err := img.Manifest()
	if err != nil {
		return shellInfo{detail: fmt.Sprintf("manifest: %v", err)}, false
	}
	// The walk has its own time budget, apart from the config lookup's;
	// every layer request is made under it.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.o.WalkTimeout)
	defer cancel()
	open := func(d v1.Descriptor) (v1.Layer, error) {
		l, err := puller.Layer(wctx, repo.Digest(d.Digest.String()))
		if err != nil {
			return nil, err
		}
		return partial.CompressedToLayer(&boundedLayer{Layer: l, desc: d})
	}
	si, final = walkImage(wctx, m.Layers, open, r.o.MaxLayers, r.o.MaxLayerBytes)
	if final {
		r.mu.Lock()
		if _, ok := r.shells[k]; !ok {
			shrink(r.shells, r.o.MaxCacheEntries)
		}
		r.shells[k] = si
		r.mu.Unlock()
	}
	if si.hasShell == nil {
		r.log.Debug("shell unknown", "repository", repo.Name(), "digest", digest, "why", si.detail)
	}
	return si, final
}

// boundedLayer is a registry layer that reads no more compressed bytes than
// its manifest declares, and takes its size and media type from the
// manifest rather than from more requests.
type boundedLayer struct {
	v1.Layer
	desc v1.Descriptor
}

func (b *boundedLayer) Compressed() (io.ReadCloser, error) {
	rc, err := b.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	return &limitReadCloser{rc: rc, left: b.desc.Size}, nil
}

func (b *boundedLayer) Size() (int64, error)                    { return b.desc.Size, nil }
func (b *boundedLayer) MediaType() (ggcrtypes.MediaType, error) { return b.desc.MediaType, nil }

var errLayerTooLong = errors.New("the layer is longer than its manifest says")

type limitReadCloser struct {
	rc   io.ReadCloser
	left int64
}

func (l *limitReadCloser) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One byte more tells a layer that ends here from one that lies.
		var one [1]byte
		n, err := l.rc.Read(one[:])
		if n > 0 {
			return 0, errLayerTooLong
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.rc.Read(p)
	l.left -= int64(n)
	return n, err
}

func (l *limitReadCloser) Close() error { return l.rc.Close() }

// entry is a path in one layer.
type entry struct {
	kind byte   // 'f' file (or hard link), 'd' directory, 'l' symlink, 'o' other
	link string // symlink target
}

// layerView is what one layer says of the filesystem: its entries, its
// whiteouts (paths deleted from the layers below) and its opaque
// directories (whose content below is hidden).
type layerView struct {
	entries   map[string]entry
	whiteouts map[string]bool
	opaque    map[string]bool
}

// fsView is the layers read so far, top first. complete says every layer
// was read, so that a path no layer mentions does not exist.
type fsView struct {
	layers   []layerView
	complete bool
}

type lookupState int

const (
	undecided lookupState = iota
	found
	absent
)

// walkImage reads an image's layers (descs, bottom first, as in the
// manifest) from the top down until the questions are answered or a budget
// runs out. final is false when the outcome depends on more than the image
// (time, network).
func walkImage(ctx context.Context, descs []v1.Descriptor, open func(v1.Descriptor) (v1.Layer, error), maxLayers int, maxBytes int64) (si shellInfo, final bool) {
	var v fsView
	budget := maxBytes
	answer := func() (shellInfo, bool) {
		sh := v.resolve(shellPath)
		sudo := undecided
		allAbsent := true
		for _, p := range sudoPaths {
			switch v.resolve(p) {
			case found:
				sudo = found
			case undecided:
				allAbsent = false
			}
		}
		if sudo != found && allAbsent {
			sudo = absent
		}
		return shellInfo{hasShell: toBool(sh), hasSudo: toBool(sudo)}, sh != undecided && sudo != undecided
	}
	for i := len(descs) - 1; i >= 0; i-- {
		if len(v.layers) >= maxLayers {
			si, _ := answer()
			si.detail = fmt.Sprintf("more than %d layers", maxLayers)
			return si, true
		}
		if size := descs[i].Size; size > budget || size < 0 {
			si, _ := answer()
			si.detail = fmt.Sprintf("layers larger than %d bytes", maxBytes)
			return si, true
		}
		budget -= descs[i].Size
		lv, err := readLayer(ctx, descs[i], open)
		if err != nil {
			// Not final: a network error or a timeout is not the image's,
			// and a corrupt layer is rare enough to be read again.
			si, _ := answer()
			si.detail = fmt.Sprintf("reading layer %d from the top: %v", len(descs)-i, err)
			return si, false
		}
		v.layers = append(v.layers, lv)
		if si, done := answer(); done {
			return si, true
		}
	}
	v.complete = true
	si, _ = answer()
	return si, true
}

func toBool(s lookupState) *bool {
	switch s {
	case found:
		t := true
		return &t
	case absent:
		f := false
		return &f
	}
	return nil
}

// readLayer reads one layer's tar headers. The compressed bytes are bounded
// by the layer's declared size (boundedLayer), and go-containerregistry
// verifies their digest.
func readLayer(ctx context.Context, d v1.Descriptor, open func(v1.Descriptor) (v1.Layer, error)) (layerView, error) {
	lv := layerView{entries: map[string]entry{}, whiteouts: map[string]bool{}, opaque: map[string]bool{}}
	l, err := open(d)
	if err != nil {
		return lv, err
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return lv, err
	}
	defer rc.Close()
	tr := tar.NewReader(ctxReader{ctx, rc})
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return lv, nil
		}
		if err != nil {
			return lv, err
		}
		p := path.Clean("/" + h.Name)
		dir, base := path.Split(p)
		dir = path.Clean(dir)
		switch {
		case base == ".wh..wh..opq":
			lv.opaque[dir] = true
		case strings.HasPrefix(base, ".wh."):
			lv.whiteouts[path.Join(dir, strings.TrimPrefix(base, ".wh."))] = true
		default:
			e := entry{kind: 'o'}
			switch h.Typeflag {
			case tar.TypeReg, tar.TypeLink, tar.TypeGNUSparse:
				e.kind = 'f'
			case tar.TypeDir:
				e.kind = 'd'
			case tar.TypeSymlink:
				e = entry{kind: 'l', link: h.Linkname}
			}
			lv.entries[p] = e
		}
		// A layer's tar need not list the directories above its files:
		// they exist in the layer all the same.
		for a := path.Dir(p); a != "/"; a = path.Dir(a) {
			if _, ok := lv.entries[a]; ok {
				break
			}
			lv.entries[a] = entry{kind: 'd'}
		}
	}
}

// ctxReader stops a read when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// stat says what the merged filesystem has at p, without following
// symlinks in p itself, assuming p's ancestors are directories: the
// topmost layer that mentions p, a whiteout of p or of an ancestor, an
// opaque ancestor, or a non-directory ancestor decides.
func (v *fsView) stat(p string) (entry, lookupState) {
	for _, l := range v.layers {
		if e, ok := l.entries[p]; ok {
			return e, found
		}
		for a := p; a != "/"; a = path.Dir(a) {
			if l.whiteouts[a] || l.opaque[path.Dir(a)] {
				return entry{}, absent
			}
			if a != p {
				if e, ok := l.entries[a]; ok && e.kind != 'd' {
					return entry{}, absent
				}
			}
		}
	}
	if v.complete {
		return entry{}, absent
	}
	return entry{}, undecided
}

// resolve says whether p names a file in the merged filesystem, following
// symlinks (absolute ones from the image's root) in every component, as
// exec would.
func (v *fsView) resolve(p string) lookupState {
	todo := strings.Split(p, "/")
	cur := "/"
	last := entry{kind: 'd'}
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			last = entry{kind: 'd'}
			continue
		}
		if last.kind != 'd' {
			return absent // ENOTDIR
		}
		next := path.Join(cur, c)
		e, st := v.stat(next)
		if st != found {
			return st
		}
		if e.kind == 'l' {
			hops++
			if hops > maxSymlinks {
				return absent // ELOOP
			}
			if path.IsAbs(e.link) {
				cur = "/"
			}
			todo = append(strings.Split(e.link, "/"), todo...)
			last = entry{kind: 'd'}
			continue
		}
		cur, last = next, e
	}
	if last.kind == 'f' {
		return found
	}
	return absent
}
