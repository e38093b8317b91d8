package main

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// readChunked reads r to the end with reads of the given sizes, cycling.
func readChunked(t *testing.T, r io.Reader, chunks []int) []byte {
	t.Helper()
	var out []byte
	for i := 0; ; i++ {
		p := make([]byte, chunks[i%len(chunks)])
		n, err := r.Read(p)
		out = append(out, p[:n]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestStreamIndependentOfChunking(t *testing.T) {
	const size = 10_007
	want := readChunked(t, newStream(42, size), []int{size + 10})
	if len(want) != size {
		t.Fatalf("one read gave %d bytes, want %d", len(want), size)
	}
	tests := []struct {
		name   string
		chunks []int
	}{
		{"bytes", []int{1}},
		{"odd", []int{3, 5, 7}},
		{"words", []int{8}},
		{"mixed", []int{1, 9, 4096, 2, 15}},
		{"large", []int{1 << 20}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := readChunked(t, newStream(42, size), tc.chunks)
			if !bytes.Equal(got, want) {
				t.Fatal("content depends on read sizes")
			}
		})
	}
}

func TestStreamSeedsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for _, size := range []int64{1 << 10, 1 << 20} {
		for i := range 50 {
			b, _ := io.ReadAll(newStream(blobSeed(size, i), 64))
			if seen[string(b)] {
				t.Fatalf("size %d blob %d repeats another blob's first bytes", size, i)
			}
			seen[string(b)] = true
		}
	}
	// Not trivially compressible: no long runs of one byte value.
	b, _ := io.ReadAll(newStream(7, 1<<16))
	counts := [256]int{}
	for _, c := range b {
		counts[c]++
	}
	for v, c := range counts {
		if c < 128 || c > 384 {
			t.Fatalf("byte %d occurs %d times in 64 KiB, want about 256", v, c)
		}
	}
}

func TestDigesterCache(t *testing.T) {
	dir := t.TempDir()
	d, err := newDigester(dir)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := d.blobs(5000, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range blobs {
		content, _ := io.ReadAll(newStream(b.seed, b.size))
		if want := digest.FromBytes(content); b.digest != want {
			t.Fatalf("blob %d digest %s, want %s", i, b.digest, want)
		}
	}
	// A fresh digester reads the cache file and ignores garbage lines.
	f, err := os.OpenFile(filepath.Join(dir, "bench-registry-digests.txt"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("garbage\n" + contentVersion + " 1 2 sha256:nothex\n")
	f.Close()
	d2, err := newDigester(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(d2.mem) != 3 {
		t.Fatalf("cache holds %d entries, want 3", len(d2.mem))
	}
	again, err := d2.blobs(5000, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range again {
		if again[i] != blobs[i] {
			t.Fatalf("cached blob %d = %+v, want %+v", i, again[i], blobs[i])
		}
	}
}

func TestParseCacheLine(t *testing.T) {
	good := digest.NewDigestFromBytes(digest.SHA256, make([]byte, sha256.Size))
	tests := []struct {
		name string
		line string
		ok   bool
	}{
		{"valid", contentVersion + " ff 1024 " + good.String(), true},
		{"other version", "v0 ff 1024 " + good.String(), false},
		{"bad seed", contentVersion + " zz 1024 " + good.String(), false},
		{"negative size", contentVersion + " ff -1 " + good.String(), false},
		{"bad digest", contentVersion + " ff 1024 sha256:abc", false},
		{"sha512", contentVersion + " ff 1024 sha512:" + strings.Repeat("0", 128), false},
		{"extra field", contentVersion + " ff 1024 " + good.String() + " x", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, dg, ok := parseCacheLine(tc.line)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if ok && (key != cacheKey(0xff, 1024) || dg != good) {
				t.Errorf("got %q %q", key, dg)
			}
		})
	}
}

func FuzzParseCacheLine(f *testing.F) {
	f.Add(contentVersion + " ff 1024 sha256:" + strings.Repeat("a", 64))
	f.Add("")
	f.Fuzz(func(t *testing.T, line string) {
		key, dg, ok := parseCacheLine(line)
		if ok && (dg.Validate() != nil || !strings.HasPrefix(key, contentVersion+" ")) {
			t.Fatalf("accepted %q as %q %q", line, key, dg)
		}
	})
}

func BenchmarkStream(b *testing.B) {
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(buf)))
	s := newStream(1, 1<<62)
	for b.Loop() {
		s.Read(buf)
	}
}
