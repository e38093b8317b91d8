package sqlite

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/storetest"
)

// openOldAudit creates a database at schema version 12 (audit_events).
func openOldAudit(t *testing.T) (*sql.DB, func(time.Time) any, func(t *testing.T) store.Store) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "customs.db")
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	raw, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		t.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	t.Cleanup(func() { raw.Close() })
	if err := migrate(ctx, raw, logger, 12); err != nil {
		t.Fatal(err)
	}
	open := func(t *testing.T) store.Store {
		t.Helper()
		db, err := Open(ctx, path, logger)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	return raw, dialect.TimeArg, open
}

func TestAuditMigration(t *testing.T) { storetest.RunAuditMigration(t, openOldAudit) }
