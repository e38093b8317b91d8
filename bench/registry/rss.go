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
}

// startRSS starts sampling pid every interval until finish is called.
func startRSS(pid int, interval time.Duration) *rssSampler {
	r := &rssSampler{pid: pid, stop: make(chan struct{})}
	// "5" resets the peak RSS (Documentation/filesystems/proc.rst, clear_refs).
	r.hwmReset = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
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

// finish stops sampling and returns the peak RSS in bytes over the phase.
func (r *rssSampler) finish() int64 {
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
	return peak
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
