// Package fs keeps blobs and resumable upload sessions in a directory on a
// local filesystem. It implements blob.Store.
//
// Layout under the root directory:
//
//	blobs/<alg>/<first two hex>/<hex>   published content, named by digest
//	uploads/<id>/data                   an upload session's bytes
//	uploads/<id>/state                  its acknowledged size, hash algorithm and hash state
//	tmp/                                Put's temporary files
//
// Content becomes visible only by an atomic rename of a verified, fsynced
// file, followed by an fsync of its directory, so a crash leaves either the
// complete blob or nothing. Writes are pipelined: hashing overlaps writing,
// and writeback is started every few MiB (sync_file_range on Linux) so that
// the final fdatasync finds little left to do.
package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/blob"

	_ "crypto/sha256" // registers digest.SHA256
	_ "crypto/sha512" // registers digest.SHA512
)

// Defaults for Options.
const (
	DefaultBufferSize      = 256 << 10 // 256 KiB per pipeline buffer
	DefaultBuffers         = 8         // buffers in flight between hashing and writing (2 MiB per write)
	DefaultWritebackWindow = 8 << 20   // start writeback every 8 MiB
	DefaultMaxDirty        = 128 << 20 // wait for writeback beyond 128 MiB in flight
	DefaultTempMaxAge      = time.Hour // unlocked Put leftovers older than this are removed by New
	DefaultSyncEvery       = 64 << 20  // fdatasync beside the writes every 64 MiB
)

const (
	filePerm = 0o640
	dirPerm  = 0o750
)

// algorithms are the digest algorithms the store accepts, in Walk order.
var algorithms = []digest.Algorithm{digest.SHA256, digest.SHA512}

// Options tunes a Store. The zero value is valid: every zero field takes its
// default.
type Options struct {
	// Clock returns the current time (session timestamps, temp file ages);
	// time.Now if nil.
	Clock func() time.Time
	// Logger receives operational messages; discarded if nil.
	Logger *slog.Logger
	// BufferSize is the size of each pipeline buffer in bytes.
	BufferSize int
	// Buffers is how many buffers circulate between reading/hashing and
	// writing (at least 2).
	Buffers int
	// WritebackWindow is how many bytes are written between two requests
	// to start writeback; negative disables early writeback, so the whole
	// write is flushed by the final fdatasync.
	WritebackWindow int64
	// MaxDirty bounds the bytes written but not yet confirmed on disk during
	// one write; older ranges are waited for beyond it.
	MaxDirty int64
	// SyncEvery is how many bytes of one write are written between two
	// fdatasyncs started beside the writes (in their own goroutine), so
	// that the device's cache is flushed while the rest arrives and the
	// final fdatasync has little left to flush; the first comes after
	// 2×SyncEvery bytes, so a shorter write has only its final fdatasync.
	// Negative disables them.
	SyncEvery int64
	// TempMaxAge is the age beyond which an unlocked file left in tmp/ (a
	// Put interrupted by a crash) is removed by New.
	TempMaxAge time.Duration
}

// Store is a blob.Store on a local filesystem. It is safe for concurrent use,
// and several Stores (in one or several processes) may share a root.
type Store struct {
	root string
	opt  Options
	log  *slog.Logger
	now  func() time.Time
	bufs sync.Pool

	mu   sync.Mutex
	held map[string]bool // upload ids held in this process
}

var _ blob.Store = (*Store)(nil)

// New opens (creating if needed) a store rooted at dir, and removes Put
// leftovers older than opts.TempMaxAge that no other process holds.
func New(dir string, opts Options) (*Store, error) {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.BufferSize == 0 {
		opts.BufferSize = DefaultBufferSize
	}
	if opts.Buffers == 0 {
		opts.Buffers = DefaultBuffers
	}
	if opts.WritebackWindow == 0 {
		opts.WritebackWindow = DefaultWritebackWindow
	}
	if opts.MaxDirty == 0 {
		opts.MaxDirty = DefaultMaxDirty
	}
	if opts.SyncEvery == 0 {
		opts.SyncEvery = DefaultSyncEvery
	}
	if opts.TempMaxAge == 0 {
		opts.TempMaxAge = DefaultTempMaxAge
	}
	switch {
	case opts.BufferSize < 4096:
		return nil, apperr.Errorf(apperr.EINVALID, "blob store: buffer size %d is below 4096", opts.BufferSize)
	case opts.Buffers < 2:
		return nil, apperr.Errorf(apperr.EINVALID, "blob store: %d buffers, need at least 2", opts.Buffers)
	case opts.MaxDirty < 0:
		return nil, apperr.Errorf(apperr.EINVALID, "blob store: negative max dirty bytes")
	case opts.TempMaxAge < 0:
		return nil, apperr.Errorf(apperr.EINVALID, "blob store: negative temp max age")
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.EINVALID, "blob store: bad directory")
	}
	s := &Store{root: root, opt: opts, log: opts.Logger, now: opts.Clock, held: map[string]bool{}}
	s.bufs.New = func() any { b := make([]byte, opts.BufferSize); return &b }
	if err := s.makeLayout(); err != nil {
		return nil, apperr.Wrap(err, apperr.EINTERNAL, "blob store: cannot create directory layout")
	}
	s.cleanTemp()
	return s, nil
}

