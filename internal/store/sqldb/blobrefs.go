package sqldb

import (
	"context"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
)

// ManifestsWithBlob lists up to limit manifests of repo that reference
// blob d, ordered by digest (see store.RegistryStore). It reads the
// manifest_references index by digest, within the repository (a prepared
// statement: the pull door runs it on every blob GET it decides).
func (db *DB) ManifestsWithBlob(ctx context.Context, repo string, d digest.Digest, limit int) ([]digest.Digest, error) {
	if limit <= 0 {
		return nil, apperr.Errorf(apperr.EINVALID, "limit %d is not positive", limit)
	}
	rows, err := db.stmts.manifestsWithBlob.QueryContext(ctx, repo, d.String(), limit)
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
