//go:build !unix

package match

func processCPU() (int64, bool) { return 0, false }