// Root is the store's absolute root directory.
func (s *Store) Root() string { return s.root }

// makeLayout creates blobs/<alg>/<00..ff>, uploads and tmp, and fsyncs
// every directory whose entries changed.
func (s *Store) makeLayout() error {
	var dirty []string
	mk := func(p string) error {
		err := os.Mkdir(p, dirPerm)
		switch {
		case err == nil:
			dirty = append(dirty, filepath.Dir(p))
			return nil
		case errors.Is(err, fs.ErrExist):
			return nil
		default:
			return err
		}
	}
	if err := os.MkdirAll(s.root, dirPerm); err != nil {
		return err
	}
	for _, p := range []string{"blobs", "uploads", "tmp"} {
		if err := mk(filepath.Join(s.root, p)); err != nil {
			return err
		}
	}
	for _, alg := range algorithms {
		ad := filepath.Join(s.root, "blobs", string(alg))
		if err := mk(ad); err != nil {
			return err
		}
		for i := range 256 {
			if err := mk(filepath.Join(ad, fmt.Sprintf("%02x", i))); err != nil {
				return err
			}
		}
	}
	seen := map[string]bool{}
	for _, d := range dirty {
		if !seen[d] {
			seen[d] = true
			if err := syncDir(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// cleanTemp removes files in tmp/ older than TempMaxAge that no Put holds.
func (s *Store) cleanTemp() {
	dir := filepath.Join(s.root, "tmp")
	ents, err := os.ReadDir(dir)
	if err != nil {
		s.log.Warn("blob store: cannot list temp dir", "dir", dir, "err", err)
		return
	}
	cutoff := s.now().Add(-s.opt.TempMaxAge)
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || info.ModTime().After(cutoff) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if lockFile(f) == nil { // nobody is writing it
			if err := os.Remove(p); err == nil {
				s.log.Info("blob store: removed interrupted write", "file", p, "size", info.Size())
			}
		}
		f.Close()
	}
}

// blobPath returns where blob d lives; d must have passed checkDigest.
func (s *Store) blobPath(d digest.Digest) string {
	hex := d.Encoded()
	return filepath.Join(s.root, "blobs", string(d.Algorithm()), hex[:2], hex)
}

// checkDigest returns an EINVALID/DIGEST_INVALID error unless d is a
// well-formed digest of a supported algorithm.
func checkDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return apperr.Wrap(err, apperr.EINVALID, fmt.Sprintf("invalid digest %.80q", string(d))).WithDetail("DIGEST_INVALID")
	}
	if !supported(d.Algorithm()) {
		return apperr.Errorf(apperr.EINVALID, "unsupported digest algorithm %q", string(d.Algorithm())).WithDetail("DIGEST_INVALID")
	}
	return nil
}

// supported reports whether alg is one the store accepts.
func supported(alg digest.Algorithm) bool {
	for _, a := range algorithms {
		if a == alg {
			return true
		}
	}
	return false
}

// Open implements blob.Store. The Reader is a *Reader.
func (s *Store) Open(ctx context.Context, d digest.Digest) (blob.Reader, error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	f, err := os.Open(s.blobPath(d))
	if err != nil {
		return nil, notFoundOr(err, "blob unknown", "cannot open blob")
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, apperr.Wrap(err, apperr.EINTERNAL, "cannot open blob")
	}
	return &Reader{File: f, size: fi.Size(), modTime: fi.ModTime()}, nil
}

// Stat implements blob.Store.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (blob.Info, error) {
	if err := checkDigest(d); err != nil {
		return blob.Info{}, err
	}
	fi, err := os.Stat(s.blobPath(d))
	if err != nil {
		return blob.Info{}, notFoundOr(err, "blob unknown", "cannot stat blob")
	}
	return blob.Info{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Put implements blob.Store.
func (s *Store) Put(ctx context.Context, d digest.Digest, r io.Reader, beforePublish func(size int64) error) (int64, error) {
	if err := checkDigest(d); err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(filepath.Join(s.root, "tmp"), "put-*")
	if err != nil {
		return 0, apperr.Wrap(err, apperr.EINTERNAL, "cannot store blob")
	}
	tmp := f.Name()
	published := false
	defer func() {
		f.Close()
		if !published {
			os.Remove(tmp)
		}
	}()
	if err := lockFile(f); err != nil { // keeps cleanTemp of another process away
		return 0, apperr.Wrap(err, apperr.EINTERNAL, "cannot store blob")
	}
	h := d.Algorithm().Hash()
	n, err := s.write(ctx, f, 0, r, h, 0)
	if err != nil {
		return 0, err
	}
	if got := digest.NewDigest(d.Algorithm(), h); got != d {
		return 0, apperr.Errorf(apperr.EINVALID, "content does not match digest %s", d).WithDetail("DIGEST_INVALID")
	}
	if beforePublish != nil {
		if err := beforePublish(n); err != nil {
			return 0, err
		}
	}
	existed, err := s.publish(tmp, d)
	if err != nil {
		return 0, err
	}
	published = !existed
	return n, nil
}

// publish moves the verified, durable file at src into place as blob d and
// makes the move durable. If blob d exists it is kept intact, src is left
// where it is, and existed is true.
func (s *Store) publish(src string, d digest.Digest) (existed bool, err error) {
	dst := s.blobPath(d)
	existed, err = renameNoReplace(src, dst)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Lstat(src); serr == nil {
			// The source is there, so the blob's directory went missing
			// (removed by hand): recreate the layout and retry.
			if merr := s.makeLayout(); merr != nil {
				return false, apperr.Wrap(merr, apperr.EINTERNAL, "cannot publish blob")
			}
			existed, err = renameNoReplace(src, dst)
		}
	}
	if err != nil {
		return false, notFoundOr(err, "blob upload unknown", "cannot publish blob")
	}
	if existed {
		return true, nil
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return false, apperr.Wrap(err, apperr.EINTERNAL, "cannot publish blob")
	}
	return false, nil
}

// Delete implements blob.Store.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	if err := checkDigest(d); err != nil {
		return err
	}
	p := s.blobPath(d)
	if err := os.Remove(p); err != nil {
		return notFoundOr(err, "blob unknown", "cannot delete blob")
	}
	if err := syncDir(filepath.Dir(p)); err != nil {
		return apperr.Wrap(err, apperr.EINTERNAL, "cannot delete blob")
	}
	return nil
}

