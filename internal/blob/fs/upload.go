package fs

import (
	"context"
	"errors"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/blob"
)

const (
	dataFile  = "data"
	stateFile = "state"
)

// errUnknownUpload is returned for sessions that do not exist, including
// ids that are not well-formed (they never name a path).
func errUnknownUpload(err error) error {
	return apperr.Wrap(err, apperr.ENOTFOUND, "blob upload unknown")
}

// upload is a held upload session.
type upload struct {
	s   *Store
	id  string
	dir string

	mu     sync.Mutex
	lock   *os.File // the session directory, flock'd while held
	data   *os.File
	h      hash.Hash // running hash over data[0:st.Size]
	st     state
	closed bool
}

var _ blob.Upload = (*upload)(nil)

// hold marks id as held in this process; false if it already is.
func (s *Store) hold(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[id] {
		return false
	}
	s.held[id] = true
	return true
}

// release undoes hold.
func (s *Store) release(id string) {
	s.mu.Lock()
	delete(s.held, id)
	s.mu.Unlock()
}

// uploadDir is session id's directory; id must have passed validID.
func (s *Store) uploadDir(id string) string { return filepath.Join(s.root, "uploads", id) }

// NewUpload implements blob.Store. An empty alg means digest.SHA256; an
// unsupported one is EINVALID with Detail "DIGEST_INVALID".
func (s *Store) NewUpload(ctx context.Context, alg digest.Algorithm) (blob.Upload, error) {
	if alg == "" {
		alg = digest.SHA256
	}
	if !supported(alg) {
		return nil, apperr.Errorf(apperr.EINVALID, "unsupported digest algorithm %.40q", string(alg)).WithDetail("DIGEST_INVALID")
	}
	id := newID()
	u, err := s.createUpload(id, alg)
	if err != nil {
		os.RemoveAll(s.uploadDir(id))
		return nil, apperr.Wrap(err, apperr.EINTERNAL, "cannot start upload")
	}
	return u, nil
}

// createUpload makes session id's directory, empty data file and state, all
// durable, and returns the session held.
func (s *Store) createUpload(id string, alg digest.Algorithm) (*upload, error) {
	dir := s.uploadDir(id)
	if err := os.Mkdir(dir, dirPerm); err != nil {
		return nil, err
	}
	if !s.hold(id) {
		return nil, errors.New("fresh upload id already held")
	}
	u := &upload{s: s, id: id, dir: dir, h: alg.Hash()}
	ok := false
	defer func() {
		if !ok {
			u.closeFiles()
			s.release(id)
		}
	}()
	var err error
	if u.lock, err = os.Open(dir); err != nil {
		return nil, err
	}
	if err := lockFile(u.lock); err != nil {
		return nil, err
	}
	if u.data, err = os.OpenFile(filepath.Join(dir, dataFile), os.O_RDWR|os.O_CREATE|os.O_EXCL, filePerm); err != nil {
		return nil, err
	}
	if err := datasync(u.data); err != nil {
		return nil, err
	}
	now := s.now()
	u.st = state{Alg: alg, Started: now, Updated: now}
	if u.st.Hash, err = marshalHash(u.h); err != nil {
		return nil, err
	}
	if err := u.saveState(u.st); err != nil {
		return nil, err
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return nil, err
	}
	ok = true
	return u, nil
}

// Upload implements blob.Store. A malformed id is ENOTFOUND.
func (s *Store) Upload(ctx context.Context, id string) (blob.Upload, error) {
	if !validID(id) {
		return nil, errUnknownUpload(nil)
	}
	if _, err := os.Lstat(s.uploadDir(id)); err != nil {
		return nil, notFoundOr(err, "blob upload unknown", "cannot resume upload")
	}
	if !s.hold(id) {
		return nil, apperr.Errorf(apperr.ECONFLICT, "blob upload %s is in use", id)
	}
	u := &upload{s: s, id: id, dir: s.uploadDir(id)}
	if err := u.resume(); err != nil {
		u.closeFiles()
		s.release(id)
		return nil, err
	}
	return u, nil
}

