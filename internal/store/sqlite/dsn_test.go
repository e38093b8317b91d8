package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/customs-dev/customs/internal/store/sqldb"
)

// TestWriterSettings checks the settings the writer's DSN must give every
// connection, and that its transactions take the write lock when they begin.
func TestWriterSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	w, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"foreign_keys", "1"},
		{"busy_timeout", "10000"},
	} {
		var got string
		if err := w.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("PRAGMA %s = %s, want %s", tc.pragma, got, tc.want)
		}
	}

	tx, err := w.BeginTx(ctx, nil) // no statement yet
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	other, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(ctx, "BEGIN IMMEDIATE"); err == nil {
		t.Error("a second writer got the write lock while a transaction was open: transactions are not IMMEDIATE")
	} else if classify(err) != sqldb.ErrBusy {
		t.Errorf("second writer: %v, want SQLITE_BUSY", err)
	}
}

// TestReaderIsReadOnly checks that the readers' DSN refuses writes.
func TestReaderIsReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	r, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Exec("CREATE TABLE x (y INTEGER)"); err == nil {
		t.Error("a reader connection could write")
	}
}
