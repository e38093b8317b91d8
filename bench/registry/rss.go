package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// rssSampler measures the peak resident set size of a process over a phase:
// it resets the kernel's high-water mark (VmHWM) at the start where the kernel
// allows it, and also samples VmRSS periodically, reporting the larger of the two.
type rssSampler struct {
	pid      int
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	peak     int64 // bytes, from sampling
	hwmReset bool  // whether VmHWM was reset, so it covers only this phase
	cpu0     time.Duration
	cpuErr   error
}

// startRSS starts sampling pid every interval until finish is called.
func startRSS(pid int, interval time.Duration) *rssSampler {
	r := &rssSampler{pid: pid, stop: make(chan struct{})}
	// "5" resets the peak RSS (Documentation/filesystems/proc.rst, clear_refs).
	r.hwmReset = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
	r.cpu0, r.cpuErr = readProcCPU(pid)
	r.sample()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				r.sample()
			}
		}
	}()
	return r
}

// sample records the current VmRSS if it is a new peak.
func (r *rssSampler) sample() {
	st, err := readProcStatus(r.pid)
	if err != nil {
		return
	}
	r.mu.Lock()
	r.peak = max(r.peak, st["VmRSS"])
	r.mu.Unlock()
}

// finish stops sampling and returns the peak RSS in bytes over the phase and
// the CPU time (user + system) the process used meanwhile (0 if unknown).
func (r *rssSampler) finish() (peakRSS int64, cpu time.Duration) {
	close(r.stop)
	r.wg.Wait()
	r.sample()
	r.mu.Lock()
	peak := r.peak
	r.mu.Unlock()
	if r.hwmReset {
		if st, err := readProcStatus(r.pid); err == nil {
			peak = max(peak, st["VmHWM"])
		}
	}
	if cpu1, err := readProcCPU(r.pid); err == nil && r.cpuErr == nil {
		cpu = cpu1 - r.cpu0
	}
	return peak, cpu
}

// userHZ is the unit of /proc/PID/stat's CPU times, fixed at 100 by the
// kernel's ABI whatever its internal tick rate.
const userHZ = 100

// readProcCPU returns the user + system CPU time the process has used.
func readProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseProcStat(b)
}

// parseProcStat extracts utime + stime from a /proc/PID/stat line. The
// command name, in parentheses, may hold spaces and parentheses itself, so
// fields are counted after the last ')'.
func parseProcStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat: no command name")
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the name, want at least 13", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil || n < 0 || n > 1<<36 { // 1<<36 ticks: 21 years, and no overflow
			return 0, fmt.Errorf("/proc stat: CPU time %q", s)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// readProcStatus returns the "kB" fields of /proc/PID/status in bytes.
func readProcStatus(pid int) (map[string]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	return parseProcStatus(b), nil
}

// parseProcStatus extracts "Key:   123 kB" lines as bytes; others are skipped.
func parseProcStatus(b []byte) map[string]int64 {
	out := map[string]int64{}
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		f := bytes.Fields(val)
		if len(f) != 2 || string(f[1]) != "kB" {
			continue
		}
		n, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || n < 0 || n > 1<<40 {
			continue
		}
		out[string(key)] = n * 1024
	}
	return out
}
