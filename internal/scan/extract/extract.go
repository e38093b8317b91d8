// Package extract inventories an image: it reads each layer once, as a
// stream (package layers), hands the few files that matter to osv-scalibr's
// extractors (dpkg, apk, rpm, Go and Rust binaries, npm, Python, Java, Ruby,
// .NET), keeps what each layer holds as a LayerResult that a LayerCache can
// keep by diffID, and composes the layers' results into an
// inventory.Inventory the way a container runtime stacks the layers.
//
// Layers are hostile input: names that climb out of the root, links that
// point out of it, decompression bombs, huge or sparse files, corrupt
// streams and unknown media types each fail with an error naming the
// problem (see package layers), within the Config's limits of time, memory
// and disk. Nothing is written outside a private temp dir, and only the
// files an extractor reads are written there, one at a time.
package extract

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/singleflight"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/scan/layers"
)

// Config configures an Extractor. The zero value of each field means its
// default (see DefaultConfig).
type Config struct {
	// Limits bound each layer's stream (expanded size, ratio, entries).
	Limits layers.Limits
	// MaxFileBytes caps the size of one file an extractor reads (a larger
	// one is skipped and listed as a problem); it also caps nested
	// archives a Java archive holds. Default 512 MiB.
	MaxFileBytes int64
	// MaxManifestBytes caps the size of a package database, lockfile or
	// metadata file, which extractors parse whole in memory (dpkg status,
	// apk database, package-lock.json, METADATA, ...). Default 64 MiB.
	MaxManifestBytes int64
	// MaxMemoryFileBytes is the largest file read into memory; larger ones
	// go to a file in the private temp dir. Default 8 MiB (at most
	// MaxFileBytes).
	MaxMemoryFileBytes int64
	// TempDir is where the private temp dirs are made; default
	// os.TempDir().
	TempDir string
	// Cache keeps layer results; nil means no cache.
	Cache LayerCache
}

// DefaultConfig returns the defaults: layers.DefaultLimits, binaries and
// archives up to 512 MiB, package databases and manifests up to 64 MiB,
// files up to 8 MiB read in memory, the system temp dir, no cache.
func DefaultConfig() Config {
	return Config{
		Limits:             layers.DefaultLimits(),
		MaxFileBytes:       512 << 20,
		MaxManifestBytes:   64 << 20,
		MaxMemoryFileBytes: 8 << 20,
	}
}

// withDefaults fills the zero fields of c from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Limits == (layers.Limits{}) {
		c.Limits = d.Limits
	}
	if c.MaxFileBytes == 0 {
		c.MaxFileBytes = d.MaxFileBytes
	}
	if c.MaxManifestBytes == 0 {
		c.MaxManifestBytes = min(d.MaxManifestBytes, c.MaxFileBytes)
	}
	if c.MaxMemoryFileBytes == 0 {
		c.MaxMemoryFileBytes = min(d.MaxMemoryFileBytes, c.MaxFileBytes)
	}
	return c
}

// Validate reports the first bad setting (after defaults are applied).
func (c Config) Validate() error {
	c = c.withDefaults()
	if err := c.Limits.Validate(); err != nil {
		return err
	}
	switch {
	case c.MaxFileBytes < 0:
		return fmt.Errorf("extract: MaxFileBytes must be positive, got %d", c.MaxFileBytes)
	case c.MaxManifestBytes < 0:
		return fmt.Errorf("extract: MaxManifestBytes must be positive, got %d", c.MaxManifestBytes)
	case c.MaxManifestBytes > c.MaxFileBytes:
		return fmt.Errorf("extract: MaxManifestBytes (%d) must not exceed MaxFileBytes (%d)", c.MaxManifestBytes, c.MaxFileBytes)
	case c.MaxMemoryFileBytes < 0:
		return fmt.Errorf("extract: MaxMemoryFileBytes must be positive, got %d", c.MaxMemoryFileBytes)
	case c.MaxMemoryFileBytes > c.MaxFileBytes:
		return fmt.Errorf("extract: MaxMemoryFileBytes (%d) must not exceed MaxFileBytes (%d)", c.MaxMemoryFileBytes, c.MaxFileBytes)
	}
	return nil
}

