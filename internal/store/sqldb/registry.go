package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// stmts are the statements prepared once because the registry runs them on
// every manifest and blob HEAD/GET (the policy revision and a blob's
// manifests: on every GET the pull door decides; the user: every request
// with a user's token checks that the account is still enabled).
type stmts struct {
	tag, manifest, blob, linkedBlob, repository *sql.Stmt
	policyRevision, manifestsWithBlob           *sql.Stmt
	scanReportData, user                        *sql.Stmt
}

func (s *stmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&s.tag, `SELECT t.digest, t.updated_at FROM tags t JOIN repositories r ON r.id = t.repository_id
			WHERE r.name = $1 AND t.name = $2`},
		// One round trip for the manifest and its references: the
		// manifest's columns repeat on each reference's row.
		{&s.manifest, `SELECT m.media_type, m.artifact_type, m.size, m.subject, m.annotations, m.created_at,
			x.digest, x.kind, x.required
			FROM manifests m JOIN repositories r ON r.id = m.repository_id
			LEFT JOIN manifest_references x ON x.repository_id = m.repository_id AND x.manifest_digest = m.digest
			WHERE r.name = $1 AND m.digest = $2 ORDER BY x.position`},
		{&s.blob, `SELECT size, created_at, touched_at FROM blobs WHERE digest = $1`},
		{&s.linkedBlob, `SELECT b.size, b.created_at, b.touched_at FROM blobs b
			JOIN repository_blobs rb ON rb.digest = b.digest
			JOIN repositories r ON r.id = rb.repository_id
			WHERE r.name = $1 AND b.digest = $2`},
		{&s.repository, `SELECT id, project_id, created_at FROM repositories WHERE name = $1`},
		{&s.user, `SELECT ` + userColumns + ` FROM users WHERE name = $1`},
		{&s.policyRevision, `SELECT revision FROM policy_state WHERE id = 1`},
		{&s.scanReportData, `SELECT digest, media_type, platform, status, reason, vuln_revision,
			scanned_at, matched_at, packages, count_critical, count_high, count_medium, count_low, count_none,
			count_unknown, data, updated_at FROM scan_reports WHERE digest = $1`},
		{&s.manifestsWithBlob, `SELECT DISTINCT mr.manifest_digest FROM manifest_references mr
			JOIN repositories r ON r.id = mr.repository_id
			WHERE r.name = $1 AND mr.digest = $2 AND mr.kind = 'blob'
			ORDER BY mr.manifest_digest LIMIT $3`},
	} {
		st, err := db.PrepareContext(ctx, p.query)
		if err != nil {
			return err
		}
		*p.dst = st
	}
	return nil
}

func (s *stmts) close() {
	for _, st := range []*sql.Stmt{s.tag, s.manifest, s.blob, s.linkedBlob, s.repository, s.policyRevision, s.manifestsWithBlob, s.scanReportData, s.user} {
		if st != nil {
			_ = st.Close()
		}
	}
}

// validDigest returns EINVALID with Detail DIGEST_INVALID unless d is a
// well-formed digest of an available algorithm.
func validDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return apperr.Wrap(err, apperr.EINVALID, "invalid digest "+string(d)).WithDetail("DIGEST_INVALID")
	}
	return nil
}

// PutBlob records blob d or, if it is already recorded, touches it.
func (db *DB) PutBlob(ctx context.Context, d digest.Digest, size int64) error {
	if err := checkBlob(d, size); err != nil {
		return err
	}
	now := db.nowUTC()
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		return db.upsertBlob(ctx, tx, d, size, now)
	})
}

// PutLinkedBlob records (or touches) blob d and links it into repo in one
// transaction: PutBlob and LinkBlob with one commit instead of two. With
// one writer (WithWriters(1), SQLite) the calls that queue up while another
// write transaction runs share one transaction (see linkQueue).
func (db *DB) PutLinkedBlob(ctx context.Context, repo string, d digest.Digest, size int64) error {
	if err := checkBlob(d, size); err != nil {
		return err
	}
	if db.links != nil {
		return db.putLinkedBatched(ctx, repo, d, size)
	}
	now := db.nowUTC()
	return db.inTx(ctx, true, func(tx *sql.Tx) error { return db.putLinked(ctx, tx, repo, d, size, now) })
}

// putLinked is PutLinkedBlob's work inside transaction tx.
func (db *DB) putLinked(ctx context.Context, tx *sql.Tx, repo string, d digest.Digest, size int64, now time.Time) error {
	repoID, err := db.ensureRepo(ctx, tx, repo, now)
	if err != nil {
		return err
	}
	if err := db.upsertBlob(ctx, tx, d, size, now); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx,
		`INSERT INTO repository_blobs (repository_id, digest) VALUES ($1, $2)
		 ON CONFLICT (repository_id, digest) DO NOTHING`, repoID, d.String())
	return err
}

