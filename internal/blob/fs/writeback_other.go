//go:build !linux

package fs

import (
	"log/slog"
	"os"
)

// writeback is a no-op where sync_file_range does not exist: the final
// datasync flushes everything.
type writeback struct{}

// newWriteback returns a writeback that does nothing.
func newWriteback(*os.File, int64, int64, int64, *slog.Logger) *writeback { return &writeback{} }

// wrote does nothing.
func (*writeback) wrote(int64) {}

// datasync flushes f.
func datasync(f *os.File) error { return f.Sync() }
