package extract

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/scan/layers"
)

// TestHostileImages: a scan of an image with a hostile layer fails with an
// error that names the problem, and the kind of it.
func TestHostileImages(t *testing.T) {
	zeros := make([]byte, 64<<20)
	bombLimits := layers.DefaultLimits()
	bombLimits.MaxExpandedBytes = 16 << 20
	var opens atomic.Int64
	for _, tc := range []struct {
		name  string
		ents  []ent
		media types.MediaType
		cfg   Config
		kind  error
		code  string
		msg   string
	}{
		{name: "path traversal", ents: []ent{file("../../../../tmp/pwned", "x")},
			kind: layers.ErrUnsafePath, code: apperr.EINVALID, msg: `tar entry "../../../../tmp/pwned" climbs out of the layer root`},
		{name: "hardlink out of the layer", ents: []ent{hardlink("etc/passwd", "../../../etc/passwd")},
			kind: layers.ErrUnsafePath, code: apperr.EINVALID, msg: `hardlink target "../../../etc/passwd" points outside the layer`},
		{name: "decompression bomb", ents: []ent{file("var/lib/dpkg/status", string(zeros))}, cfg: Config{Limits: bombLimits},
			kind: layers.ErrTooLarge, code: apperr.ETOOLARGE, msg: "expands to more than"},
		{name: "unknown media type", ents: []ent{file("a", "b")}, media: "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
			kind: layers.ErrUnsupported, code: apperr.EUNSUPPORTED, msg: "is not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := imageOf(t, layerOf(t, baseLayerEntries()...), countingLayer{Layer: layerOf(t, tc.ents...), opens: &opens, mediaType: tc.media})
			_, err := newExtractor(t, tc.cfg).Image(context.Background(), img)
			if !errors.Is(err, tc.kind) || apperr.Code(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v; want %v (%s) saying %q", err, tc.kind, tc.code, tc.msg)
			}
			if !strings.Contains(err.Error(), "layer 1 (sha256:") {
				t.Errorf("err = %v; want it to name the layer", err)
			}
		})
	}
}

// TestCorruptLayerBlob: a gzip layer corrupted in the middle fails as
// corrupt, and a blob that is not its digest fails as a mismatch.
func TestCorruptLayerBlob(t *testing.T) {
	blob := gzipBytes(t, tarOf(t, languagesLayer(t)...))
	x := newExtractor(t, Config{})
	bad := bytes.Clone(blob)
	bad[len(bad)/2] ^= 0x55
	_, err := x.ReadLayer(context.Background(), bytes.NewReader(bad), layers.Blob{MediaType: string(types.OCILayer)})
	if !errors.Is(err, layers.ErrCorrupt) {
		t.Errorf("corrupt gzip: err = %v; want ErrCorrupt", err)
	}
	_, err = x.ReadLayer(context.Background(), bytes.NewReader(blob), layers.Blob{MediaType: string(types.OCILayer), Digest: sha256Of([]byte("other"))})
	if !errors.Is(err, layers.ErrDigestMismatch) {
		t.Errorf("wrong digest: err = %v; want ErrDigestMismatch", err)
	}
}

// TestSymlinksNeverLeaveTheImage: /etc/os-release links are resolved
// inside the image (absolute targets from its root, ".." stopping there),
// never on the scanning host.
func TestSymlinksNeverLeaveTheImage(t *testing.T) {
	release := file("usr/lib/os-release", "ID=customs-test\nVERSION_ID=1\n")
	for _, tc := range []struct {
		name, target string
		want         string // distro ID, "" for none
	}{
		{"relative", "../usr/lib/os-release", "customs-test"},
		{"climbing above the root", "../../../../../../usr/lib/os-release", "customs-test"},
		{"absolute", "/usr/lib/os-release", "customs-test"},
		{"to the host's proc", "/proc/self/root/etc/os-release", "customs-test"}, // falls back to usr/lib
		{"loop", "os-release", "customs-test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := imageOf(t, layerOf(t, release, symlink("etc/os-release", tc.target)))
			inv, err := newExtractor(t, Config{}).Image(context.Background(), img)
			if err != nil {
				t.Fatal(err)
			}
			if inv.Distro == nil || inv.Distro.ID != tc.want {
				t.Errorf("distro %+v; want %q", inv.Distro, tc.want)
			}
		})
	}
	// With no os-release file in the image, the host's is not read.
	inv, err := newExtractor(t, Config{}).Image(context.Background(), imageOf(t, layerOf(t, symlink("etc/os-release", "/etc/os-release"))))
	if err != nil {
		t.Fatal(err)
	}
	if inv.Distro != nil {
		t.Errorf("distro %+v from an image with no os-release file", inv.Distro)
	}
}

