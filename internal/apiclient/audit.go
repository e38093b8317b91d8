package apiclient

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
)

// AuditQuery filters AuditEvents; empty fields match everything (see
// GET /api/v1/audit/events).
type AuditQuery struct {
	Actor, Action, Project, Outcome, Resource string
	// Since and Until are times (RFC 3339, a date) or ages ("24h", "7d").
	Since, Until string
	// N is the page size (0: the server's default); Last, if not 0, asks
	// for events older than that event id.
	N    int
	Last int64
}

// AuditEvents returns one page of audit events, newest first.
func (c *Client) AuditEvents(ctx context.Context, q AuditQuery) (api.AuditPage, error) {
	v := url.Values{}
	for k, s := range map[string]string{"actor": q.Actor, "action": q.Action, "project": q.Project, "outcome": q.Outcome,
		"resource": q.Resource, "since": q.Since, "until": q.Until} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.N != 0 {
		v.Set("n", strconv.Itoa(q.N))
	}
	if q.Last != 0 {
		v.Set("last", strconv.FormatInt(q.Last, 10))
	}
	path := "/api/v1/audit/events"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var page api.AuditPage
	err := c.do(ctx, http.MethodGet, path, nil, &page)
	return page, err
}

// AuditExport copies every audit event, oldest first, as JSON lines to w,
// and returns how many bytes it wrote. The export is streamed; a server
// failing midway aborts it, which is returned as an error.
func (c *Client) AuditExport(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.send(ctx, http.MethodGet, "/api/v1/audit/export", nil, "application/x-ndjson")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, apperr.Wrap(err, apperr.EUNAVAILABLE, "the export was cut off: "+err.Error())
	}
	return n, nil
}

// AuditVerify asks the server to verify the audit trail's hash chain.
func (c *Client) AuditVerify(ctx context.Context) (audit.Report, error) {
	var rep audit.Report
	err := c.do(ctx, http.MethodGet, "/api/v1/audit/verify", nil, &rep)
	return rep, err
}

// AuditPurge removes audit events older than olderThan ("90d").
func (c *Client) AuditPurge(ctx context.Context, olderThan string) (api.PurgeAuditResult, error) {
	var res api.PurgeAuditResult
	err := c.do(ctx, http.MethodPost, "/api/v1/audit/purge", api.PurgeAuditRequest{OlderThan: olderThan}, &res)
	return res, err
}