// Extractor inventories images, layers and directories. It is safe for
// concurrent use; concurrent reads of the same layer are done once.
type Extractor struct {
	cfg     Config
	plugins []plugin
	version string
	flight  singleflight.Group
}

// New returns an Extractor for cfg.
func New(cfg Config) (*Extractor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	ps, err := newPlugins(cfg.MaxFileBytes)
	if err != nil {
		return nil, err
	}
	return &Extractor{cfg: cfg, plugins: ps, version: setVersion(ps, cfg)}, nil
}

// Version identifies what a layer result depends on besides the layer: the
// result schema, the osv-scalibr release, each extractor's name and
// version, and the settings that change results. It is part of every
// CacheKey.
func (x *Extractor) Version() string { return x.version }

func setVersion(ps []plugin, cfg Config) string {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.id()
	}
	sort.Strings(ids)
	h := sha256.Sum256(fmt.Appendf(nil, "%s|files<=%d|manifests<=%d", strings.Join(ids, ","), cfg.MaxFileBytes, cfg.MaxManifestBytes))
	return fmt.Sprintf("extract/%d scalibr/%s %s", resultSchema, scalibrVersion(), hex.EncodeToString(h[:8]))
}

// scalibrVersion is the osv-scalibr module version built in.
func scalibrVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/google/osv-scalibr" {
				if d.Replace != nil {
					return d.Replace.Version
				}
				return d.Version
			}
		}
	}
	return "unknown"
}

// Image returns the inventory of img: each layer's result (from the cache
// when it has it), composed bottom to top. Images of an OS other than Linux
// are refused as unsupported.
func (x *Extractor) Image(ctx context.Context, img v1.Image) (*inventory.Inventory, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading image config: %w", err)
	}
	if cf.OS != "" && cf.OS != "linux" {
		return nil, apperr.Errorf(apperr.EUNSUPPORTED, "image OS %q is not supported (only linux images are scanned)", cf.OS)
	}
	ls, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading image layers: %w", err)
	}
	// The config's diffIDs, not Layer.DiffID: for some v1.Layers (OCI
	// layouts) that decompresses the whole layer. They are claims,
	// verified as each layer is read.
	if len(cf.RootFS.DiffIDs) != len(ls) {
		return nil, apperr.Errorf(apperr.EINVALID, "image config lists %d diffIDs for %d layers", len(cf.RootFS.DiffIDs), len(ls))
	}
	results := make([]*LayerResult, len(ls))
	ids := make([]string, len(ls))
	for i, l := range ls {
		ids[i] = cf.RootFS.DiffIDs[i].String()
		if results[i], err = x.layer(ctx, l, cf.RootFS.DiffIDs[i]); err != nil {
			return nil, fmt.Errorf("layer %d (%s): %w", i, ids[i], err)
		}
	}
	return Compose(results, ids)
}

// Layer returns the result of one layer: from the cache when a result of
// this diffID is there and was verified for this blob digest, else by
// reading the blob (once, however many callers ask at the same time) and
// verifying it against its digest and diffID before caching it; callers
// sharing a read share its outcome, cancellation included. Some v1.Layers
// compute DiffID by reading the layer; Image takes diffIDs from the image
// config instead.
func (x *Extractor) Layer(ctx context.Context, l v1.Layer) (*LayerResult, error) {
	diffID, err := l.DiffID()
	if err != nil {
		return nil, fmt.Errorf("diffID: %w", err)
	}
	return x.layer(ctx, l, diffID)
}

