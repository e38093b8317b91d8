package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/policy"
	"github.com/customs-dev/customs/internal/store"
)

// Audit actions of system allowlist changes.
const (
	auditSystemAllowlistAdd    = "system_allowlist.add"
	auditSystemAllowlistRemove = "system_allowlist.remove"
)

// The system allowlist (Harbor's system-level CVE allowlist) is read by
// every logged-in user and changed by system administrators only. Each
// change is audited and takes the next global policy revision, so cached
// decisions are made again at once.
func (h *handler) systemAllowlistRoutes(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/system/allowlist", h.wrap(h.listSystemAllowlist))
	mux.Handle("POST /api/v1/system/allowlist", h.wrap(h.addSystemAllowlist))
	mux.Handle("DELETE /api/v1/system/allowlist/{id}", h.wrap(h.removeSystemAllowlist))
}

// SystemAllowlist is the system allowlist in API answers.
type SystemAllowlist struct {
	// Revision is the global policy revision of the change that answered
	// (0 in GET answers).
	Revision int64            `json:"revision,omitempty"`
	Entries  []AllowlistEntry `json:"entries"`
}

func (h *handler) systemAllowlistOf(entries []store.AllowlistEntry, rev int64) SystemAllowlist {
	out := SystemAllowlist{Revision: rev, Entries: []AllowlistEntry{}}
	now := h.opts.Clock()
	for _, e := range entries {
		a := AllowlistEntry{ID: e.ID, Package: e.Package, Repository: e.Repository, Reason: e.Reason, AddedBy: e.AddedBy}
		if !e.Expires.IsZero() {
			a.Expires = e.Expires.UTC().Format(time.RFC3339)
			a.Expired = !now.Before(e.Expires)
		}
		out.Entries = append(out.Entries, a)
	}
	return out
}

func (h *handler) listSystemAllowlist(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if p.Kind == auth.KindAnonymous {
		return apperr.Errorf(apperr.EUNAUTHORIZED, "log in to read the system allowlist")
	}
	list, err := h.opts.Allowlists.SystemAllowlist(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h.systemAllowlistOf(list, 0))
	return nil
}

func (h *handler) addSystemAllowlist(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req AllowlistEntry
	if err := decode(r, &req); err != nil {
		return err
	}
	resource := "system/allowlist/" + req.ID
	if err := h.requireAdmin(r, p, auditSystemAllowlistAdd, resource); err != nil {
		return err
	}
	if req.ID == "" {
		return apperr.Errorf(apperr.EINVALID, "id: an advisory id (CVE-2019-14697, GHSA-...) is required")
	}
	exp, err := parseExpires(req.Expires, h.opts.Clock())
	if err != nil {
		return err
	}
	pe := policy.AllowlistEntry{ID: req.ID, Package: req.Package, Repository: req.Repository, Expires: exp}
	if err := policy.CheckAllowlistEntry(&pe); err != nil {
		return apperr.Errorf(apperr.EINVALID, "%v", err)
	}
	e := &store.AllowlistEntry{ID: req.ID, Package: req.Package, Repository: req.Repository, Reason: req.Reason, AddedBy: p.Name}
	if exp != nil {
		e.Expires = *exp
	}
	rev, err := h.opts.Allowlists.PutSystemAllowlistEntry(r.Context(), e)
	if err != nil {
		return err
	}
	details := map[string]string{"id": e.ID, "revision": strconv.FormatInt(rev, 10), "reason": e.Reason}
	if exp != nil {
		details["expires"] = exp.Format(time.RFC3339)
	}
	if e.Package != "" {
		details["package"] = e.Package
	}
	if e.Repository != "" {
		details["repository"] = e.Repository
	}
	reqLogger(r, h).Info("system allowlist entry added", "id", e.ID, "by", p.Name)
	h.audit(r, p, audit.Event{Action: auditSystemAllowlistAdd, Resource: resource, Details: details})
	list, err := h.opts.Allowlists.SystemAllowlist(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, h.systemAllowlistOf(list, rev))
	return nil
}

func (h *handler) removeSystemAllowlist(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	id := r.PathValue("id")
	resource := "system/allowlist/" + id
	if err := h.requireAdmin(r, p, auditSystemAllowlistRemove, resource); err != nil {
		return err
	}
	n, rev, err := h.opts.Allowlists.DeleteSystemAllowlistEntries(r.Context(), id)
	if err != nil {
		return err
	}
	reqLogger(r, h).Info("system allowlist entry removed", "id", id, "by", p.Name)
	h.audit(r, p, audit.Event{Action: auditSystemAllowlistRemove, Resource: resource,
		Details: map[string]string{"id": id, "revision": strconv.FormatInt(rev, 10), "entries": strconv.Itoa(n)}})
	list, err := h.opts.Allowlists.SystemAllowlist(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h.systemAllowlistOf(list, rev))
	return nil
}