// sparseTar returns a tar holding one GNU sparse (PAX 1.0) file of
// realSize bytes whose only data is "data" at offset 0, then more.
func sparseTar(t testing.TB, name string, realSize int64, data string, more ...ent) []byte {
	t.Helper()
	var recs []byte
	for _, kv := range [][2]string{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"},
		{"GNU.sparse.name", name}, {"GNU.sparse.realsize", strconv.FormatInt(realSize, 10)}} {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 1
		for len(strconv.Itoa(n))+len(rec) != n {
			n++
		}
		recs = append(recs, strconv.Itoa(n)+rec...)
	}
	header := func(name string, typ byte, size int64) []byte {
		b := make([]byte, 512)
		copy(b[0:], name)
		copy(b[100:], "0000644\x00")
		copy(b[124:], fmt.Sprintf("%011o\x00", size))
		copy(b[136:], "00000000000\x00")
		b[156] = typ
		copy(b[257:], "ustar\x0000")
		copy(b[148:156], "        ")
		sum := 0
		for _, c := range b {
			sum += int(c)
		}
		copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
		return b
	}
	pad := func(b []byte) []byte { return append(b, make([]byte, (512-len(b)%512)%512)...) }
	var b []byte
	b = append(b, header("PaxHeaders/x", tar.TypeXHeader, int64(len(recs)))...)
	b = append(b, pad(recs)...)
	body := append(pad([]byte(fmt.Sprintf("1\n0\n%d\n", len(data)))), data...)
	b = append(b, header("GNUSparseFile.0/x", tar.TypeReg, int64(len(body)))...)
	b = append(b, pad(body)...)
	return append(b, tarOf(t, more...)...)
}

// TestHugeSparseFile: a 10 GiB sparse file no extractor wants is walked
// past; one an extractor wants is not read (over MaxManifestBytes), listed
// as a problem, and masks the lower layer's file at its path; the scan goes
// on with the rest of the layer.
func TestHugeSparseFile(t *testing.T) {
	const tenGiB = 10 << 30
	x := newExtractor(t, Config{})
	for _, name := range []string{"var/log/huge.log", "var/lib/dpkg/status"} {
		t.Run(name, func(t *testing.T) {
			blob := gzipBytes(t, sparseTar(t, name, tenGiB, "Package: x\n",
				file("usr/lib/os-release", "ID=debian\n")))
			start := time.Now()
			res, err := x.ReadLayer(context.Background(), bytes.NewReader(blob), layers.Blob{})
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
			if res.Stats.ExpandedBytes > 1<<20 || res.Stats.BytesRead > 1<<20 {
				t.Errorf("stats %+v: read far more than the layer holds", res.Stats)
			}
			if res.Files["usr/lib/os-release"] == nil {
				t.Error("the file after the sparse one was not read")
			}
			fr, wanted := res.Files[name]
			if wanted != (name == "var/lib/dpkg/status") {
				t.Fatalf("file result for %s: %v", name, fr)
			}
			if wanted {
				if len(fr.Packages) != 0 || len(res.Problems) != 1 || !strings.Contains(res.Problems[0].Message, "over the 67108864-byte limit (MaxManifestBytes)") {
					t.Errorf("result %+v, problems %+v; want no packages and a MaxFileBytes problem", fr, res.Problems)
				}
			}
		})
	}
}

