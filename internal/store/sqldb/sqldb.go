// Package sqldb implements store.Store once, over database/sql, for every SQL
// database customs supports. The driver packages (store/sqlite,
// store/postgres) open the connections, apply their schema migrations and
// describe their differences in a Dialect; every query lives here.
//
// Queries use numbered placeholders ($1, $2 ...), which both PostgreSQL and
// SQLite understand. Rows that a transaction checks and relies on until it
// commits are locked with the dialect's row-locking clauses; SQLite has none
// and needs none because its write transactions take the database's write
// lock when they begin.
package sqldb

import (
	"context"
	_ "crypto/sha256" // digest algorithms must be linked in to validate digests
	_ "crypto/sha512"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// ErrKind classifies a driver error for the shared code.
type ErrKind int

// Driver error kinds.
const (
	ErrOther      ErrKind = iota // anything else
	ErrUnique                    // a unique or primary key constraint failed
	ErrForeignKey                // a foreign key constraint failed
	ErrRetry                     // a deadlock or serialization failure: the transaction may be retried
	ErrBusy                      // the database is locked or overloaded: try again later
)

// Dialect describes what differs between the SQL databases.
type Dialect struct {
	// Name names the database in logs ("sqlite", "postgres").
	Name string
	// RowLocks is true when the database supports SELECT ... FOR UPDATE and
	// friends; when false the locking clauses are left out.
	RowLocks bool
	// TimeArg converts a UTC, microsecond-truncated time to a query argument
	// matching the schema's timestamp columns.
	TimeArg func(t time.Time) any
	// Classify sorts a driver error into an ErrKind.
	Classify func(err error) ErrKind
	// InsertRows is how many rows one multi-row INSERT may carry (at
	// least 1). Drivers whose parameter binding slows with the number of
	// parameters want 1: modernc.org/sqlite scans every argument for every
	// parameter, so 100 rows of 14 columns bind slower than 100 statements.
	InsertRows int
	// MigrationsTable is the DDL creating schema_migrations (version
	// integer primary key, name text, applied_at timestamp) if it does not
	// exist.
	MigrationsTable string
}

// lock returns clause (such as "FOR UPDATE") prefixed by a space if the
// dialect locks rows, and "" otherwise.
func (d Dialect) lock(clause string) string {
	if !d.RowLocks {
		return ""
	}
	return " " + clause
}

// Option configures a DB.
type Option func(*options)

type options struct {
	now     func() time.Time
	writers int64
}

// WithClock makes the store read the time from now instead of time.Now; the
// time stamps blobs, manifests, tags and the rest.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithWriters admits at most n write transactions at a time, in the order
// they were asked for: a transaction waits until every one asked for before
// it has started. A write pool of n connections wants this, because
// database/sql hands a freed connection to a random waiter, so under load
// some transactions would wait many turns while later ones go first. n <= 0
// means no limit (the default). With n == 1, PutLinkedBlob calls waiting for
// the writer also share transactions (see linkQueue).
func WithWriters(n int) Option {
	return func(o *options) { o.writers = int64(n) }
}

// DB is a store.Store over database/sql.
type DB struct {
	read, write *sql.DB
	d           Dialect
	log         *slog.Logger
	now         func() time.Time
	stmts       stmts
	// writers admits write transactions in arrival order; nil for no limit
	// (see WithWriters).
	writers *semaphore.Weighted
	// links batches PutLinkedBlob calls; nil unless there is one writer.
	links *linkQueue
	// policyChanges counts the policy revision changes attempted through
	// this DB (see PolicyChanges).
	policyChanges atomic.Uint64
}

var _ store.Store = (*DB)(nil)

// New returns a DB over already migrated databases. read serves queries
// outside transactions; write serves transactions and may be the same pool
// (for SQLite it is a separate pool of one connection, so that writers
// queue in Go instead of polling the file lock). New prepares the hot
// lookup statements; Close closes both pools.
func New(ctx context.Context, read, write *sql.DB, d Dialect, logger *slog.Logger, opts ...Option) (*DB, error) {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	db := &DB{read: read, write: write, d: d, log: logger, now: o.now}
	if o.writers > 0 {
		db.writers = semaphore.NewWeighted(o.writers)
	}
	if o.writers == 1 {
		db.links = &linkQueue{}
	}
	if err := db.stmts.prepare(ctx, read); err != nil {
		db.stmts.close()
		return nil, fmt.Errorf("preparing %s statements: %w", d.Name, err)
	}
	return db, nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.read.PingContext(ctx); err != nil {
		return db.wrap(err)
	}
	if db.write != db.read {
		if err := db.write.PingContext(ctx); err != nil {
			return db.wrap(err)
		}
	}
	return nil
}

// Close releases the prepared statements and both connection pools.
func (db *DB) Close() error {
	db.stmts.close()
	err := db.read.Close()
	if db.write != db.read {
		err = errors.Join(err, db.write.Close())
	}
	return err
}

// nowUTC is the store's clock at the precision every schema keeps.
func (db *DB) nowUTC() time.Time {
	return db.now().UTC().Truncate(time.Microsecond)
}

// ts converts t to a timestamp argument.
func (db *DB) ts(t time.Time) any {
	return db.d.TimeArg(t.UTC().Truncate(time.Microsecond))
}

// maxRetries bounds how often a transaction that lost a deadlock or a
// serialization conflict is run again.
const maxRetries = 5

// inTx runs fn in a write transaction and commits it. When retry is true and
// the database aborted the transaction to break a deadlock, fn runs again
// (so fn must have no effect outside the transaction). Errors that are not
// already *apperr.Error are wrapped.
func (db *DB) inTx(ctx context.Context, retry bool, fn func(tx *sql.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := db.tryTx(ctx, fn)
		if err == nil {
			return nil
		}
		var ae *apperr.Error
		if retry && attempt < maxRetries && !errors.As(err, &ae) && db.d.Classify(err) == ErrRetry {
			db.log.Debug("store: retrying transaction", "db", db.d.Name, "attempt", attempt+1, "err", err)
			continue
		}
		return db.wrap(err)
	}
}

func (db *DB) tryTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if db.writers != nil {
		// semaphore.Weighted serves its waiters first come, first served,
		// and lets nobody overtake them.
		if err := db.writers.Acquire(ctx, 1); err != nil {
			return err
		}
		defer db.writers.Release(1)
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// wrap turns a driver error into an *apperr.Error; *apperr.Error values pass
// through unchanged.
func (db *DB) wrap(err error) error {
	if err == nil {
		return nil
	}
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return apperr.Wrap(err, apperr.EUNAVAILABLE, "metadata database request cancelled")
	}
	switch db.d.Classify(err) {
	case ErrBusy, ErrRetry:
		return apperr.Wrap(err, apperr.EUNAVAILABLE, "metadata database busy, try again")
	case ErrUnique, ErrForeignKey:
		return apperr.Wrap(err, apperr.ECONFLICT, "conflicting concurrent change, try again")
	}
	return apperr.Wrap(err, apperr.EINTERNAL, "metadata database error")
}

// timeScan scans a timestamp column written by TimeArg: integer
// microseconds since the Unix epoch (SQLite) or a time.Time (PostgreSQL).
type timeScan struct{ t *time.Time }

// Scan implements sql.Scanner.
func (s timeScan) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		*s.t = time.UnixMicro(v).UTC()
	case time.Time:
		*s.t = v.UTC()
	default:
		return fmt.Errorf("sqldb: cannot scan %T into a time", src)
	}
	return nil
}

// limit turns a page size into a LIMIT argument (0 means no limit).
func limit(n int) (int64, error) {
	if n < 0 {
		return 0, apperr.Errorf(apperr.EINVALID, "page size %d is negative", n)
	}
	if n == 0 {
		return 1<<63 - 1, nil
	}
	return int64(n), nil
}

// placeholders returns "$first, $first+1, ..." with n placeholders.
func placeholders(first, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(first + i))
	}
	return b.String()
}

// chunkSize bounds the arguments of one dynamically built statement, well
// under SQLite's and PostgreSQL's limits on bound parameters.
const chunkSize = 500

// projectOf returns the project part of repository name repo.
func projectOf(repo string) (string, error) {
	i := strings.IndexByte(repo, '/')
	if i <= 0 || i == len(repo)-1 {
		return "", apperr.Errorf(apperr.EINVALID, "repository name %q is not of the form <project>/<path>", repo)
	}
	return repo[:i], nil
}

// queryStrings runs a query returning one text column per row.
func queryStrings(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
