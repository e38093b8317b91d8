//go:build linux

package fs

import (
	"log/slog"
	"os"

	"golang.org/x/sys/unix"
)

// writeback starts writeback of a file's freshly written ranges early and
// bounds how much of it stays dirty in the page cache, so that disk I/O runs
// while the rest of the content is still arriving (Linux sync_file_range).
// It is advisory: the caller still fdatasyncs at the end, and any failure
// just turns it off.
type writeback struct {
	fd       int
	kicked   int64 // writeback was requested for [start, kicked)
	waited   int64 // [start, waited) is known to be written
	window   int64
	maxDirty int64
	off      bool
	log      *slog.Logger
}

// newWriteback tracks writes to f from offset start; window <= 0 disables it.
func newWriteback(f *os.File, start, window, maxDirty int64, log *slog.Logger) *writeback {
	return &writeback{fd: int(f.Fd()), kicked: start, waited: start, window: window, maxDirty: maxDirty, off: window <= 0, log: log}
}

// wrote records that everything before end has been written to the file.
func (w *writeback) wrote(end int64) {
	if w.off || end-w.kicked < w.window {
		return
	}
	if err := unix.SyncFileRange(w.fd, w.kicked, end-w.kicked, unix.SYNC_FILE_RANGE_WRITE); err != nil {
		w.disable(err)
		return
	}
	w.kicked = end
	if w.kicked-w.waited <= w.maxDirty {
		return
	}
	to := w.kicked - w.maxDirty
	const wait = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
	if err := unix.SyncFileRange(w.fd, w.waited, to-w.waited, wait); err != nil {
		w.disable(err)
		return
	}
	w.waited = to
}

// disable turns early writeback off for the rest of this write.
func (w *writeback) disable(err error) {
	w.off = true
	w.log.Debug("blob store: early writeback unavailable, relying on fdatasync", "err", err)
}

// datasync flushes f's data and the metadata needed to read it back.
func datasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}
