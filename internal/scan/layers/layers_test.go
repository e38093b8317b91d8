package layers

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/apperr"
)

// seen is what a test's WalkFunc records of one entry.
type seen struct {
	Path string
	Kind Kind
	Link string
	Size int64
	Body string
}

func walkAll(t testing.TB, blob []byte, b Blob, lim Limits) ([]seen, Summary, error) {
	t.Helper()
	var got []seen
	sum, err := Walk(context.Background(), bytes.NewReader(blob), b, lim, func(e *Entry, body io.Reader) error {
		s := seen{Path: e.Path, Kind: e.Kind, Link: e.Link, Size: e.Size}
		if body != nil && e.Size < 1<<20 {
			data, err := io.ReadAll(body)
			if err != nil {
				return err
			}
			s.Body = string(data)
		}
		got = append(got, s)
		return nil
	})
	return got, sum, err
}

func sameSeen(a, b []seen) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var sampleEntries = []ent{
	{name: "./", typ: tar.TypeDir, mode: 0o755},
	{name: "./etc/", typ: tar.TypeDir, mode: 0o755},
	{name: "./etc/os-release", typ: tar.TypeSymlink, link: "../usr/lib/os-release"},
	{name: "./usr/lib/os-release", body: "ID=debian\n"},
	{name: "./usr/bin/tool", body: "#!/bin/sh\n", mode: 0o755},
	{name: "./usr/bin/tool2", typ: tar.TypeLink, link: "./usr/bin/tool"},
	{name: "./var/.wh.cache", body: ""},
	{name: "./opt/app/.wh..wh..opq", body: ""},
	{name: "./.wh..wh.plnk", body: ""},
	{name: "./dev/null", typ: tar.TypeChar},
}

var sampleSeen = []seen{
	{Path: "etc", Kind: Dir},
	{Path: "etc/os-release", Kind: Symlink, Link: "../usr/lib/os-release"},
	{Path: "usr/lib/os-release", Kind: File, Size: 10, Body: "ID=debian\n"},
	{Path: "usr/bin/tool", Kind: File, Size: 10, Body: "#!/bin/sh\n"},
	{Path: "usr/bin/tool2", Kind: Hardlink, Link: "usr/bin/tool"},
	{Path: "var/cache", Kind: Whiteout},
	{Path: "opt/app", Kind: Opaque},
	{Path: "dev/null", Kind: Other},
}

func TestWalkCompressions(t *testing.T) {
	plain := tarOf(t, sampleEntries...)
	cases := []struct {
		name      string
		blob      []byte
		mediaType string
		want      Compression
	}{
		{"oci tar", plain, "application/vnd.oci.image.layer.v1.tar", None},
		{"oci gzip", gzipOf(t, plain), "application/vnd.oci.image.layer.v1.tar+gzip", Gzip},
		{"oci zstd", zstdOf(t, plain), "application/vnd.oci.image.layer.v1.tar+zstd", Zstd},
		{"docker gzip", gzipOf(t, plain), "application/vnd.docker.image.rootfs.diff.tar.gzip", Gzip},
		{"no media type, gzip", gzipOf(t, plain), "", Gzip},
		{"no media type, tar", plain, "", None},
		// Content wins over a wrong label: zstd layers labelled gzip exist.
		{"zstd labelled gzip", zstdOf(t, plain), "application/vnd.docker.image.rootfs.diff.tar.gzip", Zstd},
		{"gzip labelled tar", gzipOf(t, plain), "application/vnd.oci.image.layer.v1.tar", Gzip},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, sum, err := walkAll(t, tc.blob, Blob{MediaType: tc.mediaType, Digest: sha(tc.blob), DiffID: sha(plain)}, DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if !sameSeen(got, sampleSeen) {
				t.Errorf("entries:\n got %+v\nwant %+v", got, sampleSeen)
			}
			if sum.Compression != tc.want || sum.ExpandedBytes != int64(len(plain)) || sum.CompressedBytes != int64(len(tc.blob)) || sum.Entries != int64(len(sampleEntries)) {
				t.Errorf("summary %+v; want %s, %d expanded, %d compressed, %d entries", sum, tc.want, len(plain), len(tc.blob), len(sampleEntries))
			}
		})
	}
}

