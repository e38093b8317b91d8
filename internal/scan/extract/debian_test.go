package extract

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/customs-dev/customs/internal/inventory"
)

// debianImage returns the Debian bookworm image scripts/test-deps.sh
// builds with mmdebstrap. Tests that need it skip when CUSTOMS_TEST_IMAGES
// is unset (plain go test) and fail when it is set but the image is not
// there.
func debianImage(t testing.TB) v1.Image {
	t.Helper()
	dir := os.Getenv("CUSTOMS_TEST_IMAGES")
	if dir == "" {
		t.Skip("CUSTOMS_TEST_IMAGES is not set (scripts/test.sh sets it)")
	}
	p, err := layout.FromPath(filepath.Join(dir, "debian-bookworm"))
	if err != nil {
		t.Fatalf("the Debian test image: %v", err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] == "bookworm" {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return img
		}
	}
	t.Fatalf("no image tagged bookworm in %s", dir)
	return nil
}

// dpkgRecord is one package of a dpkg status file as the test reads it.
type dpkgRecord struct{ name, version, status, source string }

// readDpkgStatus reads var/lib/dpkg/status out of the image's single layer
// with archive/tar and compress/gzip alone, independently of the code
// under test, and returns the installed packages (dpkg-query -W's list).
func readDpkgStatus(t testing.TB, img v1.Image) []dpkgRecord {
	t.Helper()
	ls, err := img.Layers()
	if err != nil || len(ls) != 1 {
		t.Fatalf("layers: %d, %v; want the one mmdebstrap layer", len(ls), err)
	}
	rc, err := ls[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatal("no var/lib/dpkg/status in the image")
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(h.Name, "./") != "var/lib/dpkg/status" {
			continue
		}
		var recs []dpkgRecord
		var cur dpkgRecord
		sc := bufio.NewScanner(tr)
		sc.Buffer(nil, 1<<20)
		flush := func() {
			if cur.name != "" && strings.HasSuffix(cur.status, " installed") {
				recs = append(recs, cur)
			}
			cur = dpkgRecord{}
		}
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				flush()
				continue
			}
			k, v, _ := strings.Cut(line, ": ")
			switch k {
			case "Package":
				cur.name = v
			case "Version":
				cur.version = v
			case "Status":
				cur.status = v
			case "Source":
				cur.source = v
			}
		}
		flush()
		return recs
	}
}

// TestDebianImage: the mmdebstrap bookworm image gives exactly the packages
// its dpkg status file lists as installed (what dpkg-query -W lists), with
// their source packages ("Source: name" and "Source: name (version)"),
// from the one layer.
func TestDebianImage(t *testing.T) {
	img := debianImage(t)
	want := readDpkgStatus(t, img)
	if len(want) < 80 {
		t.Fatalf("the status file lists %d installed packages; a minbase bookworm has about 100", len(want))
	}
	inv, err := newExtractor(t, Config{}).Image(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if d := inv.Distro; d == nil || d.ID != "debian" || d.VersionID != "12" || d.Codename != "bookworm" {
		t.Errorf("distro %+v; want debian 12 bookworm", d)
	}
	ids := diffIDs(t, img)
	got := map[string]inventory.Package{}
	for _, p := range inv.Packages {
		if p.Ecosystem != inventory.Debian || p.Layer != ids[0] || len(p.Locations) != 1 || p.Locations[0] != "/var/lib/dpkg/status" {
			t.Errorf("package %+v: want a Debian package of layer %s from /var/lib/dpkg/status", p, ids[0])
		}
		got[p.Name] = p
	}
	if len(got) != len(want) || len(inv.Packages) != len(want) {
		t.Errorf("%d packages; the status file lists %d installed", len(inv.Packages), len(want))
	}
	withVersion := 0
	for _, w := range want {
		p, ok := got[w.name]
		if !ok {
			t.Errorf("missing %s %s", w.name, w.version)
			continue
		}
		srcName, srcVersion, hasVersion := strings.Cut(w.source, " (")
		if hasVersion {
			withVersion++
			srcVersion = strings.TrimSuffix(srcVersion, ")")
		}
		if srcName == w.name {
			srcName = ""
		}
		if srcVersion == w.version {
			srcVersion = ""
		}
		if p.Version != w.version || p.SourceName != srcName || p.SourceVersion != srcVersion {
			t.Errorf("%s: got %s (source %q %q); status file says %s (Source: %q)", w.name, p.Version, p.SourceName, p.SourceVersion, w.version, w.source)
		}
	}
	if withVersion == 0 {
		t.Error("no package with a `Source: name (version)` field: the check of that form did not run")
	}
	// (A minbase bookworm has no libssl3: its source packages are checked
	// on libbz2-1.0 and bsdutils.)
	if p := got["libbz2-1.0"]; p.SourceName != "bzip2" {
		t.Errorf("libbz2-1.0: source %q; want bzip2", p.SourceName)
	}
	if p := got["bsdutils"]; p.SourceName != "util-linux" || p.SourceVersion == "" || p.SourceVersion == p.Version {
		t.Errorf("bsdutils: %+v; want source util-linux at its own version", p)
	}
	if p := got["libc6"]; p.SourceName != "glibc" || !strings.HasPrefix(p.PURL, "pkg:deb/debian/libc6@") || !strings.Contains(p.PURL, "distro=bookworm") {
		t.Errorf("libc6: %+v", p)
	}
}

// BenchmarkDebianImage: inventory of the Debian image with nothing cached
// (the layer read, decompressed, verified and extracted).
func BenchmarkDebianImage(b *testing.B) {
	img := debianImage(b)
	x := newExtractor(b, Config{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.Image(context.Background(), img); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDebianImageWarmCache: the same image again with its layer in
// the cache (a second image on the same base): composition only.
func BenchmarkDebianImageWarmCache(b *testing.B) {
	img := debianImage(b)
	x := newExtractor(b, Config{Cache: NewMemoryCache(256 << 20)})
	if _, err := x.Image(context.Background(), img); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.Image(context.Background(), img); err != nil {
			b.Fatal(err)
		}
	}
}
