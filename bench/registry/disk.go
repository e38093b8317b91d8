package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"syscall"
	"time"
)

// diskResult is the machine's sequential fsync'd write rate for one size.
type diskResult struct {
	size int64
	runs []float64 // MB/s of each run
	// direct holds, for reference, the MB/s of the same writes with
	// O_DIRECT (the device without the page cache), one per run; empty
	// where O_DIRECT is not available.
	direct []float64
	// bare holds, for reference, the MB/s of a bare push pipeline
	// (measureBarePush), one per run; empty where not measured.
	bare []float64
}

// median returns the median MB/s over the runs.
func (d diskResult) median() float64 {
	return median(slices.Clone(d.runs))
}

// measureDisk writes size bytes sequentially in 1 MiB writes to a new file in
// dir and fsyncs it, timing from create to the end of fsync, `runs` times:
// what `dd if=SRC of=FILE bs=1M count=N conv=fsync` measures. The source is a
// pre-generated pseudo-random buffer, so neither generation nor a zero page
// detector on the virtual disk flatters or penalises the result.
//
// prepare, when not nil, runs (untimed) before each timed write; the
// O_DIRECT reference writes do not use the page cache and get none.
func measureDisk(dir string, size int64, runs int, prepare func() error) (diskResult, error) {
	src, err := diskSource()
	if err != nil {
		return diskResult{}, err
	}
	res := diskResult{size: size}
	for range runs {
		if prepare != nil {
			if err := prepare(); err != nil {
				return res, fmt.Errorf("disk baseline: %w", err)
			}
		}
		rate, err := timeWrite(dir, src, size, 0)
		if err != nil {
			return res, fmt.Errorf("disk baseline: %w", err)
		}
		res.runs = append(res.runs, rate)
		if directFlag != 0 {
			// A filesystem refusing O_DIRECT (tmpfs) just has no reference.
			if rate, err := timeWrite(dir, src, size, directFlag); err == nil {
				res.direct = append(res.direct, rate)
			}
		}
	}
	syscall.Sync()
	return res, nil
}

// warmDisk writes and removes size bytes in dir, untimed, so that the
// timed writes after it find the kernel's page allocator in its steady
// state. On the VMs this benchmark runs on, the first use of guest memory
// that has never been touched costs the host a fault per page: a 1 GiB
// write into such pages took 1.65 s of system time against 0.3 s once the
// memory had been used, which made the baseline swing between ~300 and
// ~1,300 MB/s with how long the machine had been up.
func warmDisk(dir string, size int64) error {
	src, err := diskSource()
	if err != nil {
		return err
	}
	_, err = timeWrite(dir, src, size, 0)
	return err
}

// diskSource is the pre-generated pseudo-random buffer the baseline
// writes, cycled: neither generation nor a zero page detector on the
// virtual disk flatters or penalises the result.
func diskSource() ([]byte, error) {
	src := make([]byte, 64<<20)
	if _, err := io.ReadFull(newStream(0xd15c, int64(len(src))), src); err != nil {
		return nil, err
	}
	return src, nil
}

// timeWrite creates a file in dir with the extra open flags, writes size
// bytes of src (cycled) to it sequentially in 1 MiB writes, fsyncs and
// removes it, and returns the rate in MB/s from create to the end of
// fsync. src must be 1 MiB-aligned in memory when flags has O_DIRECT (Go's
// allocator aligns a 64 MiB slice to its page size).
func timeWrite(dir string, src []byte, size int64, flags int) (float64, error) {
	syscall.Sync()
	path := fmt.Sprintf("%s/disk-baseline-%d", dir, time.Now().UnixNano())
	defer os.Remove(path)
	start := time.Now()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|flags, 0o644)
	if err != nil {
		return 0, err
	}
	var written int64
	for written < size && err == nil {
		off := written % int64(len(src))
		n := min(1<<20, size-written, int64(len(src))-off)
		var k int
		k, err = f.Write(src[off : off+n])
		written += int64(k)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	return float64(size) / 1e6 / time.Since(start).Seconds(), nil
}
