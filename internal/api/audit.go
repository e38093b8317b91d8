package api

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/config"
	"github.com/customs-dev/customs/internal/rbac"
	"github.com/customs-dev/customs/internal/store"
)

// AuditLog is the audit trail the API queries, exports, verifies and purges
// (see store.AuditStore for the contracts).
type AuditLog interface {
	AuditEvents(ctx context.Context, f store.AuditFilter) ([]audit.Event, error)
	ScanAudit(ctx context.Context, fn func(c audit.Chain, events iter.Seq2[audit.Event, error]) error) error
	PurgeAudit(ctx context.Context, before time.Time, by *audit.Event) (int64, error)
}

// Audit actions of the audit log itself.
const (
	auditRead   = "audit.read"   // refused queries, exports and verifications
	auditExport = "audit.export" // an export of the whole trail
)

// Audit query limits.
const (
	defaultAuditPage = 100
	maxAuditPage     = 1000
	// maxPurgeAge bounds olderThan, so that a typo cannot overflow the
	// cutoff into the future (which would purge everything).
	maxPurgeAge = 100 * 365 * 24 * time.Hour
)

// AuditPage is the answer of GET /api/v1/audit/events: events newest
// first, and Next, when more may follow, the value of the "last" parameter
// that fetches the next (older) page.
type AuditPage struct {
	Events []audit.Event `json:"events"`
	Next   string        `json:"next,omitempty"`
}

// PurgeAuditRequest is the body of POST /api/v1/audit/purge: events older
// than OlderThan ("90d", "720h") are removed.
type PurgeAuditRequest struct {
	OlderThan string `json:"olderThan"`
}

// PurgeAuditResult is the answer of POST /api/v1/audit/purge.
type PurgeAuditResult struct {
	// Deleted counts the events removed.
	Deleted int64 `json:"deleted"`
	// Before is the cutoff the purge used.
	Before time.Time `json:"before"`
	// Event is the audit.purge event recording the purge.
	Event audit.Event `json:"event"`
}

// auditRoutes serves the audit log endpoints.
func (h *handler) auditRoutes(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/audit/events", h.wrap(h.auditEvents))
	mux.Handle("GET /api/v1/audit/export", h.wrap(h.auditExport))
	mux.Handle("GET /api/v1/audit/verify", h.wrap(h.auditVerify))
	mux.Handle("POST /api/v1/audit/purge", h.wrap(h.auditPurge))
}

// mayAudit returns nil if p may use the audit log: query, export and verify
// (op auditRead) or purge (audit.PurgeAction). It is the one place these
// permissions are decided: system administrators only. Refusals are
// audited.
func (h *handler) mayAudit(r *http.Request, p auth.Principal, op string) error {
	return h.requireAdmin(r, p, op, "audit")
}

// mayReadProjectAudit returns nil if p may query the audit events of
// project: system administrators always (any project or none), other
// callers for a named project in which they hold rbac.ActionReadAudit.
func (h *handler) mayReadProjectAudit(r *http.Request, p auth.Principal, project string) error {
	if project != "" && !p.Admin && p.Kind != auth.KindAnonymous {
		may, err := h.opts.Auth.ProjectPermissions(r.Context(), p, project)
		if err != nil {
			return err
		}
		if may.Has(rbac.ActionReadAudit) {
			return nil
		}
	}
	return h.mayAudit(r, p, auditRead)
}

// auditFilter reads the query parameters of GET /api/v1/audit/events.
func auditFilter(q map[string][]string, now time.Time) (store.AuditFilter, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	f := store.AuditFilter{Actor: get("actor"), Action: get("action"), Project: get("project"), Resource: get("resource"), N: defaultAuditPage}
	switch o := audit.Outcome(get("outcome")); o {
	case "", audit.Success, audit.Failure, audit.Denied:
		f.Outcome = o
	default:
		return f, apperr.Errorf(apperr.EINVALID, "outcome %q is not success, failure or denied", o)
	}
	var err error
	if f.Since, err = ParseWhen(get("since"), now); err != nil {
		return f, apperr.Errorf(apperr.EINVALID, "since: %v", err)
	}
	if f.Until, err = ParseWhen(get("until"), now); err != nil {
		return f, apperr.Errorf(apperr.EINVALID, "until: %v", err)
	}
	if s := get("n"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxAuditPage {
			return f, apperr.Errorf(apperr.EINVALID, "n must be an integer from 1 to %d", maxAuditPage)
		}
		f.N = n
	}
	if s := get("last"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id < 1 {
			return f, apperr.Errorf(apperr.EINVALID, "last must be the positive id of an event")
		}
		f.Before = id
	}
	return f, nil
}

