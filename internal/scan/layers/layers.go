// Package layers reads one image layer as a stream, safely: it decompresses
// it (gzip, zstd or none, decided by media type and magic number), walks its
// tar entries with names normalised and checked, turns whiteouts into
// removals, bounds the work with Limits, and verifies the blob against its
// digest and the uncompressed stream against its diffID.
//
// Nothing is written to disk and no link is ever followed: callers get each
// entry's metadata, and the body of regular files as a reader valid only
// during the callback. A body nobody reads is skipped without being copied.
package layers

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	_ "crypto/sha256" // digest algorithms go-digest verifies
	_ "crypto/sha512"
)

// Kind is what a tar entry stands for in the layer's changeset.
type Kind int

// Entry kinds.
const (
	// File is a regular file; its body may be read.
	File Kind = iota + 1
	// Dir is a directory.
	Dir
	// Symlink is a symbolic link; Link is its target as written, never
	// followed.
	Symlink
	// Hardlink is a hard link to Link, a path inside the layer.
	Hardlink
	// Whiteout removes Path, and everything below it, from lower layers.
	Whiteout
	// Opaque hides everything below the directory Path ("." for the root)
	// that lower layers hold.
	Opaque
	// Other is a device, FIFO or other special file.
	Other
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case File:
		return "file"
	case Dir:
		return "dir"
	case Symlink:
		return "symlink"
	case Hardlink:
		return "hardlink"
	case Whiteout:
		return "whiteout"
	case Opaque:
		return "opaque"
	case Other:
		return "other"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Entry is one tar entry, with its name normalised.
type Entry struct {
	// Path is slash-separated and relative to the layer root, cleaned,
	// without a leading "/" (absolute names are read relative to the root,
	// as Docker and containerd unpack them); never empty, "." only for an
	// Opaque root.
	Path string
	Kind Kind
	// Mode holds the permission bits and fs.FileMode type bits.
	Mode fs.FileMode
	// Size is the size a File claims (sparse files included); 0 otherwise.
	Size    int64
	ModTime time.Time
	// Link is a Symlink's target as written, or a Hardlink's target
	// normalised like Path.
	Link string
}

// Info returns e's metadata as an fs.FileInfo (Name is the base name).
func (e *Entry) Info() fs.FileInfo { return entryInfo{e} }

type entryInfo struct{ e *Entry }

func (i entryInfo) Name() string       { return path.Base(i.e.Path) }
func (i entryInfo) Size() int64        { return i.e.Size }
func (i entryInfo) Mode() fs.FileMode  { return i.e.Mode }
func (i entryInfo) ModTime() time.Time { return i.e.ModTime }
func (i entryInfo) IsDir() bool        { return i.e.Kind == Dir }
func (i entryInfo) Sys() any           { return nil }

// Blob describes the layer blob given to Walk.
type Blob struct {
	// MediaType is the layer's media type from the manifest; "" lets the
	// content decide.
	MediaType string
	// Digest, when set, is the blob's digest ("sha256:..."); the compressed
	// bytes must hash to it.
	Digest string
	// DiffID, when set, is the digest of the uncompressed tar stream from
	// the image config; the tar must hash to it.
	DiffID string
}

// Summary is what Walk measured of a layer.
type Summary struct {
	Compression     Compression
	CompressedBytes int64
	ExpandedBytes   int64
	Entries         int64
}

// WalkFunc is called for each entry in archive order. For a File, body
// reads its content and is valid only until WalkFunc returns; for other
// kinds body is nil. The holes of a sparse file read as zeros that are not
// in the stream, so the Limits do not bound them: a caller decides from
// Size how much of a body it reads (a 10 GiB sparse file is a few bytes of
// layer). An error stops the
// walk and is returned by Walk as it is.
type WalkFunc func(e *Entry, body io.Reader) error

// Walk reads the layer blob r as described by b, calling fn for every entry.
// After the last entry it reads the rest of the stream so that the digests
// can be checked; a mismatch is an error even though fn saw every entry, so
// callers must discard what they gathered when Walk fails.
func Walk(ctx context.Context, r io.Reader, b Blob, lim Limits, fn WalkFunc) (sum Summary, err error) {
	if err := lim.Validate(); err != nil {
		return sum, err
	}
	declared, err := DeclaredCompression(b.MediaType)
	if err != nil {
		return sum, err
	}
	blobHash, err := hasherFor(b.Digest, "digest")
	if err != nil {
		return sum, err
	}
	diffHash, err := hasherFor(b.DiffID, "diffID")
	if err != nil {
		return sum, err
	}

	raw := &countingReader{r: r, hash: blobHash}
	br := bufio.NewReaderSize(raw, 64<<10)
	head, err := br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return sum, fmt.Errorf("reading layer: %w", err)
	}
	comp, err := sniff(head, declared, b.MediaType)
	if err != nil {
		return sum, err
	}
	sum.Compression = comp
	dec, closeDec, err := decompressor(br, comp)
	if err != nil {
		return sum, err
	}
	defer closeDec()
	exp := &expander{ctx: ctx, r: dec, raw: raw, lim: lim, hash: diffHash, comp: comp}

	defer func() {
		sum.CompressedBytes = raw.n
		sum.ExpandedBytes = exp.n
	}()
	if err := walkTar(ctx, exp, lim, &sum, fn); err != nil {
		return sum, err
	}

	// The rest of the uncompressed stream (end-of-archive blocks, padding)
	// belongs to the diffID; the rest of the blob to the digest.
	if _, err := io.Copy(io.Discard, exp); err != nil {
		return sum, streamErr(ctx, err, "after the end of the tar archive")
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return sum, fmt.Errorf("reading layer: %w", err)
	}
	if err := verify(blobHash, b.Digest, "blob", "digest"); err != nil {
		return sum, err
	}
	if err := verify(diffHash, b.DiffID, "uncompressed layer", "diffID"); err != nil {
		return sum, err
	}
	return sum, nil
}

