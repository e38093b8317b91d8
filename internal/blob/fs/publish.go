package fs

import (
	"errors"
	"io/fs"
	"os"
)

// renameNoReplace moves src to dst unless dst exists, in which case it
// reports existed and leaves both files as they are. It prefers an atomic
// no-replace rename, then a hard link, then (on filesystems with neither) a
// check followed by a rename; the last can replace a blob that appeared in
// between, which is harmless because both hold the same verified content.
func renameNoReplace(src, dst string) (existed bool, err error) {
	existed, err, ok := renameat2NoReplace(src, dst)
	if ok {
		return existed, err
	}
	return linkNoReplace(src, dst)
}

// linkNoReplace is renameNoReplace by hard link then unlink, falling back to
// check-then-rename where hard links are not supported.
func linkNoReplace(src, dst string) (existed bool, err error) {
	err = os.Link(src, dst)
	switch {
	case err == nil:
		if err := os.Remove(src); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
		return false, nil
	case errors.Is(err, fs.ErrExist):
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, err
	}
	if _, serr := os.Lstat(dst); serr == nil {
		return true, nil
	}
	return false, os.Rename(src, dst)
}
