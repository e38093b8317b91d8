//go:build !unix

package fs

import (
	"errors"
	"os"
)

// errLocked reports that another holder has the lock.
var errLocked = errors.New("locked by another holder")

// lockFile does nothing where flock does not exist: sessions are exclusive
// within one process only.
func lockFile(*os.File) error { return nil }