func checkBlob(d digest.Digest, size int64) error {
	if err := validDigest(d); err != nil {
		return err
	}
	if size < 0 {
		return apperr.Errorf(apperr.EINVALID, "blob %s has negative size %d", d, size)
	}
	return nil
}

// upsertBlob inserts blob d or touches it. touched_at never moves back, even
// if another replica's clock is behind.
func (db *DB) upsertBlob(ctx context.Context, tx *sql.Tx, d digest.Digest, size int64, now time.Time) error {
	_, err := tx.ExecContext(ctx,
		`INSERT INTO blobs (digest, size, created_at, touched_at) VALUES ($1, $2, $3, $3)
		 ON CONFLICT (digest) DO UPDATE SET touched_at =
		   CASE WHEN blobs.touched_at < excluded.touched_at THEN excluded.touched_at ELSE blobs.touched_at END`,
		d.String(), size, db.ts(now))
	return err
}

// Blob returns the blob record, or ENOTFOUND.
func (db *DB) Blob(ctx context.Context, d digest.Digest) (*store.Blob, error) {
	b := &store.Blob{Digest: d}
	err := db.stmts.blob.QueryRowContext(ctx, d.String()).
		Scan(&b.Size, timeScan{&b.CreatedAt}, timeScan{&b.TouchedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "blob %s not found", d)
	}
	if err != nil {
		return nil, db.wrap(err)
	}
	return b, nil
}

