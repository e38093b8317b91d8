//go:build linux

package fs

import (
	"os"

	"golang.org/x/sys/unix"
)

// renameat2NoReplace renames src to dst with RENAME_NOREPLACE. ok is false
// when the filesystem does not support that flag.
func renameat2NoReplace(src, dst string) (existed bool, err error, ok bool) {
	for {
		err = unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
		switch err {
		case nil:
			return false, nil, true
		case unix.EINTR:
			continue
		case unix.EEXIST:
			return true, nil, true
		case unix.EINVAL, unix.ENOSYS, unix.ENOTSUP:
			return false, nil, false
		default:
			return false, &os.LinkError{Op: "renameat2", Old: src, New: dst, Err: err}, true
		}
	}
}
