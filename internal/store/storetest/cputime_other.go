//go:build !unix

package storetest

// processCPU is not available here.
func processCPU() (int64, bool) { return 0, false }
