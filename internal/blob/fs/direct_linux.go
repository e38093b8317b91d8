//go:build linux

package fs

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directAlign is the alignment of O_DIRECT writes: file offset, length and
// buffer address. 4096 covers the logical block size of every common disk;
// a filesystem that needs more refuses the write with EINVAL, and the
// write falls back to the page cache.
const directAlign = 4096

// directSupported is true where O_DIRECT exists.
const directSupported = true

// openDirect opens f's file a second time for writing with O_DIRECT,
// through /proc/self/fd so that it is the same inode whatever happened to
// its name. The returned descriptor is closed with closeDirect.
func openDirect(f *os.File) (int, error) {
	for {
		fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), unix.O_WRONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// closeDirect closes a descriptor from openDirect.
func closeDirect(fd int) { unix.Close(fd) }

// writeDirect writes bufs (each of a multiple of directAlign bytes, at
// aligned addresses) to fd at off with one pwritev, continuing after a short
// write. It returns how many bytes it wrote; errRefused means the
// filesystem refused O_DIRECT for this write (EINVAL) before writing
// anything.
func writeDirect(fd int, bufs [][]byte, off int64) (int64, error) {
	var done int64
	for len(bufs) > 0 {
		n, err := unix.Pwritev(fd, bufs, off+done)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			if err == unix.EINVAL && done == 0 {
				return 0, errRefused
			}
			return done, err
		}
		if n == 0 {
			return done, unix.EIO
		}
		done += int64(n)
		for n > 0 {
			if n >= len(bufs[0]) {
				n -= len(bufs[0])
				bufs = bufs[1:]
				continue
			}
			bufs[0] = bufs[0][n:]
			n = 0
		}
		if len(bufs) > 0 && (uintptrOf(bufs[0])%directAlign != 0 || (off+done)%directAlign != 0) {
			// A short write that ended off the alignment: the caller writes
			// the rest through the page cache.
			return done, errMisaligned
		}
	}
	return done, nil
}

// uintptrOf is the address of b's first byte.
func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
