package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/sqlite"
	"github.com/customs-dev/customs/internal/store/storetest"
)

// openShared opens a store in a new file, a raw connection to the file and
// a function opening more stores on it.
func openShared(t testing.TB, now func() time.Time) (store.Store, *sql.DB, func(testing.TB) store.Store) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "customs.db")
	reopen := func(t testing.TB) store.Store {
		t.Helper()
		db, err := sqlite.Open(context.Background(), path, discard(), sqlite.WithClock(now))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	s := reopen(t)
	raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return s, raw, reopen
}

func TestAuditTamper(t *testing.T) { storetest.RunAuditTamper(t, openShared) }

func BenchmarkAuditAppend(b *testing.B) { storetest.BenchAuditAppend(b, open) }
