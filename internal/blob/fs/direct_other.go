//go:build !linux

package fs

import (
	"errors"
	"os"
)

// directAlign is the buffer alignment kept everywhere, so that buffers are
// the same on every platform.
const directAlign = 4096

// directSupported is false: O_DIRECT is a Linux flag (macOS has F_NOCACHE,
// which is not the same thing), so every write goes through the page cache.
const directSupported = false

// openDirect is never called where directSupported is false.
func openDirect(*os.File) (int, error) { return -1, errors.ErrUnsupported }

// closeDirect does nothing.
func closeDirect(int) {}

// writeDirect is never called where directSupported is false.
func writeDirect(int, [][]byte, int64) (int64, error) { return 0, errRefused }
