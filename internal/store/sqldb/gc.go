package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
)

// unreferenced is the condition, on blobs b, that no manifest is stored as b
// and no manifest reference points at b.
const unreferenced = `NOT EXISTS (SELECT 1 FROM manifests m WHERE m.digest = b.digest)
	AND NOT EXISTS (SELECT 1 FROM manifest_references x WHERE x.digest = b.digest)`

// GCCandidates lists up to limit blobs (all when limit is 0), least recently
// touched first, that no manifest references, that are not themselves a
// stored manifest, and that were last touched before cutoff.
func (db *DB) GCCandidates(ctx context.Context, cutoff time.Time, max int) ([]digest.Digest, error) {
	n, err := limit(max)
	if err != nil {
		return nil, err
	}
	names, err := queryStrings(ctx, db.read,
		`SELECT b.digest FROM blobs b WHERE b.touched_at < $1 AND `+unreferenced+`
		 ORDER BY b.touched_at, b.digest LIMIT $2`, db.ts(cutoff), n)
	if err != nil {
		return nil, db.wrap(err)
	}
	out := make([]digest.Digest, len(names))
	for i, s := range names {
		out[i] = digest.Digest(s)
	}
	return out, nil
}

// DeleteBlobIfUnused deletes blob d's record and links in one transaction if
// d is still a GC candidate for cutoff; before committing it calls
// removeBytes, and rolls back if that fails (returning its error). It
// reports whether the blob was deleted; a blob already gone is not an
// error.
func (db *DB) DeleteBlobIfUnused(ctx context.Context, d digest.Digest, cutoff time.Time, removeBytes func() error) (bool, error) {
	cutoff = cutoff.UTC().Truncate(time.Microsecond) // as GCCandidates compares
	deleted := false
	var removeErr error
	// No retry: removeBytes has an effect outside the transaction.
	err := db.inTx(ctx, false, func(tx *sql.Tx) error {
		// The exclusive row lock waits for every transaction that touched
		// the blob or key-share locked it to reference it (PutManifest), and
		// makes those that come later wait for this one; the checks below
		// run after it, so they see everything those committed.
		var touched time.Time
		err := tx.QueryRowContext(ctx, `SELECT touched_at FROM blobs WHERE digest = $1`+db.d.lock("FOR UPDATE"),
			d.String()).Scan(timeScan{&touched})
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if !touched.Before(cutoff) {
			return nil
		}
		var unused bool
		if err := tx.QueryRowContext(ctx, `SELECT `+unreferenced+` FROM blobs b WHERE b.digest = $1`,
			d.String()).Scan(&unused); err != nil {
			return err
		}
		if !unused {
			return nil
		}
		for _, q := range []string{
			`DELETE FROM repository_blobs WHERE digest = $1`,
			`DELETE FROM blobs WHERE digest = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, d.String()); err != nil {
				return err
			}
		}
		if err := removeBytes(); err != nil {
			removeErr = err
			return err
		}
		deleted = true
		return nil
	})
	if err != nil {
		if removeErr != nil {
			var ae *apperr.Error
			if !errors.As(removeErr, &ae) {
				return false, apperr.Wrap(removeErr, apperr.EINTERNAL, "removing the bytes of blob "+d.String()+" failed")
			}
			return false, removeErr
		}
		return false, err
	}
	return deleted, nil
}
