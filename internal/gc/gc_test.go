package gc_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	blobfs "github.com/customs-dev/customs/internal/blob/fs"
	"github.com/customs-dev/customs/internal/gc"
	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/sqlite"
)

// fixture is a real SQLite store and filesystem blob store sharing a clock.
type fixture struct {
	ctx   context.Context
	st    *sqlite.DB
	blobs *blobfs.Store
	mu    sync.Mutex
	now   time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{ctx: context.Background(), now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	st, err := sqlite.Open(f.ctx, filepath.Join(dir, "db"), slog.New(slog.DiscardHandler), sqlite.WithClock(f.clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	f.blobs, err = blobfs.New(filepath.Join(dir, "blobs"), blobfs.Options{Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateProject(f.ctx, &store.Project{Name: "p"}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// put stores content as a blob linked in repo p/r, the way the registry does.
func (f *fixture) put(t *testing.T, content string) digest.Digest {
	t.Helper()
	d := digest.FromString(content)
	if _, err := f.blobs.Put(f.ctx, d, bytes.NewReader([]byte(content)), func(size int64) error {
		return f.st.PutBlob(f.ctx, d, size)
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.st.LinkBlob(f.ctx, "p/r", d); err != nil {
		t.Fatal(err)
	}
	return d
}

func (f *fixture) collector() *gc.Collector {
	return gc.New(gc.Options{Store: f.st, Blobs: f.blobs, Logger: slog.New(slog.DiscardHandler),
		Now: f.clock, GracePeriod: time.Hour, UploadMaxAge: 24 * time.Hour})
}

func TestCollectsOnlyUnreferencedBlobsPastGrace(t *testing.T) {
	f := newFixture(t)
	layer := f.put(t, "layer")
	orphan := f.put(t, "orphan")
	man := f.put(t, `{"manifest":1}`)
	if err := f.st.PutManifest(f.ctx, &store.Manifest{Repository: "p/r", Digest: man, MediaType: "application/vnd.oci.image.manifest.v1+json",
		Size: 14, References: []store.Reference{{Digest: layer, Kind: store.RefBlob, Required: true}}}, []string{"v1"}); err != nil {
		t.Fatal(err)
	}

	// Within the grace period nothing goes.
	st, err := f.collector().Run(f.ctx)
	if err != nil || st.BlobsDeleted != 0 {
		t.Fatalf("within grace: %+v %v", st, err)
	}
	f.advance(2 * time.Hour)
	st, err = f.collector().Run(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.BlobsDeleted != 1 || st.BytesFreed != int64(len("orphan")) {
		t.Fatalf("stats %+v, want exactly the orphan deleted", st)
	}
	if _, err := f.blobs.Stat(f.ctx, orphan); !apperr.Is(err, apperr.ENOTFOUND) {
		t.Fatalf("orphan bytes still there: %v", err)
	}
	for _, d := range []digest.Digest{layer, man} {
		if _, err := f.blobs.Stat(f.ctx, d); err != nil {
			t.Fatalf("referenced blob %s lost: %v", d, err)
		}
	}

	// Deleting the manifest frees its layer and itself, after grace.
	if err := f.st.DeleteManifest(f.ctx, "p/r", man); err != nil {
		t.Fatal(err)
	}
	st, err = f.collector().Run(f.ctx)
	if err != nil || st.BlobsDeleted != 2 {
		t.Fatalf("after manifest delete: %+v %v", st, err)
	}
}

func TestAbandonedUploadsRemoved(t *testing.T) {
	f := newFixture(t)
	up, err := f.blobs.NewUpload(f.ctx, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Append(f.ctx, bytes.NewReader([]byte("partial")), 0); err != nil {
		t.Fatal(err)
	}
	id := up.Info().ID
	up.Close()
	if st, _ := f.collector().Run(f.ctx); st.UploadsDeleted != 0 {
		t.Fatal("fresh upload removed")
	}
	f.advance(25 * time.Hour)
	if st, _ := f.collector().Run(f.ctx); st.UploadsDeleted != 1 {
		t.Fatalf("stale upload kept: %+v", st)
	}
	if _, err := f.blobs.Upload(f.ctx, id); !apperr.Is(err, apperr.ENOTFOUND) {
		t.Fatalf("upload still resumable: %v", err)
	}
}

// TestNeverRacesAPush runs collections while a pusher re-links an old blob
// and references it from a manifest: the manifest either commits with the
// blob intact, or is refused with MANIFEST_BLOB_UNKNOWN — never a manifest
// pointing at deleted bytes.
func TestNeverRacesAPush(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 40; i++ {
		content := "racing blob " + string(rune('a'+i%26)) + time.Duration(i).String()
		d := f.put(t, content)
		f.advance(2 * time.Hour) // the blob is now old enough to collect
		var wg sync.WaitGroup
		wg.Add(2)
		var putErr error
		go func() {
			defer wg.Done()
			_, _ = f.collector().Run(f.ctx)
		}()
		man := digest.FromString("manifest " + content)
		go func() {
			defer wg.Done()
			if _, err := f.blobs.Put(f.ctx, man, bytes.NewReader([]byte("manifest "+content)), func(size int64) error {
				return f.st.PutBlob(f.ctx, man, size)
			}); err != nil {
				putErr = err
				return
			}
			putErr = f.st.PutManifest(f.ctx, &store.Manifest{Repository: "p/r", Digest: man, MediaType: "application/vnd.oci.image.manifest.v1+json",
				References: []store.Reference{{Digest: d, Kind: store.RefBlob, Required: true}}}, nil)
		}()
		wg.Wait()
		if putErr != nil {
			if apperr.Detail(putErr) != "MANIFEST_BLOB_UNKNOWN" {
				t.Fatalf("round %d: unexpected push error %v", i, putErr)
			}
			continue
		}
		if _, err := f.blobs.Stat(f.ctx, d); err != nil {
			t.Fatalf("round %d: manifest committed but its blob is gone: %v", i, err)
		}
	}
}

// TestRemovesScanDataOfDeletedManifests: a collection removes the report
// (with its first-seen rows), inventory and idle job of a manifest that no
// repository stores, and keeps those of a stored one.
func TestRemovesScanDataOfDeletedManifests(t *testing.T) {
	f := newFixture(t)
	var mans []digest.Digest
	for i, name := range []string{"kept", "deleted"} {
		layer := f.put(t, "layer "+name)
		man := f.put(t, `{"manifest":"`+name+`"}`)
		if err := f.st.PutManifest(f.ctx, &store.Manifest{Repository: "p/r", Digest: man, MediaType: "application/vnd.oci.image.manifest.v1+json",
			Size: 20, References: []store.Reference{{Digest: layer, Kind: store.RefBlob, Required: true}}}, []string{"v" + string(rune('1'+i))}); err != nil {
			t.Fatal(err)
		}
		d := man.String()
		if err := f.st.PutScanReport(f.ctx, &store.ScanReport{Digest: d, Status: store.ScanDone, Data: []byte("{}"),
			Findings: []store.ScanFinding{{Key: "CVE-1 pkg", AdvisoryID: "CVE-1"}}}); err != nil {
			t.Fatal(err)
		}
		if err := f.st.PutInventory(f.ctx, store.InventoryKey{Digest: d, Platform: "linux/amd64"}, &inventory.Inventory{
			Packages: []inventory.Package{{Ecosystem: "Debian:12", Name: "bash", Version: "5.2.15-2+b2"}}}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := f.st.EnqueueScanJob(f.ctx, &store.ScanJob{Kind: store.ScanJobManifest, Subject: d, Repository: "p/r", Trigger: "push"}); err != nil {
			t.Fatal(err)
		}
		mans = append(mans, man)
	}
	kept, deleted := mans[0], mans[1]
	if st, err := f.collector().Run(f.ctx); err != nil || st.Scan != (store.ScanCleanup{}) {
		t.Fatalf("with both manifests stored: %+v, %v; want no scan data removed", st, err)
	}
	if err := f.st.DeleteManifest(f.ctx, "p/r", deleted); err != nil {
		t.Fatal(err)
	}
	st, err := f.collector().Run(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Scan != (store.ScanCleanup{Reports: 1, Inventories: 1, Jobs: 1}) {
		t.Fatalf("scan cleanup %+v, want the deleted manifest's report, inventory and job", st.Scan)
	}
	if _, err := f.st.ScanReport(f.ctx, deleted.String()); !apperr.Is(err, apperr.ENOTFOUND) {
		t.Errorf("report of the deleted manifest: %v, want ENOTFOUND", err)
	}
	if ds, err := f.st.ScanReportsWithAdvisories(f.ctx, []string{"CVE-1"}); err != nil || len(ds) != 1 || ds[0] != kept.String() {
		t.Errorf("reports with CVE-1 = %q, %v; want only the kept manifest's", ds, err)
	}
	if n, err := f.st.InventoryCount(f.ctx); err != nil || n != 1 {
		t.Errorf("inventories = %d, %v; want 1", n, err)
	}
	if _, err := f.st.ScanJob(f.ctx, store.ScanJobManifest, deleted.String()); !apperr.Is(err, apperr.ENOTFOUND) {
		t.Errorf("job of the deleted manifest: %v, want ENOTFOUND", err)
	}
	if _, err := f.st.ScanReport(f.ctx, kept.String()); err != nil {
		t.Errorf("report of the kept manifest: %v", err)
	}
}
