//go:build linux

package fs

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"unsafe"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/customs-dev/customs/internal/blob"
	"github.com/customs-dev/customs/internal/blob/blobtest"
)

// O_DIRECT from the first aligned offset, with buffers small enough that
// every Append and Put of the suite crosses the switch, realigns after
// unaligned appends and gathers several buffers into one write.
func TestConformanceDirect(t *testing.T) {
	opts := Options{BufferSize: 8192, Buffers: 4, DirectMin: 1, SyncEvery: 16384}
	blobtest.Run(t, func(t *testing.T) blob.Store { return newStore(t, t.TempDir(), opts) })
}

// resident counts the pages of file p that are in the page cache.
func resident(t *testing.T, p string) (pages, total int) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	ps := os.Getpagesize()
	vec := make([]byte, (len(m)+ps-1)/ps)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	for _, v := range vec {
		pages += int(v & 1)
	}
	return pages, len(vec)
}

// A large Put, and a large Append after an unaligned one, write all but
// their first DirectMin bytes with O_DIRECT: the blob is correct, durable
// as before, and (unlike through the page cache) mostly not resident.
func TestDirectLeavesPageCache(t *testing.T) {
	ctx := context.Background()
	const size = 48<<20 + 12345 // an unaligned tail
	const directMin = 8 << 20
	b := blobtest.Content(21, size)
	d := digest.FromBytes(b)
	ps := os.Getpagesize()
	for _, tc := range []struct {
		name      string
		opts      Options
		maxPages  int // at most this many pages resident after the write
		minPages  int
		unaligned bool // an Append of 1000 bytes first
	}{
		{"put direct", Options{DirectMin: directMin}, (directMin + 1<<20) / ps, 0, false},
		{"append direct unaligned", Options{DirectMin: directMin}, (directMin + 1<<20) / ps, 0, true},
		{"put buffered (default)", Options{}, size, size / 2 / ps, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, t.TempDir(), tc.opts)
			if tc.unaligned {
				u, err := s.NewUpload(ctx, digest.SHA256)
				if err != nil {
					t.Fatal(err)
				}
				defer u.Close()
				if _, err := u.Append(ctx, bytes.NewReader(b[:1000]), 0); err != nil {
					t.Fatal(err)
				}
				// A reader returning odd amounts, like a socket.
				if n, err := u.AppendCommit(ctx, iotest.HalfReader(bytes.NewReader(b[1000:])), 0, d, nil); err != nil || n != size {
					t.Fatalf("AppendCommit = %d, %v", n, err)
				}
			} else if n, err := s.Put(ctx, d, bytes.NewReader(b), nil); err != nil || n != size {
				t.Fatalf("Put = %d, %v", n, err)
			}
			p := s.blobPath(d)
			pages, total := resident(t, p)
			t.Logf("%d of %d pages resident", pages, total)
			if pages > tc.maxPages || pages < tc.minPages {
				t.Fatalf("%d of %d pages resident, want %d..%d", pages, total, tc.minPages, tc.maxPages)
			}
			got, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, b) {
				t.Fatal("content differs")
			}
		})
	}
}

// The kernel refuses an O_DIRECT write from a misaligned buffer with
// EINVAL: writeDirect reports errRefused, and the chunk writer writes the
// whole batch through the page cache instead and turns O_DIRECT off.
func TestDirectRefusedFallsBack(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := openDirect(f)
	if err != nil {
		t.Fatalf("openDirect on %s: %v", p, err)
	}
	defer closeDirect(fd)
	buf := alignedBuffer(3 * directAlign)
	if _, err := writeDirect(fd, [][]byte{(*buf)[1 : 1+directAlign]}, 0); err != errRefused {
		t.Fatalf("misaligned O_DIRECT write: %v, want errRefused", err)
	}

	want := blobtest.Content(5, 2*directAlign+100)
	bad := (*buf)[1 : 1+2*directAlign] // misaligned, as only a bug would make it
	copy(bad, want)
	tail := alignedBuffer(directAlign)
	copy(*tail, want[2*directAlign:])
	var noDirect atomic.Bool
	log := slog.New(slog.DiscardHandler)
	w := chunkWriter{f: f, dfd: -1, noDirect: &noDirect, wb: newWriteback(f, 0, -1, 0, log), log: log}
	defer w.close()
	batch := []chunk{
		{buf: &bad, n: len(bad), off: 0, direct: true},
		{buf: tail, n: 100, off: int64(len(bad)), direct: true},
	}
	if err := w.write(batch); err != nil {
		t.Fatal(err)
	}
	if !noDirect.Load() {
		t.Fatal("O_DIRECT still on after a refusal")
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("file holds %d bytes, not what was written (%d)", len(got), len(want))
	}
}

// A buffer from the pool is aligned for O_DIRECT and has the asked length.
func TestAlignedBuffer(t *testing.T) {
	for _, n := range []int{4096, 5000, 256 << 10} {
		b := alignedBuffer(n)
		if len(*b) != n || cap(*b) != n || uintptrOf(*b)%directAlign != 0 {
			t.Fatalf("alignedBuffer(%d): len %d cap %d addr %% %d = %d", n, len(*b), cap(*b), directAlign, uintptrOf(*b)%directAlign)
		}
	}
}
