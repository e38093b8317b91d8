package sqldb

import (
	"context"
	"database/sql"
	"strings"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// SystemAllowlist returns the entries ordered by ID (case-insensitive),
// package and repository.
func (db *DB) SystemAllowlist(ctx context.Context) ([]store.AllowlistEntry, error) {
	rows, err := db.read.QueryContext(ctx,
		`SELECT id, package, repository, expires_at, reason, added_by, added_at FROM system_allowlist
		 ORDER BY id_key, package, repository`)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	out := []store.AllowlistEntry{}
	for rows.Next() {
		var e store.AllowlistEntry
		if err := rows.Scan(&e.ID, &e.Package, &e.Repository, nullTime{&e.Expires}, &e.Reason, &e.AddedBy, timeScan{&e.AddedAt}); err != nil {
			return nil, db.wrap(err)
		}
		out = append(out, e)
	}
	return out, db.wrap(rows.Err())
}

// PutSystemAllowlistEntry adds e, replacing the entry of the same advisory
// (case-insensitively), package and repository; it sets e.AddedAt and
// returns the new global policy revision. EINVALID if e.ID is empty.
func (db *DB) PutSystemAllowlistEntry(ctx context.Context, e *store.AllowlistEntry) (int64, error) {
	if e.ID == "" {
		return 0, apperr.Errorf(apperr.EINVALID, "allowlist entry: advisory id is empty")
	}
	now := db.nowUTC()
	var rev int64
	defer db.policyChanged()
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		var err error
		if rev, err = db.nextPolicyRevision(ctx, tx); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO system_allowlist (id_key, id, package, repository, expires_at, reason, added_by, added_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			 ON CONFLICT (id_key, package, repository) DO UPDATE SET id = excluded.id, expires_at = excluded.expires_at,
			   reason = excluded.reason, added_by = excluded.added_by, added_at = excluded.added_at`,
			strings.ToLower(e.ID), e.ID, e.Package, e.Repository, db.tsOrNull(e.Expires), e.Reason, e.AddedBy, db.ts(now))
		return err
	})
	if err != nil {
		return 0, err
	}
	e.AddedAt = now
	return rev, nil
}

// DeleteSystemAllowlistEntries removes every entry of advisory id
// (case-insensitively) and returns how many it removed and the new global
// policy revision. ENOTFOUND if there is none.
func (db *DB) DeleteSystemAllowlistEntries(ctx context.Context, id string) (int, int64, error) {
	var rev int64
	var n int64
	defer db.policyChanged()
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM system_allowlist WHERE id_key = $1`, strings.ToLower(id))
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		if n == 0 {
			return apperr.Errorf(apperr.ENOTFOUND, "the system allowlist has no entry %q", id)
		}
		rev, err = db.nextPolicyRevision(ctx, tx)
		return err
	})
	return int(n), rev, err
}
