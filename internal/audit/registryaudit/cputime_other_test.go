//go:build !unix

package registryaudit_test

// processCPU is not available here; the benchmark reports wall time only.
func processCPU() (int64, bool) { return 0, false }
