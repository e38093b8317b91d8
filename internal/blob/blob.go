// Package blob defines where customs keeps content-addressed bytes (layers,
// configs, manifests) and resumable upload sessions. Implementations live in
// sub-packages (blob/fs) and pass the shared suite in blob/blobtest.
//
// The contract every implementation keeps: bytes become visible under a
// digest only after they were verified against that digest and made durable;
// a crash at any point leaves either the complete blob or nothing visible.
package blob

import (
	"context"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
)

// Reader reads a stored blob. It is an io.ReadSeeker so that HTTP range
// requests can be served from it; implementations backed by *os.File expose
// it through File so that the kernel can send the bytes (sendfile).
type Reader interface {
	io.ReadSeekCloser
	// Size is the blob's length in bytes.
	Size() int64
	// ModTime is when the blob was written.
	ModTime() time.Time
}

// Info describes a stored blob.
type Info struct {
	Digest  digest.Digest
	Size    int64
	ModTime time.Time
}

// UploadInfo describes an upload session.
type UploadInfo struct {
	ID        string
	Size      int64 // bytes received and acknowledged so far
	StartedAt time.Time
	UpdatedAt time.Time
}

// Store keeps blobs and upload sessions.
type Store interface {
	// Open returns a reader for blob d, or an ENOTFOUND *apperr.Error.
	Open(ctx context.Context, d digest.Digest) (Reader, error)
	// Stat returns blob d's info, or ENOTFOUND.
	Stat(ctx context.Context, d digest.Digest) (Info, error)
	// Put stores the bytes of r as blob d. It reads r to its end, verifies
	// the digest (EINVALID with Detail "DIGEST_INVALID" on mismatch, nothing
	// stored), makes the bytes durable, calls beforePublish (if not nil; an
	// error aborts the Put) and only then makes them visible. Putting a blob
	// that exists is allowed and leaves it intact.
	Put(ctx context.Context, d digest.Digest, r io.Reader, beforePublish func(size int64) error) (int64, error)
	// Delete removes blob d. ENOTFOUND if absent.
	Delete(ctx context.Context, d digest.Digest) error
	// Walk calls fn for every stored blob, in no particular order; an error
	// from fn stops the walk and is returned.
	Walk(ctx context.Context, fn func(Info) error) error

	// NewUpload starts an upload session whose running hash uses alg
	// (digest.SHA256 unless the client asked for another).
	NewUpload(ctx context.Context, alg digest.Algorithm) (Upload, error)
	// Upload resumes session id, or ENOTFOUND. Sessions survive restarts.
	// At most one holder may use a session at a time: a second concurrent
	// Upload(id) returns ECONFLICT until the first is closed.
	Upload(ctx context.Context, id string) (Upload, error)
	// UploadStatus returns session id's acknowledged state without holding
	// it (ENOTFOUND if unknown): while a holder appends, it reports what
	// was acknowledged before, and it never makes a holder's Upload fail.
	UploadStatus(ctx context.Context, id string) (UploadInfo, error)
	// Uploads calls fn for every upload session (for abandoned-upload
	// cleanup).
	Uploads(ctx context.Context, fn func(UploadInfo) error) error
	// DeleteUpload removes session id whether or not it is in use by
	// another holder. ENOTFOUND if absent.
	DeleteUpload(ctx context.Context, id string) error
}

// Upload is one resumable upload session, held by one caller until Close.
type Upload interface {
	// Info describes the session; Size is the acknowledged length.
	Info() UploadInfo
	// Append reads r to its end and appends it to the session, hashing as it
	// goes. The appended bytes are durable and acknowledged (counted in
	// Size, kept across restarts) only when Append returns nil. If r fails
	// part-way (a client that disconnects), the session is left at its
	// previous acknowledged size and the error is returned. limit caps the
	// bytes read (ETOOLARGE beyond it); 0 means no limit.
	Append(ctx context.Context, r io.Reader, limit int64) (int64, error)
	// Commit verifies the session's content against d (EINVALID with Detail
	// "DIGEST_INVALID" on mismatch; the session is kept so the client may
	// retry), makes it durable, calls beforePublish (if not nil; an error
	// aborts the commit and keeps the session), publishes it as blob d and
	// removes the session. It returns the blob's size.
	Commit(ctx context.Context, d digest.Digest, beforePublish func(size int64) error) (int64, error)
	// AppendCommit appends r (as Append, limit included) and commits the
	// whole content as d (as Commit), saving the durable checkpoint Append
	// would write in between. On any failure the session is left at its
	// previous acknowledged size, as if the call had not happened.
	AppendCommit(ctx context.Context, r io.Reader, limit int64, d digest.Digest, beforePublish func(size int64) error) (int64, error)
	// Cancel removes the session.
	Cancel(ctx context.Context) error
	// Close releases the session for another holder without changing it.
	Close() error
}
