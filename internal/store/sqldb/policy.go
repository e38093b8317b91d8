package sqldb

import (
	"context"
	"database/sql"
	"errors"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// nextPolicyRevision takes the next global policy revision; the row lock
// (or SQLite's write lock) orders concurrent changes.
func (db *DB) nextPolicyRevision(ctx context.Context, tx *sql.Tx) (int64, error) {
	var rev int64
	err := tx.QueryRowContext(ctx,
		`UPDATE policy_state SET revision = revision + 1 WHERE id = 1 RETURNING revision`).Scan(&rev)
	return rev, err
}

// PutPolicy stores doc as the newest version of doc.Name, taking the next
// global revision, and sets doc.Revision and doc.UpdatedAt. EINVALID if
// Name or Document is empty.
func (db *DB) PutPolicy(ctx context.Context, doc *store.PolicyDocument) error {
	return db.putPolicy(ctx, doc, -1)
}

// ReplacePolicy is PutPolicy on condition that the current version of
// doc.Name is at revision base (0: that the policy does not exist);
// ECONFLICT, and nothing stored, otherwise.
func (db *DB) ReplacePolicy(ctx context.Context, doc *store.PolicyDocument, base int64) error {
	if base < 0 {
		return apperr.Errorf(apperr.EINVALID, "base revision %d of policy %q is negative", base, doc.Name)
	}
	return db.putPolicy(ctx, doc, base)
}

// putPolicy stores doc, on condition that its current revision is base
// unless base is -1.
func (db *DB) putPolicy(ctx context.Context, doc *store.PolicyDocument, base int64) error {
	if doc.Name == "" {
		return apperr.Errorf(apperr.EINVALID, "policy name is empty")
	}
	if doc.Document == "" {
		return apperr.Errorf(apperr.EINVALID, "policy %q has an empty document", doc.Name)
	}
	now := db.nowUTC()
	var rev int64
	defer db.policyChanged()
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		var err error
		// Taking the revision first locks policy_state: policy changes are
		// serialised, so the check below holds until commit.
		if rev, err = db.nextPolicyRevision(ctx, tx); err != nil {
			return err
		}
		if base >= 0 {
			var cur int64
			err := tx.QueryRowContext(ctx, `SELECT revision FROM policies WHERE name = $1`, doc.Name).Scan(&cur)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if cur != base {
				return apperr.Errorf(apperr.ECONFLICT, "policy %q changed meanwhile (revision %d, not %d); try again", doc.Name, cur, base)
			}
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO policies (name, project, document, revision, updated_by, updated_at)
			 VALUES ($1, $2, $3, $4, $5, $6)
			 ON CONFLICT (name) DO UPDATE SET project = excluded.project, document = excluded.document,
			   revision = excluded.revision, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
			doc.Name, doc.Project, doc.Document, rev, doc.UpdatedBy, db.ts(now)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO policy_revisions (name, revision, project, document, deleted, updated_by, updated_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			doc.Name, rev, doc.Project, doc.Document, false, doc.UpdatedBy, db.ts(now))
		return err
	})
	if err != nil {
		return err
	}
	doc.Revision, doc.UpdatedAt, doc.Deleted = rev, now, false
	return nil
}

// Policy returns the current version of the named policy, or ENOTFOUND.
func (db *DB) Policy(ctx context.Context, name string) (*store.PolicyDocument, error) {
	d := &store.PolicyDocument{Name: name}
	err := db.read.QueryRowContext(ctx,
		`SELECT project, document, revision, updated_by, updated_at FROM policies WHERE name = $1`, name).
		Scan(&d.Project, &d.Document, &d.Revision, &d.UpdatedBy, timeScan{&d.UpdatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "policy %q not found", name)
	}
	if err != nil {
		return nil, db.wrap(err)
	}
	return d, nil
}

// Policies lists the current versions ordered by name.
func (db *DB) Policies(ctx context.Context, page store.Page) ([]store.PolicyDocument, error) {
	n, err := limit(page.N)
	if err != nil {
		return nil, err
	}
	rows, err := db.read.QueryContext(ctx,
		`SELECT name, project, document, revision, updated_by, updated_at FROM policies
		 WHERE name > $1 ORDER BY name LIMIT $2`, page.Last, n)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	out := []store.PolicyDocument{}
	for rows.Next() {
		var d store.PolicyDocument
		if err := rows.Scan(&d.Name, &d.Project, &d.Document, &d.Revision, &d.UpdatedBy, timeScan{&d.UpdatedAt}); err != nil {
			return nil, db.wrap(err)
		}
		out = append(out, d)
	}
	return out, db.wrap(rows.Err())
}

// DeletePolicy removes the named policy, records the deletion in its
// history, and returns the new global revision. ENOTFOUND if missing.
func (db *DB) DeletePolicy(ctx context.Context, name, by string) (int64, error) {
	now := db.nowUTC()
	defer db.policyChanged()
	var rev int64
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		var project, document string
		err := tx.QueryRowContext(ctx,
			`DELETE FROM policies WHERE name = $1 RETURNING project, document`, name).Scan(&project, &document)
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.Errorf(apperr.ENOTFOUND, "policy %q not found", name)
		}
		if err != nil {
			return err
		}
		if rev, err = db.nextPolicyRevision(ctx, tx); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO policy_revisions (name, revision, project, document, deleted, updated_by, updated_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			name, rev, project, document, true, by, db.ts(now))
		return err
	})
	return rev, err
}

// PolicyHistory returns every version of the named policy, deletions
// included, newest first; ENOTFOUND if it never existed.
func (db *DB) PolicyHistory(ctx context.Context, name string) ([]store.PolicyDocument, error) {
	rows, err := db.read.QueryContext(ctx,
		`SELECT project, document, revision, deleted, updated_by, updated_at FROM policy_revisions
		 WHERE name = $1 ORDER BY revision DESC`, name)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	out := []store.PolicyDocument{}
	for rows.Next() {
		d := store.PolicyDocument{Name: name}
		if err := rows.Scan(&d.Project, &d.Document, &d.Revision, &d.Deleted, &d.UpdatedBy, timeScan{&d.UpdatedAt}); err != nil {
			return nil, db.wrap(err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap(err)
	}
	if len(out) == 0 {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "policy %q not found", name)
	}
	return out, nil
}

// PolicyChanges counts the transactions this DB (this process) ran that
// may have moved the global policy revision — policy puts and deletes,
// system allowlist changes — counted once each has committed or rolled
// back. A reader that read PolicyRevision after seeing a count knows the
// revision it read is current as far as this process's writes go while
// the count stays the same; changes made through other processes are not
// counted (poll PolicyRevision for those).
func (db *DB) PolicyChanges() uint64 { return db.policyChanges.Load() }

// policyChanged counts a policy revision change (deferred by the writers
// so that it counts after the transaction ended).
func (db *DB) policyChanged() { db.policyChanges.Add(1) }

// PolicyRevision returns the global policy revision (0 before any change).
func (db *DB) PolicyRevision(ctx context.Context) (int64, error) {
	var rev int64
	// Prepared once (stmts): every decision of every door reads it.
	if err := db.stmts.policyRevision.QueryRowContext(ctx).Scan(&rev); err != nil {
		return 0, db.wrap(err)
	}
	return rev, nil
}
