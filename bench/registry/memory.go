package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// memoryMode says how the benchmark prepares the machine's memory right
// before each timed write of diskTargetSize bytes: every disk baseline run
// and every push of the disk-target row alike, so that the baseline and the
// pushes meet memory in the same state.
//
// It matters on virtual machines with free page reporting (virtio-balloon,
// as on the Firecracker VMs this benchmark was developed on): memory the
// guest frees is handed back to the host a second or two later, and the next
// use of each 4 KiB page of it costs a host fault. A 1 GiB write into the
// page cache then takes ~1.7 s of system time instead of ~0.35 s, and `dd
// conv=fsync` of 1 GiB runs at ~420 MB/s instead of ~1,100 MB/s; which of
// the two a write meets depends on what was freed how long before, so
// without preparation a baseline and a push measure different machines.
type memoryMode string

const (
	// memoryReused writes, fsyncs and removes an untimed scratch file of
	// the same size on the same filesystem right before the timed write,
	// which then reuses memory just freed and not yet handed back: the
	// steady state of a busy server, whose page cache recycles its own
	// pages. This measures the disk rather than the VM's memory.
	memoryReused memoryMode = "reused"
	// memorySettled waits until the VM's free page reporting has been idle
	// for reportingQuiet, so that the timed write lands in memory the host
	// must fault in again: a machine that has been idle.
	memorySettled memoryMode = "settled"
	// memoryAsIs prepares nothing.
	memoryAsIs memoryMode = "as-is"
)

// parseMemoryMode checks a -memory value.
func parseMemoryMode(s string) (memoryMode, error) {
	switch m := memoryMode(s); m {
	case memoryReused, memorySettled, memoryAsIs:
		return m, nil
	}
	return "", fmt.Errorf("-memory %q: want reused, settled or as-is", s)
}

// describe is the report's wording of the mode.
func (m memoryMode) describe() string {
	switch m {
	case memoryReused:
		return "memory reused: each timed write (baseline run or push) comes right after an untimed write, fsync and removal of a scratch file of the same size, so it reuses just-freed memory as a busy server's page cache does"
	case memorySettled:
		return "memory settled: each timed write (baseline run or push) starts once the VM's free page reporting has been idle for " + reportingQuiet.String() + ", so it lands in memory the host must fault in again"
	}
	return "memory as is: no preparation before the timed writes"
}

// Where Linux exposes how much free memory it has reported to the host, and
// how long that figure must stay unchanged for reporting to count as idle
// (the kernel delays each reporting pass by two seconds).
const (
	reportedKiBPath = "/sys/module/page_reporting/parameters/reported_kib"
	reportingQuiet  = 3 * time.Second
	reportingMax    = 30 * time.Second
)

// memoryPrep prepares memory before timed writes of size bytes in dir.
type memoryPrep struct {
	mode memoryMode
	dir  string
	size int64
	src  []byte // scratch content for memoryReused
}

// newMemoryPrep returns the preparation for mode.
func newMemoryPrep(mode memoryMode, dir string, size int64) (*memoryPrep, error) {
	m := &memoryPrep{mode: mode, dir: dir, size: size}
	if mode == memoryReused {
		src, err := diskSource()
		if err != nil {
			return nil, err
		}
		m.src = src
	}
	return m, nil
}

// prepare readies memory for one timed write. It ends with the
// filesystem synced, so the timed write does not also pay for the journal
// commit (and, with the discard mount option, the discards) of the removal.
func (m *memoryPrep) prepare() error {
	if m == nil {
		return nil
	}
	switch m.mode {
	case memoryReused:
		if _, err := timeWrite(m.dir, m.src, m.size, 0); err != nil {
			return fmt.Errorf("memory preparation: scratch write: %w", err)
		}
		syscall.Sync()
	case memorySettled:
		syscall.Sync()
		waitReportingIdle(reportedKiBPath, reportingQuiet, reportingMax, 100*time.Millisecond)
	}
	return nil
}

// waitReportingIdle returns once the counter in path has not changed for
// quiet, or after limit; at once when path cannot be read (no free page
// reporting on this machine).
func waitReportingIdle(path string, quiet, limit, poll time.Duration) {
	last, err := os.ReadFile(path)
	if err != nil {
		return
	}
	start, since := time.Now(), time.Now()
	for time.Since(since) < quiet && time.Since(start) < limit {
		time.Sleep(poll)
		cur, err := os.ReadFile(path)
		if err != nil {
			return
		}
		if strings.TrimSpace(string(cur)) != strings.TrimSpace(string(last)) {
			last, since = cur, time.Now()
		}
	}
}
