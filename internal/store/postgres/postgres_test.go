package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/postgres"
	"github.com/customs-dev/customs/internal/store/storetest"
)

// dsnVar names the environment variable holding the test server's DSN.
const dsnVar = "CUSTOMS_TEST_POSTGRES_DSN"

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testDSN returns the test server's DSN, or skips t.
func testDSN(t testing.TB) string {
	dsn := os.Getenv(dsnVar)
	if dsn == "" {
		t.Skipf("PostgreSQL tests skipped: set %s to a database the tests may create schemas in, e.g. "+
			"%s='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'", dsnVar, dsnVar)
	}
	return dsn
}

// freshSchema creates a uniquely named schema, dropped when t ends, and
// returns dsn with its search_path set to it.
func freshSchema(t testing.TB, dsn string) string {
	t.Helper()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	schema := "customs_test_" + rand.Text()[:12]
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("creating schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return withParam(t, dsn, "search_path", schema)
}

// withParam adds a run-time parameter to a URL-form DSN.
func withParam(t testing.TB, dsn, key, value string) string {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL", dsnVar)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// open opens a store in a fresh schema.
func open(t testing.TB, now func() time.Time) store.Store {
	t.Helper()
	dsn := freshSchema(t, testDSN(t))
	db, err := postgres.Open(context.Background(), dsn, discard(), postgres.WithClock(now))
	if err != nil {
		t.Fatal(err)
	}
	// Registered after freshSchema's cleanup, so it runs before the drop.
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func TestConformance(t *testing.T) {
	testDSN(t)
	storetest.Run(t, open)
}

func BenchmarkTagLookup(b *testing.B)      { storetest.BenchTagLookup(b, open) }
func BenchmarkManifestLookup(b *testing.B) { storetest.BenchManifestLookup(b, open) }

// TestConcurrentOpen starts several replicas on one schema at once: the
// advisory lock lets one migrate while the others wait, and all succeed.
func TestConcurrentOpen(t *testing.T) {
	dsn := freshSchema(t, testDSN(t))
	ctx := context.Background()
	const replicas = 4
	errs := make(chan error, replicas)
	for range replicas {
		go func() {
			db, err := postgres.Open(ctx, dsn, discard())
			if err == nil {
				err = db.Ping(ctx)
				db.Close()
			}
			errs <- err
		}()
	}
	for range replicas {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var applied, distinct int
	if err := raw.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations`).Scan(&applied, &distinct); err != nil {
		t.Fatal(err)
	}
	if applied == 0 || applied != distinct {
		t.Errorf("schema_migrations has %d rows for %d versions", applied, distinct)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	dsn := freshSchema(t, testDSN(t))
	ctx := context.Background()
	db, err := postgres.Open(ctx, dsn, discard())
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', now())`); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(ctx, dsn, discard())
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer schema: %v, want an error saying it is newer", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dsn := testDSN(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, dsn string
	}{
		{"malformed", "postgres://%zz"},
		{"missing schema", withParam(t, dsn, "search_path", "customs_no_such_schema")},
		{"no server", "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if db, err := postgres.Open(ctx, tc.dsn, discard()); err == nil {
				db.Close()
				t.Error("Open succeeded")
			}
		})
	}
}

// TestByteOrderCollation checks that every name and digest column sorts
// byte-wise whatever the database's locale (the test server's may well be
// C already, which would hide a missing COLLATE "C" from the suite).
func TestByteOrderCollation(t *testing.T) {
	dsn := freshSchema(t, testDSN(t))
	db, err := postgres.Open(context.Background(), dsn, discard())
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rows, err := raw.Query(`SELECT table_name, column_name, COALESCE(collation_name, '') FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name <> 'schema_migrations' AND data_type = 'text'
		AND (column_name IN ('name', 'digest', 'subject', 'manifest_digest'))`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var table, column, collation string
		if err := rows.Scan(&table, &column, &collation); err != nil {
			t.Fatal(err)
		}
		n++
		if collation != "C" {
			t.Errorf("%s.%s has collation %q, want C", table, column, collation)
		}
	}
	if n < 10 {
		t.Errorf("checked only %d columns", n)
	}
}