// resume locks the session directory, reads the state, and cuts the data
// file back to the acknowledged size (bytes past it were never
// acknowledged: a crash or a client that went away mid-append).
func (u *upload) resume() error {
	var err error
	if u.lock, err = os.Open(u.dir); err != nil {
		return notFoundOr(err, "blob upload unknown", "cannot resume upload")
	}
	if err := lockFile(u.lock); err != nil {
		if errors.Is(err, errLocked) {
			return apperr.Errorf(apperr.ECONFLICT, "blob upload %s is in use", u.id)
		}
		return apperr.Wrap(err, apperr.EINTERNAL, "cannot resume upload")
	}
	b, err := readLimited(filepath.Join(u.dir, stateFile), maxStateSize+1)
	if err != nil {
		// No state: the session was never completely created or is being
		// removed; either way there is nothing to resume.
		return notFoundOr(err, "blob upload unknown", "cannot resume upload")
	}
	if u.st, u.h, err = decodeState(b); err != nil {
		return apperr.Wrap(err, apperr.EINTERNAL, "blob upload session is damaged")
	}
	if u.data, err = os.OpenFile(filepath.Join(u.dir, dataFile), os.O_RDWR, 0); err != nil {
		// No data: a commit published it and crashed before removing the
		// session.
		return notFoundOr(err, "blob upload unknown", "cannot resume upload")
	}
	fi, err := u.data.Stat()
	if err != nil {
		return apperr.Wrap(err, apperr.EINTERNAL, "cannot resume upload")
	}
	switch {
	case fi.Size() < u.st.Size:
		return apperr.Errorf(apperr.EINTERNAL, "blob upload session is damaged: %d bytes acknowledged, %d on disk", u.st.Size, fi.Size())
	case fi.Size() > u.st.Size:
		u.s.log.Info("blob store: dropping unacknowledged upload bytes", "upload", u.id, "acknowledged", u.st.Size, "on_disk", fi.Size())
		if err := u.data.Truncate(u.st.Size); err != nil {
			return apperr.Wrap(err, apperr.EINTERNAL, "cannot resume upload")
		}
		if err := datasync(u.data); err != nil {
			return apperr.Wrap(err, apperr.EINTERNAL, "cannot resume upload")
		}
	}
	return nil
}