// LinkBlob makes blob d available in repo, creating the repository if
// needed, and touches the blob. ENOTFOUND if the blob or the repository's
// project does not exist.
func (db *DB) LinkBlob(ctx context.Context, repo string, d digest.Digest) error {
	if err := validDigest(d); err != nil {
		return err
	}
	now := db.nowUTC()
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		repoID, err := db.ensureRepo(ctx, tx, repo, now)
		if err != nil {
			return err
		}
		// Touching the row also locks it, so a concurrent
		// DeleteBlobIfUnused either finished before (and the blob is gone)
		// or sees the new touched_at.
		res, err := tx.ExecContext(ctx,
			`UPDATE blobs SET touched_at = CASE WHEN touched_at < $2 THEN $2 ELSE touched_at END WHERE digest = $1`,
			d.String(), db.ts(now))
		if err != nil {
			return err
		}
		if err := mustAffect(res, apperr.Errorf(apperr.ENOTFOUND, "blob %s not found", d)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO repository_blobs (repository_id, digest) VALUES ($1, $2)
			 ON CONFLICT (repository_id, digest) DO NOTHING`, repoID, d.String())
		return err
	})
}

// LinkedBlob returns blob d if it is linked in repo, or ENOTFOUND.
func (db *DB) LinkedBlob(ctx context.Context, repo string, d digest.Digest) (*store.Blob, error) {
	b := &store.Blob{Digest: d}
	err := db.stmts.linkedBlob.QueryRowContext(ctx, repo, d.String()).
		Scan(&b.Size, timeScan{&b.CreatedAt}, timeScan{&b.TouchedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "blob %s not found in repository %q", d, repo)
	}
	if err != nil {
		return nil, db.wrap(err)
	}
	return b, nil
}

// UnlinkBlob removes the link of blob d from repo. ENOTFOUND if absent.
func (db *DB) UnlinkBlob(ctx context.Context, repo string, d digest.Digest) error {
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`DELETE FROM repository_blobs
			 WHERE repository_id = (SELECT id FROM repositories WHERE name = $1) AND digest = $2`,
			repo, d.String())
		if err != nil {
			return err
		}
		return mustAffect(res, apperr.Errorf(apperr.ENOTFOUND, "blob %s not found in repository %q", d, repo))
	})
}

// RepositoriesWithBlob lists, in lexical order, up to limit repositories
// that link d (all of them when limit is 0).
func (db *DB) RepositoriesWithBlob(ctx context.Context, d digest.Digest, max int) ([]string, error) {
	n, err := limit(max)
	if err != nil {
		return nil, err
	}
	names, err := queryStrings(ctx, db.read,
		`SELECT r.name FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
		 WHERE rb.digest = $1 ORDER BY r.name LIMIT $2`, d.String(), n)
	return names, db.wrap(err)
}

// Repository returns the named repository, or ENOTFOUND.
func (db *DB) Repository(ctx context.Context, name string) (*store.Repository, error) {
	r := &store.Repository{Name: name}
	err := db.stmts.repository.QueryRowContext(ctx, name).Scan(&r.ID, &r.ProjectID, timeScan{&r.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "repository %q not found", name)
	}
	if err != nil {
		return nil, db.wrap(err)
	}
	return r, nil
}

// DeleteRepository removes repository name with its tags, manifests,
// references and blob links in one transaction; see
// store.RegistryStore.
func (db *DB) DeleteRepository(ctx context.Context, name string) (store.RepositoryDeletion, error) {
	var del store.RepositoryDeletion
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		del = store.RepositoryDeletion{}
		// The exclusive lock waits for every transaction that key-share
		// locked the row to write into the repository (ensureRepo, the
		// foreign keys), so the deletes below see what they committed;
		// later ones wait for this one and then find no repository.
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM repositories WHERE name = $1`+db.d.lock("FOR UPDATE"),
			name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.Errorf(apperr.ENOTFOUND, "repository %q not found", name)
		}
		if err != nil {
			return err
		}
		for _, q := range []struct {
			query string
			n     *int64
		}{
			{`DELETE FROM tags WHERE repository_id = $1`, &del.Tags},
			{`DELETE FROM manifest_references WHERE repository_id = $1`, nil},
			{`DELETE FROM manifests WHERE repository_id = $1`, &del.Manifests},
			{`DELETE FROM repository_blobs WHERE repository_id = $1`, &del.BlobLinks},
			{`DELETE FROM repositories WHERE id = $1`, nil},
		} {
			res, err := tx.ExecContext(ctx, q.query, id)
			if err != nil {
				return err
			}
			if q.n != nil {
				if *q.n, err = res.RowsAffected(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return del, err
}

// Repositories lists repository names in lexical order; if project is not
// "", only that project's (none if the project does not exist).
func (db *DB) Repositories(ctx context.Context, project string, page store.Page) ([]string, error) {
	n, err := limit(page.N)
	if err != nil {
		return nil, err
	}
	var names []string
	if project == "" {
		names, err = queryStrings(ctx, db.read,
			`SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2`, page.Last, n)
	} else {
		names, err = queryStrings(ctx, db.read,
			`SELECT r.name FROM repositories r JOIN projects p ON p.id = r.project_id
			 WHERE p.name = $1 AND r.name > $2 ORDER BY r.name LIMIT $3`, project, page.Last, n)
	}
	return names, db.wrap(err)
}

// BlobStats returns how many blob records exist and their total size.
func (db *DB) BlobStats(ctx context.Context) (count, bytes int64, err error) {
	err = db.read.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(size), 0) FROM blobs`).Scan(&count, &bytes)
	return count, bytes, db.wrap(err)
}

// ensureRepo returns the ID of repository repo, creating it if needed, inside
// tx. ENOTFOUND if its project does not exist.
func (db *DB) ensureRepo(ctx context.Context, tx *sql.Tx, repo string, now time.Time) (int64, error) {
	project, err := projectOf(repo)
	if err != nil {
		return 0, err
	}
	var id int64
	// The key-share lock (which the foreign keys of the rows this
	// transaction inserts would take anyway) makes a concurrent
	// DeleteRepository wait for this transaction, or this one wait for it
	// and then find no row and create the repository anew.
	err = tx.QueryRowContext(ctx, `SELECT id FROM repositories WHERE name = $1`+db.d.lock("FOR KEY SHARE"), repo).Scan(&id)
	if err == nil || !errors.Is(err, sql.ErrNoRows) {
		return id, err
	}
	// The key-share lock keeps a concurrent DeleteProject from removing the
	// project before this transaction's repository row commits.
	var projectID int64
	err = tx.QueryRowContext(ctx,
		`SELECT id FROM projects WHERE name = $1`+db.d.lock("FOR KEY SHARE"), project).Scan(&projectID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, apperr.Errorf(apperr.ENOTFOUND,
			"project %q does not exist; create it first (customs project create %s)", project, project)
	}
	if err != nil {
		return 0, err
	}
	err = tx.QueryRowContext(ctx,
		`INSERT INTO repositories (project_id, name, created_at) VALUES ($1, $2, $3)
		 ON CONFLICT (name) DO NOTHING RETURNING id`, projectID, repo, db.ts(now)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		// Created concurrently (PostgreSQL): it is committed now.
		err = tx.QueryRowContext(ctx, `SELECT id FROM repositories WHERE name = $1`, repo).Scan(&id)
	}
	return id, err
}
