//go:build !linux

package main

import "os"

// directFlag is 0 where O_DIRECT does not exist: no reference writes.
const directFlag = 0

// startWriteback does nothing where sync_file_range does not exist.
func startWriteback(*os.File, int64, int64) {}