// readLimited reads at most n bytes of file p.
func readLimited(p string, n int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

// Uploads implements blob.Store. A session whose state cannot be read (one
// interrupted while being created, or damaged) is reported with Size 0 and
// its directory's modification time, so that cleanup can remove it.
func (s *Store) Uploads(ctx context.Context, fn func(blob.UploadInfo) error) error {
	ents, err := os.ReadDir(filepath.Join(s.root, "uploads"))
	if err != nil {
		return apperr.Wrap(err, apperr.EINTERNAL, "cannot list uploads")
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return apperr.Wrap(err, apperr.EUNAVAILABLE, "listing uploads interrupted")
		}
		if !validID(e.Name()) || !e.IsDir() {
			continue
		}
		info, err := s.readInfo(e.Name())
		if err != nil {
			fi, err := e.Info()
			if err != nil {
				continue // removed meanwhile
			}
			info = blob.UploadInfo{ID: e.Name(), StartedAt: fi.ModTime(), UpdatedAt: fi.ModTime()}
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// UploadStatus implements blob.Store. It reads the session's state file,
// which every acknowledgement replaces atomically, so it never waits for or
// disturbs a holder.
func (s *Store) UploadStatus(ctx context.Context, id string) (blob.UploadInfo, error) {
	if !validID(id) {
		return blob.UploadInfo{}, errUnknownUpload(nil)
	}
	return s.readInfo(id)
}

// readInfo returns session id's acknowledged state; ENOTFOUND when it has
// none (being created or removed) or it cannot be decoded.
func (s *Store) readInfo(id string) (blob.UploadInfo, error) {
	b, err := readLimited(filepath.Join(s.uploadDir(id), stateFile), maxStateSize+1)
	if err != nil {
		return blob.UploadInfo{}, notFoundOr(err, "blob upload unknown", "cannot read upload status")
	}
	st, _, err := decodeState(b)
	if err != nil {
		return blob.UploadInfo{}, errUnknownUpload(err)
	}
	return blob.UploadInfo{ID: id, Size: st.Size, StartedAt: st.Started, UpdatedAt: st.Updated}, nil
}

// DeleteUpload implements blob.Store. A holder of the session sees its next
// operation fail with ENOTFOUND.
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	if !validID(id) {
		return errUnknownUpload(nil)
	}
	dir := s.uploadDir(id)
	if _, err := os.Lstat(dir); err != nil {
		return notFoundOr(err, "blob upload unknown", "cannot delete upload")
	}
	if err := os.RemoveAll(dir); err != nil {
		return apperr.Wrap(err, apperr.EINTERNAL, "cannot delete upload")
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return apperr.Wrap(err, apperr.EINTERNAL, "cannot delete upload")
	}
	return nil
}

// Info implements blob.Upload.
func (u *upload) Info() blob.UploadInfo {
	u.mu.Lock()
	defer u.mu.Unlock()
	return blob.UploadInfo{ID: u.id, Size: u.st.Size, StartedAt: u.st.Started, UpdatedAt: u.st.Updated}
}

// errClosed is returned by operations on a session after Commit, Cancel or
// Close.
func errClosed() error { return apperr.Errorf(apperr.EINVALID, "blob upload session is closed") }

// Append implements blob.Upload.
func (u *upload) Append(ctx context.Context, r io.Reader, limit int64) (int64, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return 0, errClosed()
	}
	prev := u.st
	n, err := u.s.write(ctx, u.data, prev.Size, r, u.h, limit)
	if err != nil {
		u.rollback(prev)
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	next := prev
	next.Size += n
	next.Updated = u.s.now()
	if next.Hash, err = marshalHash(u.h); err != nil {
		u.rollback(prev)
		return 0, apperr.Wrap(err, apperr.EINTERNAL, "cannot save upload")
	}
	if err := u.saveState(next); err != nil {
		// The new state may or may not be on disk; the data is, so a
		// resume sees a consistent session either way. This holder stops.
		u.closeLocked()
		return 0, notFoundOr(err, "blob upload unknown", "cannot save upload")
	}
	u.st = next
	return n, nil
}

// rollback returns the session to prev after a failed append: the data file
// is cut back and the hash restored.
func (u *upload) rollback(prev state) {
	h, herr := unmarshalHash(prev.Alg, prev.Hash)
	terr := u.data.Truncate(prev.Size)
	if herr != nil || terr != nil {
		// Cannot happen with a healthy disk; a resume repairs the file.
		u.s.log.Error("blob store: cannot roll back failed append", "upload", u.id, "hash_err", herr, "truncate_err", terr)
		u.closeLocked()
		return
	}
	u.h = h
}

// saveState atomically replaces the session's state file with st, durably.
func (u *upload) saveState(st state) error {
	b, err := encodeState(st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(u.dir, stateFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, filePerm)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = datasync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(u.dir, stateFile))
	}
	if err == nil {
		err = syncDir(u.dir)
	}
	return err
}

// Commit implements blob.Upload.
func (u *upload) Commit(ctx context.Context, d digest.Digest, beforePublish func(size int64) error) (int64, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return 0, errClosed()
	}
	return u.commitLocked(ctx, d, beforePublish)
}