// TestManyTinyFiles: a layer of a million empty files no extractor wants
// keeps nothing per file and stays within a few MiB of heap.
func TestManyTinyFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("a million tar entries")
	}
	const n = 1_000_000
	pr, pw := io.Pipe()
	go func() {
		bw := bufio.NewWriterSize(pw, 1<<20)
		tw := tar.NewWriter(bw)
		for i := range n {
			// Names no extractor wants, in a few thousand directories.
			if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("d%d/f%d.txt", i%4096, i), Typeflag: tar.TypeReg, Mode: 0o644}); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		err := tw.Close()
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
	}()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	stop := make(chan struct{})
	var peak atomic.Uint64
	go func() { // sample the live heap while the layer is read
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				runtime.ReadMemStats(&m)
				if m.HeapAlloc > peak.Load() {
					peak.Store(m.HeapAlloc)
				}
			}
		}
	}()
	res, err := newExtractor(t, Config{}).ReadLayer(context.Background(), pr, layers.Blob{})
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if res.Stats.Entries != n || len(res.Files) != 0 || res.Stats.FilesRead != 0 {
		t.Errorf("stats %+v, %d files kept; want %d entries and nothing kept", res.Stats, len(res.Files), n)
	}
	if grow := int64(peak.Load()) - int64(before.HeapAlloc); grow > 64<<20 {
		t.Errorf("heap grew by %d MiB while reading", grow>>20)
	}
	if b, _ := res.Marshal(); len(b) > 1024 {
		t.Errorf("result of %d bytes for a layer with nothing in it", len(b))
	}
}

// TestSpoolToDisk: files over MaxMemoryFileBytes go through the private
// temp dir, give the same result as in memory, and leave nothing behind.
func TestSpoolToDisk(t *testing.T) {
	ents := languagesLayer(t)
	blob := tarOf(t, ents...)
	mem, err := newExtractor(t, Config{}).ReadLayer(context.Background(), bytes.NewReader(blob), layers.Blob{})
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	disk, err := newExtractor(t, Config{TempDir: tmp, MaxMemoryFileBytes: 1}).ReadLayer(context.Background(), bytes.NewReader(blob), layers.Blob{})
	if err != nil {
		t.Fatal(err)
	}
	m1, _ := mem.Marshal()
	m2, _ := disk.Marshal()
	if string(m1) != string(m2) {
		t.Errorf("results differ:\nmemory %s\n  disk %s", m1, m2)
	}
	left, _ := os.ReadDir(tmp)
	if len(left) != 0 {
		t.Errorf("temp dir holds %d entries after the scan", len(left))
	}
}

// TestBadFilesAreProblems: files an extractor cannot parse are listed as
// problems with the extractor's name; the rest of the layer is used.
func TestBadFilesAreProblems(t *testing.T) {
	img := imageOf(t, layerOf(t,
		file("app/package-lock.json", `{"lockfileVersion": 3, "packages": {`),
		file("srv/app/App.deps.json", `{"libraries": {}}`),
		file("usr/local/lib/python3.11/site-packages/ok-1.0.dist-info/METADATA", "Name: ok\nVersion: 1.0\n"),
	))
	x := newExtractor(t, Config{})
	ls, _ := img.Layers()
	res, err := x.Layer(context.Background(), ls[0])
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]Problem{}
	for _, p := range res.Problems {
		byPath[p.Path] = p
	}
	if p := byPath["app/package-lock.json"]; p.Extractor != "javascript/packagelockjson@0" {
		t.Errorf("problems %+v; want the broken lockfile named with its extractor", res.Problems)
	}
	inv, err := x.Image(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if ok := find(inv, inventory.PyPI, "ok"); len(ok) != 1 {
		t.Errorf("packages %+v; want the good file's", inv.Packages)
	}
}

// windowsImage is an image whose config says it runs on Windows.
type windowsImage struct{ v1.Image }

func (w windowsImage) ConfigFile() (*v1.ConfigFile, error) {
	cf, err := w.Image.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "windows"
	return cf, nil
}

func TestWindowsImageUnsupported(t *testing.T) {
	_, err := newExtractor(t, Config{}).Image(context.Background(), windowsImage{imageOf(t, layerOf(t, file("a", "b")))})
	if apperr.Code(err) != apperr.EUNSUPPORTED || !strings.Contains(err.Error(), `image OS "windows"`) {
		t.Fatalf("err = %v; want unsupported naming the OS", err)
	}
}

func sha256Of(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
