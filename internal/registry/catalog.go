package registry

import (
	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/store"
)

// catalogBatch is how many repository names are read from the store at a
// time while filtering the catalog by what the caller may pull.
const catalogBatch = 200

// catalog is the body of a catalog answer.
type catalog struct {
	Repositories []string `json:"repositories"`
}

// serveCatalog answers GET /v2/_catalog[?n=&last=]: the repositories the
// caller's identity may pull, in lexical order. Anonymous callers are asked
// to authenticate.
func (h *handler) serveCatalog(q *request) error {
	if q.p.Kind == auth.KindAnonymous {
		return apperr.Errorf(apperr.EUNAUTHORIZED, "authentication required to list repositories")
	}
	pg, err := parsePage(q.r.URL.Query())
	if err != nil {
		return err
	}
	// Read the store in batches until one more name than asked for was
	// found (it tells whether a next page exists) or the list ends.
	var out []string
	full := func() bool { return pg.N >= 0 && len(out) > pg.N }
	for cursor := pg.Last; pg.N != 0 && !full(); {
		repos, err := h.meta.Repositories(q.ctx, "", store.Page{N: catalogBatch, Last: cursor})
		if err != nil {
			return err
		}
		if len(repos) == 0 {
			break
		}
		for _, r := range repos {
			cursor = r
			if h.guard.Entitled(q.ctx, q.p, r, auth.ActionPull) {
				if out = append(out, r); full() {
					break
				}
			}
		}
	}
	if pg.N >= 0 && len(out) > pg.N {
		out = out[:pg.N]
		q.w.Header().Set("Link", nextLink("/v2/_catalog", out[len(out)-1], pg.N))
	}
	if out == nil {
		out = []string{}
	}
	return writeJSON(q, "application/json", catalog{Repositories: out})
}
