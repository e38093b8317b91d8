//go:build unix

package fs

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// errLocked reports that another holder has the lock.
var errLocked = errors.New("locked by another holder")

// lockFile takes an exclusive advisory lock (flock) on f without waiting:
// errLocked if another open file description holds it. The lock lasts until
// f is closed, and also excludes other processes sharing the directory.
func lockFile(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch err {
		case nil:
			return nil
		case unix.EINTR:
			continue
		case unix.EWOULDBLOCK:
			return errLocked
		case unix.ENOTSUP, unix.ENOLCK, unix.EINVAL:
			return nil // filesystem without flock: in-process exclusion only
		default:
			return err
		}
	}
}
