// Package sqlite is customs' embedded metadata store: a store.Store in one
// SQLite file, through the pure-Go modernc.org/sqlite driver.
//
// The database runs in WAL mode with synchronous=FULL (an acknowledged push
// survives power loss) and foreign keys on. Writes go through one
// connection whose transactions begin IMMEDIATE, taking the write lock up
// front, so concurrent writers queue instead of deadlocking on lock
// upgrades, and a transaction's checks hold until it commits; reads use a
// pool of read-only connections that WAL lets run beside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/customs-dev/customs/internal/store/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a store.Store kept in a SQLite file.
type DB struct {
	*sqldb.DB
}

// Option configures Open.
type Option = sqldb.Option

// WithClock makes the store read the time from now instead of time.Now.
func WithClock(now func() time.Time) Option { return sqldb.WithClock(now) }

// busyTimeout is how long a connection waits for a lock held by another
// process (a `customs` CLI command beside the server) before giving up.
const busyTimeout = 10 * time.Second

// dialect is SQLite's: integer microsecond timestamps and no row locks.
var dialect = sqldb.Dialect{
	Name:     "sqlite",
	RowLocks: false,
	TimeArg:  func(t time.Time) any { return t.UnixMicro() },
	Classify: classify,
	// See Dialect.InsertRows.
	InsertRows: 1,
	MigrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`,
}

// Open opens (creating it if needed) the SQLite database at path, whose
// directory must exist, and brings its schema up to date.
func Open(ctx context.Context, path string, logger *slog.Logger, opts ...Option) (*DB, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite: invalid database path %q", path)
	}
	write, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	// One writer: SQLite admits one at a time anyway, and queueing in Go
	// (in arrival order, see sqldb.WithWriters) is cheaper and fairer than
	// polling the file lock.
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)

	if err := migrate(ctx, write, logger, 0); err != nil {
		_ = write.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}

	read, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		_ = write.Close()
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	readers := max(4, 2*runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(readers)
	read.SetMaxIdleConns(readers)
	read.SetConnMaxLifetime(0)
	read.SetConnMaxIdleTime(0)

	// The one writer connection goes to waiting transactions in the order
	// they asked, not at random as database/sql would hand it out.
	opts = append(slices.Clone(opts), sqldb.WithWriters(1))
	db, err := sqldb.New(ctx, read, write, dialect, logger, opts...)
	if err != nil {
		_ = read.Close()
		_ = write.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	return &DB{DB: db}, nil
}

// migrate applies the embedded migrations up to and including version
// through (every one when through is 0; older versions build old schemas
// in migration tests).
func migrate(ctx context.Context, db *sql.DB, logger *slog.Logger, through int64) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	ms, err := sqldb.LoadMigrations(sub)
	if err != nil {
		return err
	}
	if through > 0 {
		ms = slices.DeleteFunc(ms, func(m sqldb.Migration) bool { return m.Version > through })
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return sqldb.Migrate(ctx, conn, dialect, ms, logger)
}

// classify sorts modernc.org/sqlite errors (extended result codes are on).
func classify(err error) sqldb.ErrKind {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return sqldb.ErrOther
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return sqldb.ErrUnique
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return sqldb.ErrForeignKey
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return sqldb.ErrBusy
	}
	return sqldb.ErrOther
}

// dsn is the driver's data source name for the database at path: for the
// writer, WAL mode, synchronous=FULL and IMMEDIATE transactions; for
// readers, query_only.
func dsn(path string, write bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	if write {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	return path + "?" + q.Encode()
}
