package api

import (
	"net/http"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/rbac"
	"github.com/customs-dev/customs/internal/store"
)

// Audit actions of membership changes.
const (
	auditMemberAdd    = "project.member.add"
	auditMemberUpdate = "project.member.update"
	auditMemberRemove = "project.member.remove"
)

func (h *handler) memberRoutes(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/projects/{name}/members", h.wrap(h.listMembers))
	mux.Handle("POST /api/v1/projects/{name}/members", h.wrap(h.addMember))
	mux.Handle("PATCH /api/v1/projects/{name}/members/{member}", h.wrap(h.updateMember))
	mux.Handle("DELETE /api/v1/projects/{name}/members/{member}", h.wrap(h.removeMember))
	mux.Handle("GET /api/v1/projects/{name}/permissions", h.wrap(h.projectPermissions))
}

// Permissions is the answer of GET /api/v1/projects/{name}/permissions:
// what the caller may do in the project, from the rbac table (for clients
// that show only what may be done).
type Permissions struct {
	Project string        `json:"project"`
	Actions []rbac.Action `json:"actions"`
}

func (h *handler) projectPermissions(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	pr, err := h.lookup(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, Permissions{Project: pr.Name, Actions: pr.may.Actions()})
	return nil
}

// Member is the API representation of a project member.
type Member struct {
	Kind      string    `json:"kind"` // "user" or "group"
	Name      string    `json:"name"`
	Role      rbac.Role `json:"role"`
	CreatedAt time.Time `json:"createdAt"`
}

// AddMemberRequest is the body of POST /api/v1/projects/{name}/members.
// Kind is "user" (the default) or "group" (a directory group).
type AddMemberRequest struct {
	Kind string    `json:"kind,omitempty"`
	Name string    `json:"name"`
	Role rbac.Role `json:"role"`
}

// UpdateMemberRequest is the body of PATCH
// /api/v1/projects/{name}/members/{member}[?kind=group].
type UpdateMemberRequest struct {
	Role rbac.Role `json:"role"`
}

// memberKind reads a member kind ("" means user).
func memberKind(k string) (string, error) {
	switch k {
	case "", store.MemberUser:
		return store.MemberUser, nil
	case store.MemberGroup:
		return store.MemberGroup, nil
	}
	return "", apperr.Errorf(apperr.EINVALID, "member kind %q is not %q or %q", k, store.MemberUser, store.MemberGroup)
}

func memberResource(project, kind, name string) string {
	return "project:" + project + "/member:" + kind + ":" + name
}

func (h *handler) listMembers(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	pr, err := h.lookup(r, p)
	if err != nil {
		return err
	}
	if err := h.require(r, p, pr, rbac.ActionListMembers, "", ""); err != nil {
		return err
	}
	ms, err := h.opts.Store.Members(r.Context(), pr.Name)
	if err != nil {
		return err
	}
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		role, err := rbac.ParseRole(m.Role)
		if err != nil {
			reqLogger(r, h).Warn("member with an unknown role", "project", pr.Name, "member", m.Name, "role", m.Role)
			continue
		}
		out = append(out, Member{Kind: m.Kind, Name: m.Name, Role: role, CreatedAt: m.CreatedAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": out})
	return nil
}

func (h *handler) addMember(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	pr, err := h.lookup(r, p)
	if err != nil {
		return err
	}
	var req AddMemberRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	kind, err := memberKind(req.Kind)
	if err != nil {
		return err
	}
	resource := memberResource(pr.Name, kind, req.Name)
	if err := h.require(r, p, pr, rbac.ActionManageMembers, auditMemberAdd, resource); err != nil {
		return err
	}
	if req.Name == "" || !req.Role.Valid() {
		return apperr.Errorf(apperr.EINVALID, "name and role are required")
	}
	m := &store.Member{Project: pr.Name, Kind: kind, Name: req.Name, Role: req.Role.String()}
	if err := h.opts.Store.AddMember(r.Context(), m); err != nil {
		return err
	}
	h.opts.Auth.ForgetPermissions()
	reqLogger(r, h).Info("member added", "project", pr.Name, "kind", kind, "member", m.Name, "role", m.Role, "by", p.Name)
	h.audit(r, p, audit.Event{Action: auditMemberAdd, Resource: resource, Project: pr.Name,
		Details: map[string]string{"role": m.Role}})
	writeJSON(w, http.StatusCreated, Member{Kind: m.Kind, Name: m.Name, Role: req.Role, CreatedAt: m.CreatedAt})
	return nil
}

func (h *handler) updateMember(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	pr, err := h.lookup(r, p)
	if err != nil {
		return err
	}
	kind, err := memberKind(r.URL.Query().Get("kind"))
	if err != nil {
		return err
	}
	name := r.PathValue("member")
	resource := memberResource(pr.Name, kind, name)
	if err := h.require(r, p, pr, rbac.ActionManageMembers, auditMemberUpdate, resource); err != nil {
		return err
	}
	var req UpdateMemberRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if !req.Role.Valid() {
		return apperr.Errorf(apperr.EINVALID, "role is required")
	}
	m := &store.Member{Project: pr.Name, Kind: kind, Name: name, Role: req.Role.String()}
	if err := h.opts.Store.UpdateMember(r.Context(), m); err != nil {
		return err
	}
	h.opts.Auth.ForgetPermissions()
	reqLogger(r, h).Info("member role changed", "project", pr.Name, "kind", kind, "member", name, "role", m.Role, "by", p.Name)
	h.audit(r, p, audit.Event{Action: auditMemberUpdate, Resource: resource, Project: pr.Name,
		Details: map[string]string{"role": m.Role}})
	writeJSON(w, http.StatusOK, Member{Kind: kind, Name: name, Role: req.Role})
	return nil
}

func (h *handler) removeMember(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	pr, err := h.lookup(r, p)
	if err != nil {
		return err
	}
	kind, err := memberKind(r.URL.Query().Get("kind"))
	if err != nil {
		return err
	}
	name := r.PathValue("member")
	resource := memberResource(pr.Name, kind, name)
	if err := h.require(r, p, pr, rbac.ActionManageMembers, auditMemberRemove, resource); err != nil {
		return err
	}
	if err := h.opts.Store.DeleteMember(r.Context(), pr.Name, kind, name); err != nil {
		return err
	}
	h.opts.Auth.ForgetPermissions()
	reqLogger(r, h).Info("member removed", "project", pr.Name, "kind", kind, "member", name, "by", p.Name)
	h.audit(r, p, audit.Event{Action: auditMemberRemove, Resource: resource, Project: pr.Name})
	w.WriteHeader(http.StatusNoContent)
	return nil
}
