package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// blobUnknown is the error for a manifest naming content the repository
// does not have.
func blobUnknown(format string, args ...any) error {
	return apperr.Errorf(apperr.EINVALID, format, args...).WithDetail("MANIFEST_BLOB_UNKNOWN")
}

// checkManifest validates what PutManifest is given before any query runs.
func checkManifest(m *store.Manifest, tags []string) error {
	if err := validDigest(m.Digest); err != nil {
		return err
	}
	if m.Subject != "" {
		if err := validDigest(m.Subject); err != nil {
			return err
		}
	}
	if m.Size < 0 {
		return apperr.Errorf(apperr.EINVALID, "manifest %s has negative size %d", m.Digest, m.Size)
	}
	for _, r := range m.References {
		if err := validDigest(r.Digest); err != nil {
			return err
		}
		if r.Kind != store.RefBlob && r.Kind != store.RefManifest {
			return apperr.Errorf(apperr.EINVALID, "manifest %s: reference %s has unknown kind %q", m.Digest, r.Digest, r.Kind)
		}
	}
	for _, t := range tags {
		if t == "" {
			return apperr.Errorf(apperr.EINVALID, "empty tag name")
		}
	}
	return nil
}

// PutManifest stores m in m.Repository, creating the repository if needed,
// and points each of tags at it, in one transaction; it sets m.CreatedAt to
// when the manifest was first stored. See store.RegistryStore for the
// errors.
func (db *DB) PutManifest(ctx context.Context, m *store.Manifest, tags []string) error {
	if err := checkManifest(m, tags); err != nil {
		return err
	}
	var ann []byte
	if len(m.Annotations) > 0 {
		var err error
		if ann, err = json.Marshal(m.Annotations); err != nil {
			return apperr.Wrap(err, apperr.EINVALID, "manifest annotations cannot be encoded")
		}
	}
	// Tags are written in sorted order so that concurrent pushes of the same
	// tags lock their rows in the same order.
	tags = slices.Clone(tags)
	slices.Sort(tags)
	tags = slices.Compact(tags)

	now := db.nowUTC()
	var created time.Time
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		repoID, err := db.ensureRepo(ctx, tx, m.Repository, now)
		if err != nil {
			return err
		}
		if err := db.checkRequired(ctx, tx, repoID, m); err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx,
			`INSERT INTO manifests (repository_id, digest, media_type, artifact_type, size, subject, annotations, created_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			 ON CONFLICT (repository_id, digest) DO UPDATE SET media_type = excluded.media_type,
			   artifact_type = excluded.artifact_type, size = excluded.size, subject = excluded.subject,
			   annotations = excluded.annotations
			 RETURNING created_at`,
			repoID, m.Digest.String(), m.MediaType, m.ArtifactType, m.Size, m.Subject.String(),
			nullJSON(ann), db.ts(now)).Scan(timeScan{&created})
		if err != nil {
			return err
		}
		if err := db.putReferences(ctx, tx, repoID, m); err != nil {
			return err
		}
		for _, t := range tags {
			_, err := tx.ExecContext(ctx,
				`INSERT INTO tags (repository_id, name, digest, updated_at) VALUES ($1, $2, $3, $4)
				 ON CONFLICT (repository_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
				repoID, t, m.Digest.String(), db.ts(now))
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.CreatedAt = created
	return nil
}

// nullJSON is NULL for no annotations and their JSON text otherwise.
func nullJSON(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// checkRequired checks, inside PutManifest's transaction, that m's own blob
// is recorded, that every required blob is linked in the repository and
// that every required child manifest is stored in it. In PostgreSQL it
// key-share locks the rows it found, so that DeleteBlobIfUnused and
// DeleteManifest cannot remove them before this transaction commits.
func (db *DB) checkRequired(ctx context.Context, tx *sql.Tx, repoID int64, m *store.Manifest) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM blobs WHERE digest = $1`+db.d.lock("FOR KEY SHARE"),
		m.Digest.String()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return blobUnknown("manifest %s: its own blob is not stored", m.Digest)
	}
	if err != nil {
		return err
	}

	var blobs, manifests []string
	for _, r := range m.References {
		if !r.Required {
			continue
		}
		if r.Kind == store.RefBlob {
			blobs = append(blobs, r.Digest.String())
		} else {
			manifests = append(manifests, r.Digest.String())
		}
	}
	// Sorted, so that concurrent transactions lock shared rows in one order.
	slices.Sort(blobs)
	blobs = slices.Compact(blobs)
	slices.Sort(manifests)
	manifests = slices.Compact(manifests)

	found := make(map[string]bool, len(blobs)+len(manifests))
	find := func(query string, ds []string) error {
		for len(ds) > 0 {
			chunk := ds[:min(len(ds), chunkSize)]
			ds = ds[len(chunk):]
			args := make([]any, 0, len(chunk)+1)
			args = append(args, repoID)
			for _, d := range chunk {
				args = append(args, d)
			}
			got, err := queryStrings(ctx, tx, fmt.Sprintf(query, placeholders(2, len(chunk))), args...)
			if err != nil {
				return err
			}
			for _, d := range got {
				found[d] = true
			}
		}
		return nil
	}
	if err := find(`SELECT b.digest FROM blobs b JOIN repository_blobs rb ON rb.digest = b.digest
		WHERE rb.repository_id = $1 AND b.digest IN (%s) ORDER BY b.digest`+db.d.lock("FOR KEY SHARE OF b"), blobs); err != nil {
		return err
	}
	if err := find(`SELECT digest FROM manifests WHERE repository_id = $1 AND digest IN (%s) ORDER BY digest`+
		db.d.lock("FOR KEY SHARE"), manifests); err != nil {
		return err
	}
	for _, r := range m.References {
		if r.Required && !found[r.Digest.String()] {
			if r.Kind == store.RefBlob {
				return blobUnknown("manifest %s references blob %s, which is not in repository %q",
					m.Digest, r.Digest, m.Repository)
			}
			return blobUnknown("manifest %s references manifest %s, which is not in repository %q",
				m.Digest, r.Digest, m.Repository)
		}
	}
	return nil
}

