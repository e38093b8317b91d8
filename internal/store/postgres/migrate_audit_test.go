package postgres

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/postgres/pgtest"
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
	if err := migrate(ctx, raw, logger, 12); err != nil {
		t.Fatal(err)
	}
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