// AppendCommit implements blob.Upload. The last bytes are written and
// fdatasynced like Append's, but the state file is not rewritten: until the
// blob is published the session stays at its previous acknowledged size, so
// a failure (or a crash) leaves it exactly where the client last left it.
func (u *upload) AppendCommit(ctx context.Context, r io.Reader, limit int64, d digest.Digest, beforePublish func(size int64) error) (int64, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return 0, errClosed()
	}
	if err := checkDigest(d); err != nil {
		return 0, err
	}
	prev := u.st
	n, err := u.s.write(ctx, u.data, prev.Size, r, u.h, limit)
	if err != nil {
		u.rollback(prev)
		return 0, err
	}
	u.st.Size += n
	size, err := u.commitLocked(ctx, d, beforePublish)
	if err != nil && !u.closed {
		u.st = prev
		u.rollback(prev)
	}
	return size, err
}

// commitLocked verifies, records and publishes the session; u.mu is held.
func (u *upload) commitLocked(ctx context.Context, d digest.Digest, beforePublish func(size int64) error) (int64, error) {
	if err := checkDigest(d); err != nil {
		return 0, err
	}
	got, err := u.sum(ctx, d.Algorithm())
	if err != nil {
		return 0, err
	}
	if got != d {
		return 0, apperr.Errorf(apperr.EINVALID, "content does not match digest %s", d).WithDetail("DIGEST_INVALID")
	}
	size := u.st.Size
	if beforePublish != nil {
		if err := beforePublish(size); err != nil {
			return 0, err
		}
	}
	// Every acknowledged byte was fdatasynced by Append, and the file holds
	// exactly those bytes.
	if _, err := u.s.publish(filepath.Join(u.dir, dataFile), d); err != nil {
		return 0, err
	}
	if err := os.RemoveAll(u.dir); err != nil {
		// The blob is published; a leftover session is only clutter, and
		// resuming it finds no data.
		u.s.log.Warn("blob store: cannot remove committed upload", "upload", u.id, "err", err)
	}
	u.closeLocked()
	return size, nil
}

// sum returns the digest of the session's content with alg: from the
// running hash when alg is the session's, else by re-reading the data.
func (u *upload) sum(ctx context.Context, alg digest.Algorithm) (digest.Digest, error) {
	if alg == u.st.Alg {
		return digest.NewDigest(alg, u.h), nil
	}
	h := alg.Hash()
	buf := u.s.bufs.Get().(*[]byte)
	defer u.s.bufs.Put(buf)
	sr := io.NewSectionReader(u.data, 0, u.st.Size)
	for {
		if err := ctx.Err(); err != nil {
			return "", apperr.Wrap(err, apperr.EUNAVAILABLE, "commit interrupted")
		}
		n, err := sr.Read(*buf)
		h.Write((*buf)[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", apperr.Wrap(err, apperr.EINTERNAL, "cannot read upload")
		}
	}
	return digest.NewDigest(alg, h), nil
}

// Cancel implements blob.Upload.
func (u *upload) Cancel(ctx context.Context) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return errClosed()
	}
	defer u.closeLocked()
	if _, err := os.Lstat(u.dir); err != nil {
		return notFoundOr(err, "blob upload unknown", "cannot cancel upload")
	}
	if err := os.RemoveAll(u.dir); err != nil {
		return apperr.Wrap(err, apperr.EINTERNAL, "cannot cancel upload")
	}
	if err := syncDir(filepath.Dir(u.dir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return apperr.Wrap(err, apperr.EINTERNAL, "cannot cancel upload")
	}
	return nil
}

// Close implements blob.Upload. It is idempotent.
func (u *upload) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closeLocked()
	return nil
}

// closeLocked releases the session's files, lock and in-process hold.
func (u *upload) closeLocked() {
	if u.closed {
		return
	}
	u.closed = true
	u.closeFiles()
	u.s.release(u.id)
}

// closeFiles closes whatever files the session has open; closing the
// directory releases its flock.
func (u *upload) closeFiles() {
	if u.data != nil {
		u.data.Close()
	}
	if u.lock != nil {
		u.lock.Close()
	}
}
