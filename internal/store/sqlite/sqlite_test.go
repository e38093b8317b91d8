package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/sqlite"
	"github.com/customs-dev/customs/internal/store/storetest"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// open opens a store in a new file under t's temporary directory.
func open(t testing.TB, now func() time.Time) store.Store {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "customs.db"), discard(), sqlite.WithClock(now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func TestConformance(t *testing.T) { storetest.Run(t, open) }

func BenchmarkTagLookup(b *testing.B)      { storetest.BenchTagLookup(b, open) }
func BenchmarkManifestLookup(b *testing.B) { storetest.BenchManifestLookup(b, open) }

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "customs.db")
	db, err := sqlite.Open(ctx, path, discard())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateProject(ctx, &store.Project{Name: "kept", Public: true}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = sqlite.Open(ctx, path, discard())
	if err != nil {
		t.Fatalf("reopening (migrations must be skipped): %v", err)
	}
	defer db.Close()
	p, err := db.Project(ctx, "kept")
	if err != nil || !p.Public {
		t.Errorf("after reopening, Project = %+v, %v", p, err)
	}
}

// TestTwoProcesses opens one file twice, as the server and a CLI command
// do, and writes from both at once: the busy timeout and IMMEDIATE
// transactions make every write succeed.
func TestTwoProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "customs.db")
	var dbs [2]*sqlite.DB
	for i := range dbs {
		db, err := sqlite.Open(ctx, path, discard())
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs[i] = db
	}
	if err := dbs[0].CreateProject(ctx, &store.Project{Name: "p"}); err != nil {
		t.Fatal(err)
	}
	const each = 40
	var wg sync.WaitGroup
	for i, db := range dbs {
		for g := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range each / 2 {
					d := digest.FromString(fmt.Sprintf("%d/%d/%d", i, g, j))
					if err := db.PutBlob(ctx, d, 1); err != nil {
						t.Error(err)
						return
					}
					if err := db.LinkBlob(ctx, "p/r", d); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	n, _, err := dbs[1].BlobStats(ctx)
	if err != nil || n != 2*each {
		t.Errorf("BlobStats = %d, %v; want %d", n, err, 2*each)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "customs.db")
	db, err := sqlite.Open(ctx, path, discard())
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	_, err = sqlite.Open(ctx, path, discard())
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer schema: %v, want an error saying it is newer", err)
	}
}

func TestInvalidPath(t *testing.T) {
	for _, path := range []string{"", "a?b", filepath.Join(t.TempDir(), "missing-dir", "x.db")} {
		if db, err := sqlite.Open(context.Background(), path, discard()); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
}