func hasherFor(d, what string) (hash.Hash, error) {
	if d == "" {
		return nil, nil
	}
	dg, err := digest.Parse(d)
	if err != nil {
		return nil, unsupportedf("layer %s %q: %v", what, d, err)
	}
	return dg.Algorithm().Hash(), nil
}

func verify(h hash.Hash, want, what, field string) error {
	if h == nil {
		return nil
	}
	dg, _ := digest.Parse(want) // parsed by hasherFor
	got := digest.NewDigest(dg.Algorithm(), h)
	if got != dg {
		return mismatchf("%s hashes to %s, not to its %s %s", what, got, field, want)
	}
	return nil
}

// streamErr turns a read error of the uncompressed stream into a layer
// error: limit and corruption errors pass through, cancellation stays
// cancellation, an early end is a truncated layer, and anything else a
// corrupt tar archive. where says how far the walk got.
func streamErr(ctx context.Context, err error, where string) error {
	if isLayerError(err) {
		return err
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return corruptf(err, "layer is truncated: the stream ends %s", where)
	}
	return corruptf(err, "corrupt tar archive %s: %v", where, err)
}

func walkTar(ctx context.Context, r io.Reader, lim Limits, sum *Summary, fn WalkFunc) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			return streamErr(ctx, err, fmt.Sprintf("after %d tar entries", sum.Entries))
		}
		sum.Entries++
		if sum.Entries > lim.MaxEntries {
			return tooLargef("layer has more than %d entries (limit MaxEntries)", lim.MaxEntries)
		}
		e, err := entryOf(hdr)
		if err != nil {
			return err
		}
		if e == nil {
			continue
		}
		var body io.Reader
		if e.Kind == File {
			body = &bodyReader{ctx: ctx, r: tr, path: e.Path}
		}
		if err := fn(e, body); err != nil {
			return err
		}
	}
}

// bodyReader reads a File's body, turning a broken stream into a layer
// error (a truncated layer, a corrupt one, a limit) like Walk's own.
type bodyReader struct {
	ctx  context.Context
	r    io.Reader
	path string
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = streamErr(b.ctx, err, fmt.Sprintf("inside the body of %q", b.path))
	}
	return n, err
}

// entryOf normalises hdr into an Entry; nil for entries that mean nothing
// to a scan (the root directory itself, pax global headers, AUFS metadata).
func entryOf(hdr *tar.Header) (*Entry, error) {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil, nil
	}
	p, err := CleanPath(hdr.Name)
	if err != nil {
		return nil, err
	}
	e := &Entry{Path: p, Mode: hdr.FileInfo().Mode(), ModTime: hdr.ModTime}

	dir, base := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	if strings.HasPrefix(base, ".wh.") {
		switch {
		case base == ".wh..wh..opq":
			e.Kind, e.Path = Opaque, dir
			return e, nil
		case strings.HasPrefix(base, ".wh..wh."):
			return nil, nil // AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs)
		}
		name := strings.TrimPrefix(base, ".wh.")
		if name == "." || name == ".." || strings.ContainsRune(name, 0) {
			return nil, unsafef("tar entry %q: whiteout of %q is not a file name", hdr.Name, name)
		}
		e.Kind, e.Path = Whiteout, path.Join(dir, name)
		return e, nil
	}
	if p == "." {
		if hdr.Typeflag == tar.TypeDir {
			return nil, nil
		}
		return nil, unsafef("tar entry %q: a %s cannot be the layer root", hdr.Name, typeName(hdr.Typeflag))
	}

	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeCont:
		if hdr.Size < 0 {
			return nil, corruptf(nil, "tar entry %q has negative size %d", hdr.Name, hdr.Size)
		}
		e.Kind, e.Size = File, hdr.Size
	case tar.TypeDir:
		e.Kind = Dir
	case tar.TypeSymlink:
		if hdr.Linkname == "" || strings.ContainsRune(hdr.Linkname, 0) {
			return nil, unsafef("tar entry %q: symlink target %q is not a path", hdr.Name, hdr.Linkname)
		}
		e.Kind, e.Link = Symlink, hdr.Linkname
	case tar.TypeLink:
		target, err := CleanPath(hdr.Linkname)
		if err != nil {
			return nil, unsafef("tar entry %q: hardlink target %q points outside the layer", hdr.Name, hdr.Linkname)
		}
		if target == "." {
			return nil, unsafef("tar entry %q: hardlink to the layer root", hdr.Name)
		}
		e.Kind, e.Link = Hardlink, target
	default:
		e.Kind = Other
	}
	return e, nil
}

// CleanPath normalises a tar entry name into a slash-separated path relative
// to the layer root: "./a//b/" -> "a/b", "/etc/passwd" -> "etc/passwd" (an
// absolute name is relative to the root, as Docker and containerd unpack
// it; "/.." is the root itself), "" or "./" -> ".". A relative name that
// climbs out of the root ("../x", "a/../../x") or holds a NUL byte is an
// ErrUnsafePath error.
func CleanPath(name string) (string, error) {
	if strings.ContainsRune(name, 0) {
		return "", unsafef("tar entry name %q contains a NUL byte", name)
	}
	if strings.HasPrefix(name, "/") {
		p := path.Clean(name) // an absolute path never climbs above "/"
		if p == "/" {
			return ".", nil
		}
		return p[1:], nil
	}
	p := path.Clean(name)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", unsafef("tar entry %q climbs out of the layer root (path traversal)", name)
	}
	return p, nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeReg:
		return "regular file"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hardlink"
	}
	return fmt.Sprintf("entry of type %q", t)
}
