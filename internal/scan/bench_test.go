package scan

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/internal/store"
)

// runScan requests a scan of m and runs it, failing unless it ends done.
func (e *env) runScan(b *testing.B, m *store.Manifest) {
	if _, err := e.s.Request(e.ctx, m.Repository, m.Digest, "bench"); err != nil {
		b.Fatal(err)
	}
	if ran, err := e.s.RunOne(e.ctx); err != nil || !ran {
		b.Fatalf("RunOne = %v, %v", ran, err)
	}
	if r, err := e.s.Report(e.ctx, m.Digest.String()); err != nil || r.Status != report.StatusDone {
		b.Fatalf("report %+v, %v", r, err)
	}
}

// debianManifest pushes the Debian test image (CUSTOMS_TEST_IMAGES) into
// e, skipping b without it.
func debianManifest(b *testing.B, e *env) *store.Manifest {
	dir := os.Getenv("CUSTOMS_TEST_IMAGES")
	if dir == "" {
		b.Skip("CUSTOMS_TEST_IMAGES is not set (scripts/test.sh sets it)")
	}
	idx, err := layout.ImageIndexFromPath(filepath.Join(dir, "debian-bookworm"))
	if err != nil {
		b.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		b.Fatalf("debian-bookworm layout: %v", err)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		b.Fatal(err)
	}
	m := e.push("p/debian", "bookworm", img)
	e.drain()
	return m
}

// BenchmarkScanDebian is a scan of the Debian test image through the
// service (blob store, extraction, inventory, match, report): cold reads
// the layer (the layer cache emptied before each run), warm finds it in
// the database's layer cache.
func BenchmarkScanDebian(b *testing.B) {
	e := newEnv(b)
	m := debianManifest(b, e)
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			if _, err := e.st.DeleteLayerResults(e.ctx, "none"); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			e.runScan(b, m)
		}
	})
	b.Run("warm", func(b *testing.B) {
		for b.Loop() {
			e.runScan(b, m)
		}
	})
}

// BenchmarkRematch is the import of a changed advisory and the rematch
// of the 100 stored reports it affects, from their inventories.
func BenchmarkRematch(b *testing.B) {
	e := newEnv(b)
	e.advisory("ALPINE-CVE-2019-14697", muslAdvisory("1.1.20-r5"))
	base := alpineBase(b)
	for i := range 100 {
		e.push("p/app"+strconv.Itoa(i), "v1", image(b, "amd64", base, layer(b, "app", strconv.Itoa(i))))
	}
	e.drain()
	reads := e.reads.total()
	fixes := []string{"1.1.20-r6", "1.1.20-r5"}
	i := 0
	for b.Loop() {
		e.advisory("ALPINE-CVE-2019-14697", muslAdvisory(fixes[i%2]))
		i++
		if _, err := e.s.CheckVulnDB(e.ctx); err != nil {
			b.Fatal(err)
		}
		e.drain()
	}
	b.StopTimer()
	if n := e.metric("customs_scan_rematched_reports_total", nil); n < 100 {
		b.Fatalf("%v reports re-matched, want at least 100", n)
	}
	if e.reads.total() != reads {
		b.Fatalf("rematches read %d blobs", e.reads.total()-reads)
	}
}
