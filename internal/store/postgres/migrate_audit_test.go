package postgres

import (
	"context"
	"database/sql"
	"io"
	"io/fs"
	"log/slog"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/postgres/pgtest"
	"github.com/customs-dev/customs/internal/store/sqldb"
	"github.com/customs-dev/customs/internal/store/storetest"
)

// openOldAudit creates a schema at version 12 (audit_events).
func openOldAudit(t *testing.T) (*sql.DB, func(time.Time) any, func(t *testing.T) store.Store) {
	t.Helper()
	ctx := context.Background()
	dsn := pgtest.Schema(t, "customs_test_")
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := sqldb.LoadMigrations(sub)
	if err != nil {
		t.Fatal(err)
	}
	var old []sqldb.Migration
	for _, m := range ms {
		if m.Version <= 12 {
			old = append(old, m)
		}
	}
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqldb.Migrate(ctx, conn, dialect, old, logger); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	open := func(t *testing.T) store.Store {
		t.Helper()
		db, err := Open(ctx, dsn, logger)
		if err != nil {
			t.Fatal(err)
		}
		// Registered after pgtest.Schema's cleanup, so it runs before the drop.
		t.Cleanup(func() { db.Close() })
		return db
	}
	return raw, dialect.TimeArg, open
}

func TestAuditMigration(t *testing.T) {
	pgtest.DSN(t)
	storetest.RunAuditMigration(t, openOldAudit)
}
