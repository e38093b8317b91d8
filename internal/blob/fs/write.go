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

// chunk is one buffer of bytes on its way to the file.
type chunk struct {
	buf *[]byte
	n   int
	off int64
}

// write reads r to its end (at most limit bytes when limit > 0, ETOOLARGE
// beyond) and writes the bytes to f from offset off while hashing them into
// h, then fdatasyncs f. It returns the number of bytes written.
//
// Reading and hashing run in the calling goroutine, writing in another, with
// opt.Buffers buffers circulating between them; writeback of the written
// ranges is started as they complete (see writeback), so that disk I/O
// overlaps the copy and the final fdatasync has little left to flush.
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
	var failed atomic.Bool
	go func() {
		wb := newWriteback(f, off, s.opt.WritebackWindow, s.opt.MaxDirty, s.log)
		var werr error
		for c := range work {
			if werr == nil {
				if _, err := f.WriteAt((*c.buf)[:c.n], c.off); err != nil {
					werr = err
					failed.Store(true)
				} else {
					wb.wrote(c.off + int64(c.n))
				}
			}
			free <- c.buf
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
		h.Write((*buf)[:n])
		work <- chunk{buf: buf, n: n, off: off + total}
		total += int64(n)
	}
	close(work)
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
