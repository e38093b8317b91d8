package layers

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"path"
	"strings"
	"testing"
)

// FuzzWalk feeds arbitrary bytes as a layer blob: Walk must not panic, must
// stay within its limits, must hand out only clean paths inside the root,
// and must fail only with one of the package's error kinds.
func FuzzWalk(f *testing.F) {
	plain := tarOf(f, sampleEntries...)
	f.Add(plain, "")
	f.Add(gzipOf(f, plain), "application/vnd.oci.image.layer.v1.tar+gzip")
	f.Add(zstdOf(f, plain), "application/vnd.oci.image.layer.v1.tar+zstd")
	f.Add(sparseTar(f, "big", 1<<40, "x"), "")
	f.Add(tarOf(f, ent{name: "../x"}), "")
	f.Add(tarOf(f, ent{name: "a", typ: tar.TypeLink, link: "/../b"}), "")
	f.Add([]byte{}, "application/vnd.oci.image.layer.v1.tar")
	f.Add([]byte("garbage"), "text/plain")

	lim := Limits{MaxExpandedBytes: 4 << 20, MaxRatio: 50, RatioFloorBytes: 64 << 10, MaxEntries: 10_000}
	f.Fuzz(func(t *testing.T, blob []byte, mediaType string) {
		var read int64
		sum, err := Walk(context.Background(), bytes.NewReader(blob), Blob{MediaType: mediaType}, lim, func(e *Entry, body io.Reader) error {
			paths := []string{e.Path}
			if e.Kind == Hardlink { // symlink targets are reported as written
				paths = append(paths, e.Link)
			}
			for _, p := range paths {
				if p == "" || p != path.Clean(p) || strings.HasPrefix(p, "/") || p == ".." || strings.HasPrefix(p, "../") {
					t.Fatalf("unsafe path %q in entry %+v", p, e)
				}
			}
			if e.Path == "." && e.Kind != Opaque {
				t.Fatalf("root entry of kind %s", e.Kind)
			}
			if body != nil {
				// Holes of a sparse file are not in the stream: a body can be
				// far longer than the layer (callers bound it by Size).
				n, err := io.CopyN(io.Discard, body, 1<<20)
				if err == io.EOF {
					err = nil
				}
				read += n
				return err
			}
			return nil
		})
		if sum.ExpandedBytes > lim.MaxExpandedBytes+1 {
			t.Fatalf("expanded %d bytes, limit %d", sum.ExpandedBytes, lim.MaxExpandedBytes)
		}
		if sum.Entries > lim.MaxEntries+1 {
			t.Fatalf("walked %d entries, limit %d", sum.Entries, lim.MaxEntries)
		}
		if err != nil && !isLayerError(err) {
			t.Fatalf("error of no layer kind: %v", err)
		}
	})
}

// FuzzCleanPath: any name is either refused as unsafe or becomes a clean,
// relative path inside the root.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"a/b", "/a/../../b", "../a", "./", "a\x00", "//x//y/", "a/./b/.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p, err := CleanPath(name)
		if err != nil {
			if !isLayerError(err) {
				t.Fatalf("CleanPath(%q): error of no layer kind: %v", name, err)
			}
			return
		}
		if p == "" || p != path.Clean(p) || strings.HasPrefix(p, "/") || p == ".." || strings.HasPrefix(p, "../") || strings.ContainsRune(p, 0) {
			t.Fatalf("CleanPath(%q) = %q: not a clean path inside the root", name, p)
		}
	})
}