// putReferences replaces m's reference rows.
func (db *DB) putReferences(ctx context.Context, tx *sql.Tx, repoID int64, m *store.Manifest) error {
	if _, err := tx.ExecContext(ctx,
		`DELETE FROM manifest_references WHERE repository_id = $1 AND manifest_digest = $2`,
		repoID, m.Digest.String()); err != nil {
		return err
	}
	const cols = 6
	refs := m.References
	for pos := 0; pos < len(refs); {
		n := min(len(refs)-pos, chunkSize/cols)
		var q strings.Builder
		q.WriteString(`INSERT INTO manifest_references (repository_id, manifest_digest, position, digest, kind, required) VALUES `)
		args := make([]any, 0, n*cols)
		for i := 0; i < n; i++ {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(" + placeholders(len(args)+1, cols) + ")")
			r := refs[pos+i]
			args = append(args, repoID, m.Digest.String(), pos+i, r.Digest.String(), string(r.Kind), r.Required)
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
		pos += n
	}
	return nil
}

// Manifest returns manifest d of repo, with its references in order, or
// ENOTFOUND.
func (db *DB) Manifest(ctx context.Context, repo string, d digest.Digest) (*store.Manifest, error) {
	rows, err := db.stmts.manifest.QueryContext(ctx, repo, d.String())
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	var (
		m        *store.Manifest
		subject  string
		ann      []byte
		skip     sql.RawBytes // the manifest's columns, repeated on later rows
		refDig   sql.NullString
		refKind  sql.NullString
		required sql.NullBool
	)
	for rows.Next() {
		if m == nil {
			m = &store.Manifest{Repository: repo, Digest: d}
			err = rows.Scan(&m.MediaType, &m.ArtifactType, &m.Size, &subject, &ann, timeScan{&m.CreatedAt},
				&refDig, &refKind, &required)
			if err == nil {
				m.Subject = digest.Digest(subject)
				m.Annotations, err = decodeAnnotations(ann)
			}
		} else {
			err = rows.Scan(&skip, &skip, &skip, &skip, &skip, &skip, &refDig, &refKind, &required)
		}
		if err != nil {
			return nil, db.wrap(err)
		}
		if refDig.Valid {
			m.References = append(m.References, store.Reference{
				Digest: digest.Digest(refDig.String), Kind: store.RefKind(refKind.String), Required: required.Bool,
			})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap(err)
	}
	if m == nil {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "manifest %s not found in repository %q", d, repo)
	}
	return m, nil
}

func decodeAnnotations(b []byte) (map[string]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var a map[string]string
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("decoding stored annotations: %w", err)
	}
	return a, nil
}

// Tag returns the tag, or ENOTFOUND.
func (db *DB) Tag(ctx context.Context, repo, tag string) (*store.Tag, error) {
	t := &store.Tag{Repository: repo, Name: tag}
	err := db.stmts.tag.QueryRowContext(ctx, repo, tag).Scan(&t.Digest, timeScan{&t.UpdatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "tag %q not found in repository %q", tag, repo)
	}
	if err != nil {
		return nil, db.wrap(err)
	}
	return t, nil
}

