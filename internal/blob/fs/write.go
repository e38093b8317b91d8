package fs

import (
	"context"
	"errors"
	"hash"
	"io"
	"os"
	"sync/atomic"

	"github.com/customs-dev/customs/internal/apperr"
)

// chunk is one buffer of bytes on its way to the file and the hash.
type chunk struct {
	buf *[]byte
	n   int
	off int64
	// users counts the stages (hasher, writer) still reading buf; the last
	// one to finish returns it to the free list.
	users *atomic.Int32
}

// release returns c's buffer to free once both stages are done with it.
func (c chunk) release(free chan<- *[]byte) {
	if c.users.Add(-1) == 0 {
		free <- c.buf
	}
}

// write reads r to its end (at most limit bytes when limit > 0, ETOOLARGE
// beyond) and writes the bytes to f from offset off while hashing them into
// h, then fdatasyncs f. It returns the number of bytes written.
//
// Reading runs in the calling goroutine; hashing and writing each in a
// goroutine of their own, side by side on the same buffers (opt.Buffers of
// them circulate), so that SHA-256, the costliest step, overlaps both the
// socket reads and the writes. Writeback of the written ranges is started
// as they complete (see writeback), and every opt.SyncEvery bytes an
// fdatasync runs in a goroutine of its own, so that the disk, its cache
// flushes included, works while the rest of the content is still arriving
// and the final fdatasync has little left to do.
//
// On error the file may hold extra bytes past off and h has absorbed them:
// the caller rolls both back.
func (s *Store) write(ctx context.Context, f *os.File, off int64, r io.Reader, h hash.Hash, limit int64) (int64, error) {
	nbuf := s.opt.Buffers
	free := make(chan *[]byte, nbuf)
	for range nbuf {
		free <- s.bufs.Get().(*[]byte)
	}
	defer func() {
		for range nbuf {
			s.bufs.Put(<-free)
		}
	}()

	work := make(chan chunk, nbuf)
	done := make(chan error, 1)
	hashWork := make(chan chunk, nbuf)
	hashDone := make(chan struct{})
	go func() {
		defer close(hashDone)
		for c := range hashWork {
			h.Write((*c.buf)[:c.n])
			c.release(free)
		}
	}()
	var failed atomic.Bool
	go func() {
		wb := newWriteback(f, off, s.opt.WritebackWindow, s.opt.MaxDirty, s.log)
		var werr error
		// Flushes of the device cache run beside the writes, every
		// SyncEvery bytes, so that the final fdatasync has little left.
		syncReq := make(chan struct{}, 1)
		syncDone := make(chan error, 1)
		go func() {
			var err error
			for range syncReq {
				if err == nil {
					if err = datasync(f); err != nil {
						failed.Store(true)
					}
				}
			}
			syncDone <- err
		}()
		// The first one after 2×SyncEvery bytes: a write shorter than that
		// would only add a flush just before the final one (measured: push
		// 64 MiB ×32 p99 1.07× distribution's with it, 1.05 without).
		requested := off + s.opt.SyncEvery
		for c := range work {
			end := c.off + int64(c.n)
			if werr == nil {
				if _, err := f.WriteAt((*c.buf)[:c.n], c.off); err != nil {
					werr = err
					failed.Store(true)
				} else {
					wb.wrote(end)
				}
			}
			if s.opt.SyncEvery > 0 && end-requested >= s.opt.SyncEvery {
				select {
				case syncReq <- struct{}{}:
					requested = end
				default: // one is already waiting to run; the next write asks again
				}
			}
			c.release(free)
		}
		close(syncReq)
		// An error of an early flush is reported once per open file: it
		// fails this write, as the final fdatasync would not see it again.
		if err := <-syncDone; werr == nil {
			werr = err
		}
		done <- werr
	}()

	var total int64
	var rerr error
	for rerr == nil && !failed.Load() {
		if err := ctx.Err(); err != nil {
			rerr = apperr.Wrap(err, apperr.EUNAVAILABLE, "upload interrupted")
			break
		}
		buf := <-free
		n, err := io.ReadFull(sourceReader{r}, *buf)
		switch {
		// Identity, not errors.Is: only io.ReadFull's own sentinels mean a
		// clean end of input; sourceReader renames the source's.
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			rerr = io.EOF
		case err != nil:
			rerr = readError(err)
		}
		if limit > 0 && total+int64(n) > limit {
			free <- buf
			rerr = apperr.Errorf(apperr.ETOOLARGE, "content exceeds the limit of %d bytes", limit)
			break
		}
		if n == 0 {
			free <- buf
			continue
		}
		c := chunk{buf: buf, n: n, off: off + total, users: new(atomic.Int32)}
		c.users.Store(2)
		hashWork <- c
		work <- c
		total += int64(n)
	}
	close(hashWork)
	close(work)
	<-hashDone
	werr := <-done
	if werr != nil {
		return total, apperr.Wrap(werr, apperr.EINTERNAL, "cannot write content")
	}
	if rerr != io.EOF {
		return total, rerr
	}
	if err := datasync(f); err != nil {
		return total, apperr.Wrap(err, apperr.EINTERNAL, "cannot write content")
	}
	return total, nil
}

// readError wraps a failure of the caller's reader: an *apperr.Error (for
// example ETOOLARGE from a limiting reader) passes unchanged; anything else
// (a client that went away) becomes EINVALID, its cause kept for logs.
func readError(err error) error {
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return err
	}
	return apperr.Wrap(err, apperr.EINVALID, "reading the content failed")
}

// errTruncated replaces an io.ErrUnexpectedEOF returned by the source
// itself: net/http reports a client that hung up mid-body that way, and it
// must not be mistaken for the io.ErrUnexpectedEOF io.ReadFull returns after
// a short, clean final read.
var errTruncated = errors.New("the data ended before it was complete (client disconnected?)")

// sourceReader renames the source's bare io.ErrUnexpectedEOF to errTruncated.
type sourceReader struct{ r io.Reader }

func (s sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.ErrUnexpectedEOF {
		err = errTruncated
	}
	return n, err
}
