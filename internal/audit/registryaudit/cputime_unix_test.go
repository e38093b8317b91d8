//go:build unix

package registryaudit_test

import "syscall"

// processCPU returns the CPU time (user + system) the process has used, in
// nanoseconds, so the pull benchmark can charge the audit writer's work to
// the pulls that caused it; false where it cannot be read.
func processCPU() (int64, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), true
}
