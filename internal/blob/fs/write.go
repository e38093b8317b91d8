package fs

import (
	"context"
	"errors"
	"hash"
	"io"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/customs-dev/customs/internal/apperr"
)

// chunk is one buffer of bytes on its way to the file and the hash.
type chunk struct {
	buf *[]byte
	n   int
	off int64
	// direct: off and the buffer are aligned to directAlign, so the
	// aligned part of the bytes may be written with O_DIRECT.
	direct bool
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

// errRefused is returned by writeDirect when the filesystem refuses an
// O_DIRECT write (EINVAL: tmpfs on older kernels, FUSE, some network
// filesystems) before writing anything; errMisaligned when a short write
// left the rest unaligned. Either way the rest goes through the page cache.
var (
	errRefused    = errors.New("O_DIRECT write refused")
	errMisaligned = errors.New("O_DIRECT write ended off alignment")
)

// write reads r to its end (at most limit bytes when limit > 0, ETOOLARGE
// beyond) and writes the bytes to f from offset off while hashing them into
// h, then fdatasyncs f. It returns the number of bytes written.
//
// Reading runs in the calling goroutine; hashing and writing each in a
// goroutine of their own, side by side on the same buffers (opt.Buffers of
// them circulate), so that SHA-256, the costliest step, overlaps both the
// socket reads and the writes. Writeback of the written ranges is started
// as they complete (see writeback), and every
// opt.SyncEvery bytes an fdatasync runs in a third goroutine, so that the
// disk, its cache flushes included, works while the rest of the content is
// still arriving and the final fdatasync has little left to do.
//
// With opt.DirectMin set, the rest of a write past its first DirectMin
// bytes, from the first aligned offset, is written with O_DIRECT (Linux),
// half the buffers per pwritev, sparing the copy into fresh page-cache
// pages; bytes that cannot be aligned (the head before the first aligned
// offset, the tail after the last) and writes the filesystem refuses with
// O_DIRECT go through the page cache. The final fdatasync covers both, so
// the durability is the same.
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
	var failed, noDirect atomic.Bool
	go func() {
		w := chunkWriter{f: f, dfd: -1, noDirect: &noDirect, wb: newWriteback(f, off, s.opt.WritebackWindow, s.opt.MaxDirty, s.log), log: s.log}
		defer w.close()
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
		// At most half the buffers in one O_DIRECT write, so that the
		// reader fills the other half meanwhile.
		maxBatch := max(nbuf/2, 1)
		batch := make([]chunk, 0, maxBatch)
		for c := range work {
			batch = append(batch[:0], c)
			// Wait for the contiguous aligned chunks that follow, so that
			// one O_DIRECT write covers maxBatch buffers (an O_DIRECT write
			// is synchronous: fewer, larger ones keep the disk busier).
			for len(batch) < maxBatch {
				last := batch[len(batch)-1]
				if !last.direct || last.n%directAlign != 0 {
					break
				}
				next, ok := <-work
				if !ok {
					break
				}
				batch = append(batch, next)
			}
			if werr == nil {
				if err := w.write(batch); err != nil {
					werr = err
					failed.Store(true)
				}
			}
			last := batch[len(batch)-1]
			if end := last.off + int64(last.n); s.opt.SyncEvery > 0 && end-requested >= s.opt.SyncEvery {
				select {
				case syncReq <- struct{}{}:
					requested = end
				default: // one is already waiting to run; the next write asks again
				}
			}
			for _, c := range batch {
				c.release(free)
			}
		}
		close(syncReq)
		// An error of an early flush is reported once per open file: it
		// fails this write, as the final fdatasync would not see it again.
		if err := <-syncDone; werr == nil {
			werr = err
		}
		done <- werr
	}()

	useDirect := directSupported && s.opt.DirectMin >= 0
	var total int64
	var rerr error
	for rerr == nil && !failed.Load() {
		if err := ctx.Err(); err != nil {
			rerr = apperr.Wrap(err, apperr.EUNAVAILABLE, "upload interrupted")
			break
		}
		buf := <-free
		pos := off + total
		want := len(*buf)
		direct := useDirect && total >= s.opt.DirectMin && !noDirect.Load()
		if direct {
			if rem := pos % directAlign; rem != 0 {
				// Read just enough to reach the next aligned offset: this
				// chunk goes through the page cache, the next ones align.
				want = int(min(int64(want), directAlign-rem))
				direct = false
			} else {
				want -= want % directAlign
			}
		}
		n, err := io.ReadFull(sourceReader{r}, (*buf)[:want])
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
		c := chunk{buf: buf, n: n, off: pos, direct: direct, users: new(atomic.Int32)}
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

// chunkWriter is write's writing side: it owns the O_DIRECT descriptor,
// opened at the first aligned chunk.
type chunkWriter struct {
	f        *os.File
	dfd      int // O_DIRECT descriptor, -1 until opened
	noDirect *atomic.Bool
	wb       *writeback
	iov      [][]byte
	log      *slog.Logger
}

// write writes a batch of contiguous chunks: the aligned part of its
// leading direct chunks with one O_DIRECT pwritev, everything else (and
// everything, once O_DIRECT is refused) through the page cache.
func (w *chunkWriter) write(batch []chunk) error {
	start := batch[0].off
	var direct int64 // bytes of the batch written with O_DIRECT
	if batch[0].direct && !w.noDirect.Load() {
		w.iov = w.iov[:0]
		for _, c := range batch {
			if !c.direct {
				break
			}
			m := c.n - c.n%directAlign
			if m > 0 {
				w.iov = append(w.iov, (*c.buf)[:m])
			}
			if m < c.n {
				break
			}
		}
		if len(w.iov) > 0 {
			n, err := w.writeDirect(start)
			if err != nil {
				return err
			}
			direct = n
		}
	}
	// The rest of the batch, past the O_DIRECT part, through the page cache.
	from := start + direct
	for _, c := range batch {
		end := c.off + int64(c.n)
		if end <= from {
			continue
		}
		skip := max(from-c.off, 0)
		if _, err := w.f.WriteAt((*c.buf)[skip:c.n], c.off+skip); err != nil {
			return err
		}
		from = end
	}
	last := batch[len(batch)-1]
	w.wb.wrote(last.off + int64(last.n))
	return nil
}

// writeDirect writes w.iov at off with O_DIRECT, opening the descriptor on
// first use. It returns how many bytes it wrote; a refusal (or a short
// write ending off alignment) is not an error: O_DIRECT is turned off for
// the rest of the write and the caller writes the remainder buffered.
func (w *chunkWriter) writeDirect(off int64) (int64, error) {
	if w.dfd < 0 {
		fd, err := openDirect(w.f)
		if err != nil {
			w.refuse(err)
			return 0, nil
		}
		w.dfd = fd
	}
	n, err := writeDirect(w.dfd, w.iov, off)
	clear(w.iov) // keep no references to the pool's buffers
	switch {
	case err == errRefused || err == errMisaligned:
		w.refuse(err)
		return n, nil
	case err != nil:
		return n, err
	}
	return n, nil
}

// refuse turns O_DIRECT off for the rest of this write.
func (w *chunkWriter) refuse(err error) {
	if !w.noDirect.Swap(true) {
		w.log.Debug("blob store: O_DIRECT unavailable, writing through the page cache", "err", err)
	}
}

// close releases the O_DIRECT descriptor.
func (w *chunkWriter) close() {
	if w.dfd >= 0 {
		closeDirect(w.dfd)
		w.dfd = -1
	}
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
