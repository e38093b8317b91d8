package postgres_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/postgres"
	"github.com/customs-dev/customs/internal/store/postgres/pgtest"
	"github.com/customs-dev/customs/internal/store/storetest"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// open opens a store in a fresh schema.
func open(t testing.TB, now func() time.Time) store.Store {
	t.Helper()
	dsn := pgtest.Schema(t, "customs_test_")
	db, err := postgres.Open(context.Background(), dsn, discard(), postgres.WithClock(now))
	if err != nil {
		t.Fatal(err)
	}
	// Registered after pgtest.Schema's cleanup, so it runs before the drop.
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func TestConformance(t *testing.T) {
	pgtest.DSN(t)
	storetest.Run(t, open)
}

func BenchmarkTagLookup(b *testing.B)      { storetest.BenchTagLookup(b, open) }
func BenchmarkManifestLookup(b *testing.B) { storetest.BenchManifestLookup(b, open) }

// TestConcurrentOpen starts several replicas on one schema at once: the
// advisory lock lets one migrate while the others wait, and all succeed.
func TestConcurrentOpen(t *testing.T) {
	dsn := pgtest.Schema(t, "customs_test_")
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
	dsn := pgtest.Schema(t, "customs_test_")
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
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, dsn string
	}{
		{"malformed", "postgres://%zz"},
		{"missing schema", pgtest.WithParam(t, dsn, "search_path", "customs_no_such_schema")},
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
	dsn := pgtest.Schema(t, "customs_test_")
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
