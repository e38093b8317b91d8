package vulndb

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/customs-dev/customs/internal/store/postgres"
	"github.com/customs-dev/customs/internal/store/postgres/pgtest"
	"github.com/customs-dev/customs/internal/store/sqlite"
)

// repoRoot is the repository's root directory.
func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// vulndata is testdata/vulndata/osv/<name>/all.zip.
func vulndata(t testing.TB, name string) string {
	return filepath.Join(repoRoot(t), "testdata", "vulndata", "osv", name, "all.zip")
}

// allExports are the directories of testdata/vulndata/osv.
var allExports = []string{"go", "pypi", "alpine-v3.3", "alpine-v3.4", "alpine-v3.5", "alpine-v3.6", "alpine-v3.7",
	"alpine-v3.8", "alpine-v3.9", "alpine-v3.10", "alpine-v3.11"}

// allSources are the testdata exports as sources named after their directory.
func allSources(t testing.TB) []Source {
	var out []Source
	for _, n := range allExports {
		out = append(out, Source{Name: n, Location: vulndata(t, n)})
	}
	return out
}

// feedSample is a CVE feed sample file of package severity.
func feedSample(t testing.TB, name string) string {
	return filepath.Join(repoRoot(t), "internal", "vulndb", "severity", "testdata", name)
}

// openSQLite opens a fresh SQLite store under t's temporary directory.
func openSQLite(t testing.TB) Store {
	t.Helper()
	return openSQLiteN(t, 1)[0]
}

// openSQLiteN opens n stores over one fresh SQLite database file, as n
// processes sharing it would.
func openSQLiteN(t testing.TB, n int, opts ...sqlite.Option) []Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "customs.db")
	var out []Store
	for range n {
		db, err := sqlite.Open(context.Background(), path, slog.New(slog.DiscardHandler), opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		out = append(out, db)
	}
	return out
}

// openPostgres opens a store in a fresh schema of the PostgreSQL test
// server, or skips t without one.
func openPostgres(t testing.TB) Store {
	t.Helper()
	return openPostgresN(t, 1)[0]
}

// openPostgresN opens n stores over one fresh schema of the PostgreSQL
// test server, as n replicas sharing it would, or skips t without one.
func openPostgresN(t testing.TB, n int) []Store {
	t.Helper()
	dsn := pgtest.Schema(t, "customs_vulndb_")
	var out []Store
	for range n {
		db, err := postgres.Open(context.Background(), dsn, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		out = append(out, db)
	}
	return out
}

// drivers are the stores the service tests run on; openN opens n stores
// over one database.
var drivers = []struct {
	name  string
	open  func(t testing.TB) Store
	openN func(t testing.TB, n int) []Store
}{
	{"sqlite", openSQLite, func(t testing.TB, n int) []Store { return openSQLiteN(t, n) }},
	{"postgres", openPostgres, openPostgresN},
}

// newService opens a service over a fresh SQLite store unless opts has one.
func newService(t testing.TB, opts Options) *Service {
	t.Helper()
	if opts.Store == nil {
		opts.Store = openSQLite(t)
	}
	if opts.RevisionCheck == 0 {
		opts.RevisionCheck = -1 // tests see every change at once
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// writeFiles creates files (path -> content) under dir.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// zipOf returns a zip archive of files (name -> content), in name order.
func zipOf(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range sortedKeys(files) {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(files[name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// importOK imports srcs and fails t on a source failure.
func importOK(t testing.TB, s *Service, srcs ...Source) []Result {
	t.Helper()
	rs, err := s.Import(context.Background(), srcs...)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	return rs
}

// importFails imports src and requires a source failure mentioning each of
// mentions.
func importFails(t testing.TB, s *Service, src Source, mentions ...string) Result {
	t.Helper()
	rs, err := s.Import(context.Background(), src)
	if err == nil || len(rs) != 1 || rs[0].Err == nil {
		t.Fatalf("Import(%s) = %+v, %v; want a source failure", src.Location, rs, err)
	}
	for _, m := range mentions {
		if !strings.Contains(rs[0].Err.Error(), m) {
			t.Errorf("source failure %q does not mention %q", rs[0].Err, m)
		}
	}
	return rs[0]
}

// skippedMention requires one of r's skipped records to mention every one
// of mentions.
func skippedMention(t testing.TB, r Result, mentions ...string) {
	t.Helper()
	for _, e := range r.Skipped {
		all := true
		for _, m := range mentions {
			all = all && strings.Contains(e.Error(), m)
		}
		if all {
			var re *RecordError
			if !errors.As(e, &re) {
				t.Fatalf("%v is not a *RecordError", e)
			}
			return
		}
	}
	t.Fatalf("no skipped record mentions %q; skipped: %v", mentions, r.Skipped)
}
