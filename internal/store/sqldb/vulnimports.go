package sqldb

import (
	"context"
	"database/sql"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

const vulnImportColumns = `source, location, owner, started_at, updated_at, lease_until, phase, bytes,
	records_read, records_changed, record_errors`

func vulnImportRow(sc interface{ Scan(...any) error }) (*store.VulnImportRun, error) {
	r := &store.VulnImportRun{}
	err := sc.Scan(&r.Source, &r.Location, &r.Owner, timeScan{&r.Started}, timeScan{&r.UpdatedAt},
		timeScan{&r.LeaseUntil}, &r.Phase, &r.Bytes, &r.Read, &r.Changed, &r.Errors)
	return r, err
}

func checkVulnImportRun(run *store.VulnImportRun, lease time.Duration) error {
	if run.Source == "" || run.Owner == "" || lease <= 0 {
		return apperr.Errorf(apperr.EINVALID, "a vulnerability import lease needs a source, an owner and a positive duration (got %q, %q, %s)",
			run.Source, run.Owner, lease)
	}
	return nil
}

// ClaimVulnImport claims a source's import lease unless another owner
// holds it unexpired. One statement decides, so concurrent claims on
// PostgreSQL see each other's committed row (ON CONFLICT re-checks its
// WHERE against it); SQLite runs one writer at a time.
func (db *DB) ClaimVulnImport(ctx context.Context, run *store.VulnImportRun, lease time.Duration) (*store.VulnImportRun, error) {
	if err := checkVulnImportRun(run, lease); err != nil {
		return nil, err
	}
	now := db.nowUTC()
	until := now.Add(lease)
	var holder *store.VulnImportRun
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		holder = nil
		res, err := tx.ExecContext(ctx, `INSERT INTO vulndb_imports (`+vulnImportColumns+`)
			VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (source) DO UPDATE SET location = excluded.location, owner = excluded.owner,
			started_at = excluded.started_at, updated_at = excluded.updated_at, lease_until = excluded.lease_until,
			phase = excluded.phase, bytes = excluded.bytes, records_read = excluded.records_read,
			records_changed = excluded.records_changed, record_errors = excluded.record_errors
			WHERE vulndb_imports.owner = excluded.owner OR vulndb_imports.lease_until < excluded.started_at`,
			run.Source, run.Location, run.Owner, db.ts(now), db.ts(until), run.Phase, run.Bytes, run.Read, run.Changed, run.Errors)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 1 {
			return err
		}
		holder, err = vulnImportRow(tx.QueryRowContext(ctx, `SELECT `+vulnImportColumns+` FROM vulndb_imports
			WHERE source = $1`, run.Source))
		return err
	})
	if err != nil {
		return nil, err
	}
	if holder == nil {
		run.Started, run.UpdatedAt, run.LeaseUntil = now, now, until
	}
	return holder, nil
}

// RenewVulnImport records progress and extends the owner's lease.
func (db *DB) RenewVulnImport(ctx context.Context, run *store.VulnImportRun, lease time.Duration) error {
	if err := checkVulnImportRun(run, lease); err != nil {
		return err
	}
	now := db.nowUTC()
	until := now.Add(lease)
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE vulndb_imports SET updated_at = $3, lease_until = $4, phase = $5,
			bytes = $6, records_read = $7, records_changed = $8, record_errors = $9 WHERE source = $1 AND owner = $2`,
			run.Source, run.Owner, db.ts(now), db.ts(until), run.Phase, run.Bytes, run.Read, run.Changed, run.Errors)
		if err != nil {
			return err
		}
		return mustAffect(res, apperr.Errorf(apperr.ECONFLICT, "the import of vulnerability source %q is no longer held by %s",
			run.Source, run.Owner))
	})
	if err != nil {
		return err
	}
	run.UpdatedAt, run.LeaseUntil = now, until
	return nil
}

// ReleaseVulnImport ends the owner's lease of source.
func (db *DB) ReleaseVulnImport(ctx context.Context, source, owner string) error {
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM vulndb_imports WHERE source = $1 AND owner = $2`, source, owner)
		return err
	})
}

// VulnImports lists the imports whose lease holds.
func (db *DB) VulnImports(ctx context.Context) ([]store.VulnImportRun, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+vulnImportColumns+` FROM vulndb_imports
		WHERE lease_until >= $1 ORDER BY source`, db.ts(db.nowUTC()))
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	out := []store.VulnImportRun{}
	for rows.Next() {
		r, err := vulnImportRow(rows)
		if err != nil {
			return nil, db.wrap(err)
		}
		out = append(out, *r)
	}
	return out, db.wrap(rows.Err())
}