// ParseWhen reads a point in time given as RFC 3339 ("2026-03-01T00:00:00Z"),
// a date ("2026-03-01", midnight UTC), or an age before now ("90m", "24h",
// "7d"). "" is the zero time (no bound).
func ParseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d, err := parseAge(s)
	if err != nil {
		return time.Time{}, apperr.Errorf(apperr.EINVALID,
			"%q is neither a time (2026-03-01T15:04:05Z, 2026-03-01) nor an age (90m, 24h, 7d)", s)
	}
	return now.Add(-d).UTC(), nil
}

// parseAge reads a positive duration of at most maxPurgeAge ("90d").
func parseAge(s string) (time.Duration, error) {
	d, err := config.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d <= 0 || d.Std() > maxPurgeAge {
		return 0, apperr.Errorf(apperr.EINVALID, "%q must be more than 0 and at most 100 years", s)
	}
	return d.Std(), nil
}

func (h *handler) auditEvents(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	f, err := auditFilter(r.URL.Query(), h.opts.Clock())
	if err != nil {
		return err
	}
	if err := h.mayReadProjectAudit(r, p, f.Project); err != nil {
		return err
	}
	events, err := h.opts.AuditLog.AuditEvents(r.Context(), f)
	if err != nil {
		return err
	}
	page := AuditPage{Events: events}
	if len(events) == f.N {
		page.Next = strconv.FormatInt(events[len(events)-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// auditExport streams every stored event, oldest first, one JSON object
// per line, from one snapshot of the trail. A failure mid-stream aborts
// the connection, so a client never mistakes a cut export for a whole one.
func (h *handler) auditExport(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := h.mayAudit(r, p, auditRead); err != nil {
		return err
	}
	started := false
	var n int64
	err := h.opts.AuditLog.ScanAudit(r.Context(), func(c audit.Chain, events iter.Seq2[audit.Event, error]) error {
		enc := json.NewEncoder(w)
		for e, err := range events {
			if audit.IndexOnly(err) {
				continue // every event was read; verification reports the mismatch
			}
			if err != nil {
				return err
			}
			if !started {
				w.Header().Set("Content-Type", "application/x-ndjson")
				w.WriteHeader(http.StatusOK)
				started = true
			}
			if err := enc.Encode(e); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		if !started {
			return err
		}
		reqLogger(r, h).Error("audit export failed mid-stream; aborting the response", "events_sent", n, "err", err)
		panic(http.ErrAbortHandler)
	}
	if !started {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
	}
	h.audit(r, p, audit.Event{Action: auditExport, Resource: "audit", Details: map[string]string{"events": strconv.FormatInt(n, 10)}})
	return nil
}

// auditVerify answers the verification report: 200 whether or not the
// chain is intact (the report's "ok" says).
func (h *handler) auditVerify(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := h.mayAudit(r, p, auditRead); err != nil {
		return err
	}
	rep, err := audit.VerifyStore(r.Context(), h.opts.AuditLog)
	if err != nil {
		return err
	}
	if !rep.OK {
		reqLogger(r, h).Warn("audit trail verification failed", "event", rep.Broken.ID, "reason", rep.Broken.Reason)
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (h *handler) auditPurge(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := h.mayAudit(r, p, audit.PurgeAction); err != nil {
		return err
	}
	var req PurgeAuditRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.OlderThan == "" {
		return apperr.Errorf(apperr.EINVALID, `olderThan is required, e.g. {"olderThan":"90d"}`)
	}
	age, err := parseAge(req.OlderThan)
	if err != nil {
		return apperr.Errorf(apperr.EINVALID, "olderThan: %s", apperr.Message(err))
	}
	now := h.opts.Clock()
	before := now.Add(-age).UTC()
	by := audit.Event{Time: now, ActorKind: string(p.Kind), Actor: p.Name, ClientIP: h.opts.Auth.ClientIP(r), UserAgent: r.UserAgent()}
	n, err := h.opts.AuditLog.PurgeAudit(r.Context(), before, &by)
	if err != nil {
		return err
	}
	reqLogger(r, h).Info("audit events purged", "deleted", n, "before", before, "by", p.Name)
	writeJSON(w, http.StatusOK, PurgeAuditResult{Deleted: n, Before: before, Event: by})
	return nil
}
