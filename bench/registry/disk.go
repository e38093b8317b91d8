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
func measureDisk(dir string, size int64, runs int) (diskResult, error) {
	src := make([]byte, 64<<20)
	if _, err := io.ReadFull(newStream(0xd15c, int64(len(src))), src); err != nil {
		return diskResult{}, err
	}
	res := diskResult{size: size}
	for range runs {
		syscall.Sync()
		path := fmt.Sprintf("%s/disk-baseline-%d", dir, time.Now().UnixNano())
		start := time.Now()
		f, err := os.Create(path)
		if err != nil {
			return res, err
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
		elapsed := time.Since(start)
		os.Remove(path)
		if err != nil {
			return res, fmt.Errorf("disk baseline: %w", err)
		}
		res.runs = append(res.runs, float64(size)/1e6/elapsed.Seconds())
	}
	syscall.Sync()
	return res, nil
}
