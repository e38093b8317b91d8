//go:build !linux

package fs

// renameat2NoReplace is unavailable here; ok is always false.
func renameat2NoReplace(src, dst string) (existed bool, err error, ok bool) {
	return false, nil, false
}
