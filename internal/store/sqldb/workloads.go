package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// ClaimWorkloadAudit claims the workload audit's lease unless another
// owner holds it unexpired. One statement decides, as ClaimVulnImport.
func (db *DB) ClaimWorkloadAudit(ctx context.Context, owner string, lease time.Duration) (bool, error) {
	if owner == "" || lease <= 0 {
		return false, apperr.Errorf(apperr.EINVALID, "the workload audit lease needs an owner and a positive duration (got %q, %s)", owner, lease)
	}
	now := db.nowUTC()
	var claimed bool
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO workload_audit_lease (id, owner, lease_until) VALUES (1, $1, $2)
			ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until
			WHERE workload_audit_lease.owner = excluded.owner OR workload_audit_lease.lease_until < $3`,
			owner, db.ts(now.Add(lease)), db.ts(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		claimed = n == 1
		return err
	})
	return claimed, err
}

// ReleaseWorkloadAudit ends owner's lease.
func (db *DB) ReleaseWorkloadAudit(ctx context.Context, owner string) error {
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM workload_audit_lease WHERE id = 1 AND owner = $1`, owner)
		return err
	})
}

// PutWorkloadAudit replaces the stored audit if a.Owner holds the lease.
func (db *DB) PutWorkloadAudit(ctx context.Context, a *store.WorkloadAudit) error {
	if a.Owner == "" {
		return apperr.Errorf(apperr.EINVALID, "a workload audit needs its owner")
	}
	a.Started, a.Finished = a.Started.UTC().Truncate(time.Microsecond), a.Finished.UTC().Truncate(time.Microsecond)
	b, err := json.Marshal(a)
	if err != nil {
		return apperr.Wrap(err, apperr.EINVALID, "encoding the workload audit")
	}
	now := db.nowUTC()
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO workload_audit (id, finished_at, result)
			SELECT 1, $1, $2 WHERE EXISTS (SELECT 1 FROM workload_audit_lease
				WHERE id = 1 AND owner = $3 AND lease_until >= $4)
			ON CONFLICT (id) DO UPDATE SET finished_at = excluded.finished_at, result = excluded.result`,
			db.ts(a.Finished), string(b), a.Owner, db.ts(now))
		if err != nil {
			return err
		}
		return mustAffect(res, apperr.Errorf(apperr.ECONFLICT, "the workload audit lease is no longer held by %s", a.Owner))
	})
}

// LastWorkloadAudit returns the stored audit.
func (db *DB) LastWorkloadAudit(ctx context.Context) (*store.WorkloadAudit, error) {
	var raw string
	err := db.read.QueryRowContext(ctx, `SELECT result FROM workload_audit WHERE id = 1`).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "no workload audit has run yet")
	}
	if err != nil {
		return nil, db.wrap(err)
	}
	var a store.WorkloadAudit
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		return nil, apperr.Wrap(err, apperr.EINTERNAL, "the stored workload audit does not decode")
	}
	if a.Findings == nil {
		a.Findings = []store.WorkloadFinding{}
	}
	return &a, nil
}
