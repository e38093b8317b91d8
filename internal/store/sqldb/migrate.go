package sqldb

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Migration is one versioned schema change.
type Migration struct {
	Version int64  // from the file name's numeric prefix
	Name    string // the file name
	SQL     string
}

// LoadMigrations reads the *.sql files of fsys's root, each named
// "<version>_<description>.sql" with a positive decimal version, and returns
// them in version order. Duplicate or malformed versions are an error.
func LoadMigrations(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		prefix, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseInt(prefix, 10, 64)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %q: name must be <version>_<description>.sql", e.Name())
		}
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return cmp.Compare(a.Version, b.Version) })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("migrations %q and %q have the same version", ms[i-1].Name, ms[i].Name)
		}
	}
	return ms, nil
}

// Migrate applies, on conn and in version order, each migration not yet
// recorded in schema_migrations, each in its own transaction together with
// its record and the Go step, if any, that completes it (migrationStep:
// data the SQL cannot transform). It refuses a database whose schema is newer than the newest
// migration. Callers that may run concurrently with another process's
// Migrate serialize them (PostgreSQL: an advisory lock held on conn;
// SQLite: write transactions are exclusive, and each re-checks its version
// inside its transaction).
func Migrate(ctx context.Context, conn *sql.Conn, d Dialect, ms []Migration, logger *slog.Logger) error {
	if _, err := conn.ExecContext(ctx, d.MigrationsTable); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	var newest sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("reading schema_migrations: %w", err)
	}
	if len(ms) > 0 && newest.Valid && newest.Int64 > ms[len(ms)-1].Version {
		return fmt.Errorf("the %s database's schema version %d is newer than this customs knows (%d): upgrade customs",
			d.Name, newest.Int64, ms[len(ms)-1].Version)
	}
	for _, m := range ms {
		applied, err := applyMigration(ctx, conn, d, m)
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if applied {
			logger.Info("store: applied schema migration", "db", d.Name, "migration", m.Name)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, conn *sql.Conn, d Dialect, m Migration) (bool, error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback() }()
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM schema_migrations WHERE version = $1`, m.Version).Scan(&one)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, err
	}
	if step := migrationStep(m.Version); step != nil {
		if err := step(ctx, tx, d); err != nil {
			return false, err
		}
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
		m.Version, m.Name, d.TimeArg(time.Now().UTC().Truncate(time.Microsecond))); err != nil {
		return false, err
	}
	return true, tx.Commit()
}
