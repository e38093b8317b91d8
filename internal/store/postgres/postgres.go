// Package postgres is customs' scale-out metadata store: a store.Store in
// PostgreSQL, shared by every replica.
//
// It uses pgx through its database/sql adapter (pgx/v5/stdlib) rather than
// pgxpool, so that the query code in store/sqldb is written once for SQLite
// and PostgreSQL; pgx still prepares and caches each statement per
// connection, so the adapter costs no extra round trips.
//
// Transactions run at READ COMMITTED. The rows a transaction's checks rely on
// are locked (see store/sqldb); a transaction that PostgreSQL aborts to
// break a deadlock is retried.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/customs-dev/customs/internal/store/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a store.Store kept in PostgreSQL.
type DB struct {
	*sqldb.DB
}

// Option configures Open.
type Option = sqldb.Option

// WithClock makes the store read the time from now instead of time.Now.
func WithClock(now func() time.Time) Option { return sqldb.WithClock(now) }

// maxConns bounds each replica's connections.
const maxConns = 16

// dialect is PostgreSQL's: timestamptz columns and row locks.
var dialect = sqldb.Dialect{
	Name:     "postgres",
	RowLocks: true,
	TimeArg:  func(t time.Time) any { return t },
	Classify: classify,
	// See Dialect.InsertRows.
	InsertRows: 100,
	MigrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    BIGINT PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TIMESTAMPTZ NOT NULL
	)`,
}

// Open connects to the PostgreSQL database dsn (a URL or key=value string;
// search_path selects the schema) and brings its schema up to date. Several
// replicas may Open at once: migrations run under an advisory lock.
func Open(ctx context.Context, dsn string, logger *slog.Logger, opts ...Option) (*DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parsing the DSN: %w", err)
	}
	pool := stdlib.OpenDB(*cfg)
	pool.SetMaxOpenConns(maxConns)
	pool.SetMaxIdleConns(maxConns)
	pool.SetConnMaxIdleTime(5 * time.Minute)
	pool.SetConnMaxLifetime(time.Hour)
	if err := pool.PingContext(ctx); err != nil {
		_ = pool.Close()
		return nil, fmt.Errorf("postgres: connecting to %s:%d/%s: %w", cfg.Host, cfg.Port, cfg.Database, err)
	}
	if err := migrate(ctx, pool, logger, 0); err != nil {
		_ = pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db, err := sqldb.New(ctx, pool, pool, dialect, logger, opts...)
	if err != nil {
		_ = pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return &DB{DB: db}, nil
}

// lockKey names the advisory lock that serializes migrations of the
// current schema, so that replicas sharing a schema migrate one at a time
// while separate schemas (tests) do not wait for each other.
const lockKey = `hashtextextended('customs.schema_migrations.' || current_schema(), 0)`

// migrate applies the embedded migrations up to and including version
// through (every one when through is 0; older versions build old schemas
// in migration tests), under the schema's advisory lock.
func migrate(ctx context.Context, pool *sql.DB, logger *slog.Logger, through int64) (err error) {
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
	conn, err := pool.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var schema sql.NullString
	if err := conn.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return err
	}
	if !schema.Valid {
		return errors.New("no schema to create tables in: check search_path")
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(`+lockKey+`)`); err != nil {
		return fmt.Errorf("taking the migration lock: %w", err)
	}
	defer func() {
		// A failed unlock leaves the lock with this session; failing Open
		// closes the pool and so ends the session and the lock.
		_, uerr := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+lockKey+`)`)
		if uerr != nil && err == nil {
			err = fmt.Errorf("releasing the migration lock: %w", uerr)
		}
	}()
	return sqldb.Migrate(ctx, conn, dialect, ms, logger)
}

// classify sorts pgx errors by SQLSTATE.
func classify(err error) sqldb.ErrKind {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return sqldb.ErrUnique
		case "23503": // foreign_key_violation
			return sqldb.ErrForeignKey
		case "40P01", "40001": // deadlock_detected, serialization_failure
			return sqldb.ErrRetry
		case "55P03", "53300", "57P03": // lock_not_available, too_many_connections, cannot_connect_now
			return sqldb.ErrBusy
		}
		return sqldb.ErrOther
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || errors.Is(err, driver.ErrBadConn) {
		return sqldb.ErrBusy
	}
	return sqldb.ErrOther
}