// layer is Layer for a layer whose diffID is claimed to be diffID.
func (x *Extractor) layer(ctx context.Context, l v1.Layer, diffID v1.Hash) (*LayerResult, error) {
	dg, err := l.Digest()
	if err != nil {
		return nil, fmt.Errorf("digest: %w", err)
	}
	key := CacheKey{DiffID: diffID.String(), Version: x.version}
	cached := x.cached(ctx, key)
	if cached != nil && cached.hasDigest(dg.String()) {
		return cached, nil
	}
	v, err, _ := x.flight.Do(key.DiffID+" "+dg.String()+" "+key.Version, func() (any, error) {
		mt, err := l.MediaType()
		if err != nil {
			return nil, fmt.Errorf("media type: %w", err)
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, fmt.Errorf("opening layer blob: %w", err)
		}
		defer rc.Close()
		res, err := x.read(ctx, rc, layers.Blob{MediaType: string(mt), Digest: dg.String(), DiffID: diffID.String()})
		if err != nil {
			return nil, err
		}
		// Another blob of the same content may have been verified before.
		if cached := x.cached(ctx, key); cached != nil {
			res.Digests = cached.Digests
		}
		res.addDigest(dg.String())
		if x.cfg.Cache != nil {
			if b, err := res.Marshal(); err == nil {
				_ = x.cfg.Cache.Put(ctx, key, b) // a cache that fails only costs a re-read
			}
		}
		return res, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*LayerResult), nil
}

// cached returns the cached result for k, nil on a miss or an unreadable
// entry (which is then read again and replaced).
func (x *Extractor) cached(ctx context.Context, k CacheKey) *LayerResult {
	if x.cfg.Cache == nil {
		return nil
	}
	b, ok, err := x.cfg.Cache.Get(ctx, k)
	if err != nil || !ok {
		return nil
	}
	r, err := UnmarshalLayerResult(b)
	if err != nil {
		return nil
	}
	return r
}

// ReadLayer reads one layer blob r described by b into a LayerResult,
// without a cache: the building block of Layer, for blobs that are not a
// v1.Layer (a docker-archive tar, a fuzz input).
func (x *Extractor) ReadLayer(ctx context.Context, r io.Reader, b layers.Blob) (*LayerResult, error) {
	return x.read(ctx, r, b)
}

func (x *Extractor) read(ctx context.Context, r io.Reader, b layers.Blob) (res *LayerResult, err error) {
	c := newCollector(x)
	defer func() {
		if cerr := c.close(); cerr != nil && err == nil {
			err = fmt.Errorf("removing temp dir: %w", cerr)
		}
	}()
	sum, err := layers.Walk(ctx, r, b, x.cfg.Limits, func(e *layers.Entry, body io.Reader) error {
		switch e.Kind {
		case layers.File:
			return c.file(ctx, e.Path, e.Info(), body)
		case layers.Hardlink:
			c.hardlink(e.Path, e.Link, e.Info())
		case layers.Symlink:
			c.symlink(e.Path, e.Link)
		case layers.Whiteout:
			c.res.Whiteouts = append(c.res.Whiteouts, e.Path)
		case layers.Opaque:
			c.res.Opaque = append(c.res.Opaque, e.Path)
		}
		return nil
	})
	if err != nil {
		var se *streamError
		if errors.As(err, &se) {
			err = se.err
		}
		return nil, err
	}
	c.res.Stats.Compression = string(sum.Compression)
	c.res.Stats.CompressedBytes = sum.CompressedBytes
	c.res.Stats.ExpandedBytes = sum.ExpandedBytes
	c.res.Stats.Entries = sum.Entries
	return c.res, nil
}

// Dir returns the inventory of a root filesystem unpacked in dir, as if it
// were an image of one layer (packages have no Layer). Symlinks are not
// followed (those composition resolves are recorded), and no file outside
// dir is read.
func (x *Extractor) Dir(ctx context.Context, dir string) (*inventory.Inventory, error) {
	res, err := x.readDir(ctx, dir)
	if err != nil {
		return nil, err
	}
	return Compose([]*LayerResult{res}, []string{""})
}

func (x *Extractor) readDir(ctx context.Context, dir string) (*LayerResult, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("scanning directory: %w", err)
	}
	defer root.Close()
	c := newCollector(x)
	c.dir, c.dirPath = root, abs
	defer c.close()
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			c.res.problem(Problem{Path: p, Message: err.Error()})
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		c.res.Stats.Entries++
		switch {
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				c.res.problem(Problem{Path: p, Message: err.Error()})
				return nil
			}
			return c.file(ctx, p, info, nil)
		case d.Type()&fs.ModeSymlink != 0 && tracksSymlink(p):
			t, err := root.Readlink(p)
			if err != nil {
				c.res.problem(Problem{Path: p, Message: err.Error()})
				return nil
			}
			c.symlink(p, t)
		}
		return nil
	})
	if err != nil {
		var se *streamError
		if errors.As(err, &se) {
			err = se.err
		}
		return nil, fmt.Errorf("scanning directory %s: %w", dir, err)
	}
	return c.res, nil
}
