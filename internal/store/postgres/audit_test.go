package postgres_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/postgres"
	"github.com/customs-dev/customs/internal/store/postgres/pgtest"
	"github.com/customs-dev/customs/internal/store/storetest"
)

// openShared opens a store in a fresh schema, a raw connection to the
// schema and a function opening more stores (replicas) on it.
func openShared(t testing.TB, now func() time.Time) (store.Store, *sql.DB, func(testing.TB) store.Store) {
	t.Helper()
	dsn := pgtest.Schema(t, "customs_test_")
	reopen := func(t testing.TB) store.Store {
		t.Helper()
		db, err := postgres.Open(context.Background(), dsn, discard(), postgres.WithClock(now))
		if err != nil {
			t.Fatal(err)
		}
		// Registered after pgtest.Schema's cleanup, so it runs before the drop.
		t.Cleanup(func() { db.Close() })
		return db
	}
	s := reopen(t)
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return s, raw, reopen
}

func TestAuditTamper(t *testing.T) {
	pgtest.DSN(t)
	storetest.RunAuditTamper(t, openShared)
}

func BenchmarkAuditAppend(b *testing.B) { storetest.BenchAuditAppend(b, open) }
func BenchmarkAuditQuery(b *testing.B)  { storetest.BenchAuditQuery(b, open) }
