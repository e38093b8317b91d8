//go:build !unix

package vulndb

func processCPU() (int64, bool) { return 0, false }