// Tags lists repo's tag names in lexical order. ENOTFOUND if the repository
// does not exist.
func (db *DB) Tags(ctx context.Context, repo string, page store.Page) ([]string, error) {
	n, err := limit(page.N)
	if err != nil {
		return nil, err
	}
	r, err := db.Repository(ctx, repo)
	if err != nil {
		return nil, err
	}
	names, err := queryStrings(ctx, db.read,
		`SELECT name FROM tags WHERE repository_id = $1 AND name > $2 ORDER BY name LIMIT $3`, r.ID, page.Last, n)
	return names, db.wrap(err)
}

// DeleteTag removes a tag. ENOTFOUND if absent.
func (db *DB) DeleteTag(ctx context.Context, repo, tag string) error {
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`DELETE FROM tags WHERE repository_id = (SELECT id FROM repositories WHERE name = $1) AND name = $2`,
			repo, tag)
		if err != nil {
			return err
		}
		return mustAffect(res, apperr.Errorf(apperr.ENOTFOUND, "tag %q not found in repository %q", tag, repo))
	})
}

// DeleteManifest removes manifest d, its references and every tag pointing
// at it from repo. ENOTFOUND if absent.
func (db *DB) DeleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		// Locking the manifest row first orders this transaction after any
		// PutManifest that holds it (as an index's child) and before its
		// tag rows, so the two cannot deadlock.
		var repoID int64
		err := tx.QueryRowContext(ctx,
			`SELECT m.repository_id FROM manifests m JOIN repositories r ON r.id = m.repository_id
			 WHERE r.name = $1 AND m.digest = $2`+db.d.lock("FOR UPDATE OF m"), repo, d.String()).Scan(&repoID)
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.Errorf(apperr.ENOTFOUND, "manifest %s not found in repository %q", d, repo)
		}
		if err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM tags WHERE repository_id = $1 AND digest = $2`,
			`DELETE FROM manifest_references WHERE repository_id = $1 AND manifest_digest = $2`,
			`DELETE FROM manifests WHERE repository_id = $1 AND digest = $2`,
		} {
			if _, err := tx.ExecContext(ctx, q, repoID, d.String()); err != nil {
				return err
			}
		}
		return nil
	})
}

// Referrers lists the manifests in repo whose subject is d, optionally only
// those of the given artifactType, ordered by digest, with their
// references.
func (db *DB) Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]store.Manifest, error) {
	filter, args := "", []any{repo, d.String()}
	if artifactType != "" {
		filter, args = " AND m.artifact_type = $3", append(args, artifactType)
	}
	rows, err := db.read.QueryContext(ctx,
		`SELECT m.digest, m.media_type, m.artifact_type, m.size, m.annotations, m.created_at
		 FROM manifests m JOIN repositories r ON r.id = m.repository_id
		 WHERE r.name = $1 AND m.subject = $2`+filter+` ORDER BY m.digest`, args...)
	if err != nil {
		return nil, db.wrap(err)
	}
	out := []store.Manifest{}
	index := map[digest.Digest]int{}
	for rows.Next() {
		m := store.Manifest{Repository: repo, Subject: d}
		var ann []byte
		if err := rows.Scan(&m.Digest, &m.MediaType, &m.ArtifactType, &m.Size, &ann, timeScan{&m.CreatedAt}); err != nil {
			rows.Close()
			return nil, db.wrap(err)
		}
		if m.Annotations, err = decodeAnnotations(ann); err != nil {
			rows.Close()
			return nil, db.wrap(err)
		}
		index[m.Digest] = len(out)
		out = append(out, m)
	}
	if err := rows.Close(); err != nil {
		return nil, db.wrap(err)
	}
	if err := rows.Err(); err != nil || len(out) == 0 {
		return out, db.wrap(err)
	}

	rows, err = db.read.QueryContext(ctx,
		`SELECT x.manifest_digest, x.digest, x.kind, x.required
		 FROM manifest_references x JOIN manifests m ON m.repository_id = x.repository_id AND m.digest = x.manifest_digest
		 JOIN repositories r ON r.id = m.repository_id
		 WHERE r.name = $1 AND m.subject = $2`+filter+` ORDER BY x.manifest_digest, x.position`, args...)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	for rows.Next() {
		var md digest.Digest
		var r store.Reference
		if err := rows.Scan(&md, &r.Digest, &r.Kind, &r.Required); err != nil {
			return nil, db.wrap(err)
		}
		if i, ok := index[md]; ok {
			out[i].References = append(out[i].References, r)
		}
	}
	return out, db.wrap(rows.Err())
}
