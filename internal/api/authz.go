package api

import (
	"net/http"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/rbac"
	"github.com/customs-dev/customs/internal/store"
)

// project is a project the caller may see, with what the caller may do in it.
type project struct {
	*store.Project
	may rbac.Set
}

// lookup returns the project named by the request's {name} if p may see it
// (rbac.ActionReadProject); ENOTFOUND otherwise, so private projects cannot
// be probed (EUNAUTHORIZED for anonymous callers, who should log in).
func (h *handler) lookup(r *http.Request, p auth.Principal) (project, error) {
	name := r.PathValue("name")
	pr, err := h.opts.Store.Project(r.Context(), name)
	if err != nil && !apperr.Is(err, apperr.ENOTFOUND) {
		return project{}, err
	}
	var may rbac.Set
	if err == nil {
		if may, err = h.opts.Auth.ProjectPermissions(r.Context(), p, name); err != nil {
			return project{}, err
		}
	}
	if pr == nil || !may.Has(rbac.ActionReadProject) {
		if p.Kind == auth.KindAnonymous {
			return project{}, apperr.Errorf(apperr.EUNAUTHORIZED, "authentication required")
		}
		return project{}, apperr.Errorf(apperr.ENOTFOUND, "project %q not found", name)
	}
	return project{Project: pr, may: may}, nil
}

// require returns nil if the caller may perform a in pr, and otherwise an
// EDENIED error naming the role it takes (EUNAUTHORIZED for anonymous
// callers). A refusal is audited as auditAction when that is not "".
func (h *handler) require(r *http.Request, p auth.Principal, pr project, a rbac.Action, auditAction, resource string) error {
	if pr.may.Has(a) {
		return nil
	}
	if p.Kind == auth.KindAnonymous {
		return apperr.Errorf(apperr.EUNAUTHORIZED, "authentication required")
	}
	err := apperr.Errorf(apperr.EDENIED, "%s in project %q requires %s", a, pr.Name, roleNeeded(a))
	if auditAction != "" {
		h.audit(r, p, audit.Event{Action: auditAction, Resource: resource, Project: pr.Name,
			Outcome: audit.Denied, Reason: apperr.Message(err)})
	}
	return err
}

// roleNeeded describes the least privileged role allowed to perform a.
func roleNeeded(a rbac.Action) string {
	var least rbac.Role
	for _, r := range rbac.Roles() {
		if rbac.Allowed(r, a) {
			least = r
		}
	}
	switch {
	case !least.Valid():
		return "a system administrator"
	case least == rbac.RoleProjectAdmin:
		return "the project-admin role"
	}
	return "the " + least.String() + " role or higher"
}

// requireAdmin refuses callers who are not system administrators, auditing
// the refusal as auditAction when that is not "".
func (h *handler) requireAdmin(r *http.Request, p auth.Principal, auditAction, resource string) error {
	if p.Kind == auth.KindAnonymous {
		return apperr.Errorf(apperr.EUNAUTHORIZED, "authentication required")
	}
	if !p.Admin {
		err := apperr.Errorf(apperr.EDENIED, "only system administrators may do this")
		if auditAction != "" {
			h.audit(r, p, audit.Event{Action: auditAction, Resource: resource, Outcome: audit.Denied, Reason: apperr.Message(err)})
		}
		return err
	}
	return nil
}

// audit records e as done by p through r, filling in the time, the actor
// and where the request came from.
func (h *handler) audit(r *http.Request, p auth.Principal, e audit.Event) {
	e.Time = h.opts.Clock()
	e.ActorKind = string(p.Kind)
	e.Actor = p.Name
	e.ClientIP = h.opts.Auth.ClientIP(r)
	e.UserAgent = r.UserAgent()
	if e.Outcome == "" {
		e.Outcome = audit.Success
	}
	h.opts.Recorder.Record(r.Context(), e)
}
