package sqldb

import (
	"context"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// ManifestsWithBlob lists up to limit manifests of repo that reference
// blob d, ordered by digest (see store.RegistryStore). It reads the
// manifest_references index by digest, within the repository.
func (db *DB) ManifestsWithBlob(ctx context.Context, repo string, d digest.Digest, limit int) ([]digest.Digest, error) {
	if limit <= 0 {
		return nil, apperr.Errorf(apperr.EINVALID, "limit %d is not positive", limit)
	}
	rows, err := db.read.QueryContext(ctx,
		`SELECT DISTINCT mr.manifest_digest FROM manifest_references mr
		 JOIN repositories r ON r.id = mr.repository_id
		 WHERE r.name = $1 AND mr.digest = $2 AND mr.kind = $3
		 ORDER BY mr.manifest_digest LIMIT $4`, repo, d.String(), string(store.RefBlob), limit)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	out := []digest.Digest{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, db.wrap(err)
		}
		out = append(out, digest.Digest(s))
	}
	return out, db.wrap(rows.Err())
}
