package registry

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/store"
)

// maxPage caps the n of one tags or catalog page; larger requests get this
// many entries and a Link to the rest.
const maxPage = 10000

// page is a parsed n/last pagination request. N < 0 means no n was given.
type page struct {
	N    int
	Last string
}

// parsePage reads the n and last query parameters.
func parsePage(query url.Values) (page, error) {
	p := page{N: -1, Last: query.Get("last")}
	if query.Has("n") {
		n, err := strconv.Atoi(query.Get("n"))
		if err != nil || n < 0 {
			return page{}, apperr.Errorf(apperr.EINVALID, "n must be a non-negative integer").WithDetail(codePaginationInvalid)
		}
		p.N = min(n, maxPage)
	}
	return p, nil
}

// nextLink is the Link header value for the page after last.
func nextLink(path string, last string, n int) string {
	v := url.Values{}
	v.Set("last", last)
	v.Set("n", strconv.Itoa(n))
	return "<" + path + "?" + v.Encode() + `>; rel="next"`
}

// writeJSON answers 200 with v as JSON.
func writeJSON(q *request, contentType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	hd := q.w.Header()
	hd.Set("Content-Type", contentType)
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	q.w.WriteHeader(http.StatusOK)
	if q.r.Method != http.MethodHead {
		_, _ = q.w.Write(b)
	}
	return nil
}

// tagList is the body of a tags list answer.
type tagList struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

// serveTags answers GET /v2/<name>/tags/list[?n=&last=] in lexical order.
func (h *handler) serveTags(q *request) error {
	if err := h.authorize(q, auth.ActionPull); err != nil {
		return err
	}
	pg, err := parsePage(q.r.URL.Query())
	if err != nil {
		return err
	}
	fetch := store.Page{Last: pg.Last}
	if pg.N >= 0 {
		fetch.N = pg.N + 1 // one more tells whether a next page exists
	}
	tags, err := h.meta.Tags(q.ctx, q.rt.Name, fetch)
	if err != nil {
		return notFoundAs(err, codeNameUnknown, "repository %s not found", q.rt.Name)
	}
	if pg.N >= 0 && len(tags) > pg.N {
		tags = tags[:pg.N]
		if pg.N > 0 {
			q.w.Header().Set("Link", nextLink("/v2/"+q.rt.Name+"/tags/list", tags[len(tags)-1], pg.N))
		}
	}
	if tags == nil {
		tags = []string{}
	}
	return writeJSON(q, "application/json", tagList{Name: q.rt.Name, Tags: tags})
}