// Walk implements blob.Store. Files whose names are not digests are skipped.
func (s *Store) Walk(ctx context.Context, fn func(blob.Info) error) error {
	for _, alg := range algorithms {
		for i := range 256 {
			if err := ctx.Err(); err != nil {
				return apperr.Wrap(err, apperr.EUNAVAILABLE, "walk interrupted")
			}
			prefix := fmt.Sprintf("%02x", i)
			dir := filepath.Join(s.root, "blobs", string(alg), prefix)
			ents, err := os.ReadDir(dir)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return apperr.Wrap(err, apperr.EINTERNAL, "cannot list blobs")
			}
			for _, e := range ents {
				d := digest.NewDigestFromEncoded(alg, e.Name())
				if d.Validate() != nil || e.Name()[:2] != prefix || !e.Type().IsRegular() {
					continue
				}
				fi, err := e.Info()
				if errors.Is(err, fs.ErrNotExist) {
					continue // deleted while walking
				}
				if err != nil {
					return apperr.Wrap(err, apperr.EINTERNAL, "cannot list blobs")
				}
				if err := fn(blob.Info{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Reader is the blob.Reader returned by Open. It embeds the *os.File so that
// io.Copy to a network connection (and so http.ServeContent) sends the
// bytes with sendfile, without copying them through user space.
type Reader struct {
	*os.File
	size    int64
	modTime time.Time
}

// Size is the blob's length in bytes.
func (r *Reader) Size() int64 { return r.size }

// ModTime is when the blob was written.
func (r *Reader) ModTime() time.Time { return r.modTime }

// notFoundOr maps a missing file to ENOTFOUND with message nf, and any other
// error to EINTERNAL with message other.
func notFoundOr(err error, nf, other string) error {
	if errors.Is(err, fs.ErrNotExist) {
		return apperr.Wrap(err, apperr.ENOTFOUND, nf)
	}
	return apperr.Wrap(err, apperr.EINTERNAL, other)
}

// syncDir fsyncs directory dir so that entries added or removed in it are
// durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