func TestWalkEmptyLayers(t *testing.T) {
	for name, blob := range map[string][]byte{
		"zero bytes":        {},
		"end-of-archive":    tarOf(t),
		"gzip of nothing":   gzipOf(t, nil),
		"gzip of empty tar": gzipOf(t, tarOf(t)),
	} {
		t.Run(name, func(t *testing.T) {
			got, _, err := walkAll(t, blob, Blob{}, DefaultLimits())
			if err != nil || len(got) != 0 {
				t.Fatalf("got %v, %v; want no entries and no error", got, err)
			}
		})
	}
}

func TestWalkDigests(t *testing.T) {
	plain := tarOf(t, sampleEntries...)
	gz := gzipOf(t, plain)
	other := sha([]byte("something else"))
	for _, tc := range []struct {
		name string
		b    Blob
		want string // substring of the error, "" for none
	}{
		{"both right", Blob{Digest: sha(gz), DiffID: sha(plain)}, ""},
		{"sha512 digest", Blob{Digest: fmt.Sprintf("sha512:%x", sha512Sum(gz))}, ""},
		{"wrong digest", Blob{Digest: other, DiffID: sha(plain)}, "not to its digest " + other},
		{"wrong diffID", Blob{Digest: sha(gz), DiffID: other}, "not to its diffID " + other},
		{"digest of another algorithm", Blob{Digest: "md5:0123"}, "unsupported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := walkAll(t, gz, tc.b, DefaultLimits())
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v; want one containing %q", err, tc.want)
			}
			if tc.want != "" && strings.Contains(tc.name, "wrong") && !errors.Is(err, ErrDigestMismatch) {
				t.Errorf("err = %v; want ErrDigestMismatch", err)
			}
		})
	}
}

func TestCleanPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"etc/passwd", "etc/passwd"},
		{"./etc/passwd", "etc/passwd"},
		{"./etc//x/", "etc/x"},
		{"/etc/passwd", "etc/passwd"},
		{"/../../etc/passwd", "etc/passwd"},
		{"a/b/../c", "a/c"},
		{"./", "."},
		{"/", "."},
		{"", "."},
		{"..", ""},
		{"../etc/passwd", ""},
		{"a/../../etc/passwd", ""},
		{"./../x", ""},
		{"a\x00b", ""},
	} {
		got, err := CleanPath(tc.in)
		if tc.want == "" {
			if err == nil || !errors.Is(err, ErrUnsafePath) {
				t.Errorf("CleanPath(%q) = %q, %v; want ErrUnsafePath", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("CleanPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestHostileLayers: each kind of hostile layer fails with its kind of
// error, a code, and a message that names the problem.
func TestHostileLayers(t *testing.T) {
	zeros := make([]byte, 32<<20)
	bombTar := tarOf(t, ent{name: "zeros", body: string(zeros)})
	truncated := gzipOf(t, tarOf(t, sampleEntries...))
	truncated = truncated[:len(truncated)/2]
	corruptGzip := gzipOf(t, tarOf(t, sampleEntries...))
	corruptGzip[len(corruptGzip)/2] ^= 0xff
	badCRC := gzipOf(t, tarOf(t, sampleEntries...))
	badCRC[len(badCRC)-6] ^= 0xff
	corruptZstd := zstdOf(t, tarOf(t, sampleEntries...))
	corruptZstd[len(corruptZstd)/2] ^= 0xff
	lying := append(rawHeader("big", tar.TypeReg, 10<<30), make([]byte, 4096)...)
	many := make([]ent, 101)
	for i := range many {
		many[i] = ent{name: fmt.Sprintf("f%d", i)}
	}

	small := DefaultLimits()
	small.MaxExpandedBytes = 4 << 20
	ratio := DefaultLimits()
	ratio.RatioFloorBytes = 1 << 20
	ratio.MaxRatio = 100
	entries := DefaultLimits()
	entries.MaxEntries = 100

	for _, tc := range []struct {
		name      string
		blob      []byte
		mediaType string
		lim       Limits
		kind      error
		code      string
		msg       string
	}{
		{"path traversal", tarOf(t, ent{name: "../../etc/passwd", body: "root::0:0"}), "", DefaultLimits(),
			ErrUnsafePath, apperr.EINVALID, `"../../etc/passwd" climbs out of the layer root`},
		{"traversal inside a path", tarOf(t, ent{name: "usr/../../x"}), "", DefaultLimits(),
			ErrUnsafePath, apperr.EINVALID, `"usr/../../x" climbs out`},
		{"hardlink out of the layer", tarOf(t, ent{name: "etc/shadow", typ: tar.TypeLink, link: "../../../etc/shadow"}), "", DefaultLimits(),
			ErrUnsafePath, apperr.EINVALID, `hardlink target "../../../etc/shadow" points outside the layer`},
		{"whiteout of the parent", tarOf(t, ent{name: "etc/.wh.."}), "", DefaultLimits(),
			ErrUnsafePath, apperr.EINVALID, "whiteout"},
		{"file as the root", tarOf(t, ent{name: "."}), "", DefaultLimits(),
			ErrUnsafePath, apperr.EINVALID, "cannot be the layer root"},
		{"expanded size bomb", gzipOf(t, bombTar), "application/vnd.oci.image.layer.v1.tar+gzip", small,
			ErrTooLarge, apperr.ETOOLARGE, "expands to more than 4194304 bytes"},
		{"ratio bomb", gzipOf(t, bombTar), "application/vnd.oci.image.layer.v1.tar+gzip", ratio,
			ErrTooLarge, apperr.ETOOLARGE, "decompression bomb"},
		{"zstd ratio bomb", zstdOf(t, bombTar), "application/vnd.oci.image.layer.v1.tar+zstd", ratio,
			ErrTooLarge, apperr.ETOOLARGE, "decompression bomb"},
		{"too many entries", tarOf(t, many...), "", entries,
			ErrTooLarge, apperr.ETOOLARGE, "more than 100 entries"},
		{"truncated gzip", truncated, "application/vnd.oci.image.layer.v1.tar+gzip", DefaultLimits(),
			ErrCorrupt, apperr.EINVALID, "layer is truncated: the gzip stream ends"},
		{"corrupt gzip", corruptGzip, "application/vnd.oci.image.layer.v1.tar+gzip", DefaultLimits(),
			ErrCorrupt, apperr.EINVALID, "corrupt"},
		{"gzip checksum", badCRC, "application/vnd.oci.image.layer.v1.tar+gzip", DefaultLimits(),
			ErrCorrupt, apperr.EINVALID, "corrupt gzip stream"},
		{"corrupt zstd", corruptZstd, "application/vnd.oci.image.layer.v1.tar+zstd", DefaultLimits(),
			ErrCorrupt, apperr.EINVALID, "zstd"},
		{"not gzip at all", []byte("this is not a layer, just text that goes on"), "application/vnd.oci.image.layer.v1.tar+gzip", DefaultLimits(),
			ErrCorrupt, apperr.EINVALID, "declared as gzip"},
		{"garbage", bytes.Repeat([]byte{0xAB}, 1024), "", DefaultLimits(),
			ErrCorrupt, apperr.EINVALID, "neither gzip, zstd nor a tar archive"},
		{"header claims 10 GiB, data cut short", lying, "", DefaultLimits(),
			ErrCorrupt, apperr.EINVALID, "layer is truncated: the stream ends after 1 tar entries"},
		{"unknown media type", gzipOf(t, tarOf(t)), "application/vnd.cncf.helm.chart.content.v1.tar+gzip", DefaultLimits(),
			ErrUnsupported, apperr.EUNSUPPORTED, `media type "application/vnd.cncf.helm.chart.content.v1.tar+gzip" is not supported`},
		{"config blob as a layer", []byte(`{"architecture":"amd64"}`), "application/vnd.oci.image.config.v1+json", DefaultLimits(),
			ErrUnsupported, apperr.EUNSUPPORTED, "is not supported"},
		{"encrypted layer", []byte("x"), "application/vnd.oci.image.layer.v1.tar+gzip+encrypted", DefaultLimits(),
			ErrUnsupported, apperr.EUNSUPPORTED, "encrypted"},
		{"xz layer", append([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, make([]byte, 100)...), "", DefaultLimits(),
			ErrUnsupported, apperr.EUNSUPPORTED, "xz-compressed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := walkAll(t, tc.blob, Blob{MediaType: tc.mediaType}, tc.lim)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("err = %v; want kind %v", err, tc.kind)
			}
			if got := apperr.Code(err); got != tc.code {
				t.Errorf("code = %q; want %q (err %v)", got, tc.code, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %v; want it to say %q", err, tc.msg)
			}
		})
	}
}

// TestAbsoluteAndSymlinks: absolute names are read relative to the layer
// root, and symlinks anywhere are reported, never followed.
func TestAbsoluteAndSymlinks(t *testing.T) {
	blob := tarOf(t,
		ent{name: "/etc/os-release", body: "ID=alpine\n"},
		ent{name: "/../../../tmp/x", body: "x"},
		ent{name: "etc/passwd", typ: tar.TypeSymlink, link: "/../../../../etc/passwd"},
		ent{name: "usr/lib/escape", typ: tar.TypeSymlink, link: "../../../../../../etc/shadow"},
	)
	got, _, err := walkAll(t, blob, Blob{}, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	want := []seen{
		{Path: "etc/os-release", Kind: File, Size: 10, Body: "ID=alpine\n"},
		{Path: "tmp/x", Kind: File, Size: 1, Body: "x"},
		{Path: "etc/passwd", Kind: Symlink, Link: "/../../../../etc/passwd"},
		{Path: "usr/lib/escape", Kind: Symlink, Link: "../../../../../../etc/shadow"},
	}
	if !sameSeen(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// TestSparseFile: a 10 GiB sparse file is walked past without reading 10
// GiB; its Size says 10 GiB, and its body reads as the real size.
func TestSparseFile(t *testing.T) {
	const tenGiB = 10 << 30
	blob := gzipOf(t, sparseTar(t, "var/lib/big", tenGiB, "head", ent{name: "after", body: "ok"}))
	var entries []seen
	sum, err := Walk(context.Background(), bytes.NewReader(blob), Blob{}, DefaultLimits(), func(e *Entry, body io.Reader) error {
		entries = append(entries, seen{Path: e.Path, Kind: e.Kind, Size: e.Size})
		if e.Path == "var/lib/big" {
			// Read a little: the data, then zeros from the hole.
			b := make([]byte, 8)
			if _, err := io.ReadFull(body, b); err != nil {
				return err
			}
			if string(b) != "head\x00\x00\x00\x00" {
				return fmt.Errorf("sparse body starts %q", b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []seen{{Path: "var/lib/big", Kind: File, Size: tenGiB}, {Path: "after", Kind: File, Size: 2}}
	if !sameSeen(entries, want) {
		t.Errorf("entries %+v; want %+v", entries, want)
	}
	if sum.ExpandedBytes > 1<<20 {
		t.Errorf("expanded %d bytes to walk past a sparse file", sum.ExpandedBytes)
	}
}

// TestTruncatedBody: a layer that ends inside a file's body gives the
// reader of the body a truncation error.
func TestTruncatedBody(t *testing.T) {
	blob := tarOf(t, ent{name: "big", body: strings.Repeat("x", 4096)})
	blob = blob[:512+1000]
	_, err := Walk(context.Background(), bytes.NewReader(blob), Blob{}, DefaultLimits(), func(e *Entry, body io.Reader) error {
		_, err := io.ReadAll(body)
		return err
	})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `truncated: the stream ends inside the body of "big"`) {
		t.Fatalf("err = %v; want a truncation naming the entry", err)
	}
}

// TestWalkFuncError: the callback's error ends the walk, unchanged.
func TestWalkFuncError(t *testing.T) {
	stop := errors.New("stop")
	_, err := Walk(context.Background(), bytes.NewReader(tarOf(t, sampleEntries...)), Blob{}, DefaultLimits(),
		func(*Entry, io.Reader) error { return stop })
	if err != stop {
		t.Fatalf("err = %v; want the callback's", err)
	}
}

func TestWalkCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Walk(ctx, bytes.NewReader(gzipOf(t, tarOf(t, sampleEntries...))), Blob{}, DefaultLimits(),
		func(*Entry, io.Reader) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := DefaultLimits().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := DefaultLimits()
	bad.MaxRatio = 0
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "MaxRatio") {
		t.Fatalf("err = %v; want one naming MaxRatio", err)
	}
	if _, err := Walk(context.Background(), bytes.NewReader(nil), Blob{}, bad, nil); err == nil {
		t.Fatal("Walk accepted invalid limits")
	}
}
