package fs

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/blob/blobtest"
)

// Benchmarks write to $CUSTOMS_BENCH_DIR if set (to measure the filesystem
// the data will live on), else to a temp dir. bench/disk/disk.sh compares
// them with dd on the same filesystem. Run with -benchtime=1x for 1 GiB.

var benchSizes = []struct {
	name string
	size int64
}{
	{"1MiB", 1 << 20},
	{"64MiB", 64 << 20},
	{"1GiB", 1 << 30},
}

// repeatReader yields n bytes by cycling over b, copying like a socket.
type repeatReader struct {
	b   []byte
	n   int64
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	k := copy(p, r.b[r.off:])
	r.off = (r.off + k) % len(r.b)
	r.n -= int64(k)
	return k, nil
}

// benchSource returns a fresh reader of size bytes and their digest.
func benchSource(b *testing.B, size int64) (func() io.Reader, digest.Digest) {
	b.Helper()
	block := blobtest.Content(42, 4<<20)
	dg := digest.SHA256.Digester()
	if _, err := io.Copy(dg.Hash(), &repeatReader{b: block, n: size}); err != nil {
		b.Fatal(err)
	}
	return func() io.Reader { return &repeatReader{b: block, n: size} }, dg.Digest()
}

// benchStore opens a store in $CUSTOMS_BENCH_DIR or a temp dir.
func benchStore(b *testing.B, opts Options) *Store {
	b.Helper()
	dir := b.TempDir()
	if base := os.Getenv("CUSTOMS_BENCH_DIR"); base != "" {
		var err error
		if dir, err = os.MkdirTemp(base, "customs-bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	return newStore(b, dir, opts)
}

// benchAppend measures a monolithic push: NewUpload, one Append, Commit.
func benchAppend(b *testing.B, size int64, opts Options) {
	ctx := context.Background()
	s := benchStore(b, opts)
	src, d := benchSource(b, size)
	b.SetBytes(size)
	cpu := startCPU()
	b.ResetTimer()
	for range b.N {
		u, err := s.NewUpload(ctx, digest.SHA256)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := u.Append(ctx, src(), 0); err != nil {
			b.Fatal(err)
		}
		if _, err := u.Commit(ctx, d, nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		u.Close()
		if err := s.Delete(ctx, d); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	cpu.report(b)
}

// cpuMeter measures the process's CPU time (user + system, all threads).
type cpuMeter struct{ start time.Duration }

func startCPU() cpuMeter { return cpuMeter{processCPU()} }

// report adds the CPU time per operation since startCPU to b's results
// (it includes the stopped-timer parts: Delete of the blob).
func (c cpuMeter) report(b *testing.B) {
	b.ReportMetric(float64(processCPU()-c.start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// BenchmarkAppend measures NewUpload + Append + Commit of one blob.
func BenchmarkAppend(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) { benchAppend(b, sz.size, Options{}) })
	}
}

// BenchmarkAppendNoWriteback is BenchmarkAppend without early writeback:
// the disk only starts when the final fdatasync asks it to.
func BenchmarkAppendNoWriteback(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) { benchAppend(b, sz.size, Options{WritebackWindow: -1}) })
	}
}

// BenchmarkAppendNoSync is BenchmarkAppend with no fdatasync before the
// final one (SyncEvery -1), as before the early flushes.
func BenchmarkAppendNoSync(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) { benchAppend(b, sz.size, Options{SyncEvery: -1}) })
	}
}

// BenchmarkPut measures Put of one blob.
func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			s := benchStore(b, Options{})
			src, d := benchSource(b, sz.size)
			b.SetBytes(sz.size)
			b.ResetTimer()
			for range b.N {
				if _, err := s.Put(ctx, d, src(), nil); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := s.Delete(ctx, d); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkChunkedAppend measures a 64 MiB push in 5 MiB PATCH-sized
// chunks, each acknowledged durably (the cost of resumability).
func BenchmarkChunkedAppend(b *testing.B) {
	ctx := context.Background()
	const size, chunk = 64 << 20, 5 << 20
	s := benchStore(b, Options{})
	block := blobtest.Content(43, size)
	d := digest.FromBytes(block)
	b.SetBytes(size)
	cpu := startCPU()
	b.ResetTimer()
	for range b.N {
		u, err := s.NewUpload(ctx, digest.SHA256)
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < size; off += chunk {
			if _, err := u.Append(ctx, bytes.NewReader(block[off:min(off+chunk, size)]), 0); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := u.Commit(ctx, d, nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		u.Close()
		s.Delete(ctx, d)
		b.StartTimer()
	}
	b.StopTimer()
	cpu.report(b)
}
