package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/config"
	"github.com/customs-dev/customs/internal/rbac"
	"github.com/customs-dev/customs/internal/store"
)

// Audit actions of robot account changes.
const (
	auditRobotCreate  = "robot.create"
	auditRobotUpdate  = "robot.update"
	auditRobotRotate  = "robot.rotate"
	auditRobotDisable = "robot.disable"
	auditRobotEnable  = "robot.enable"
	auditRobotDelete  = "robot.delete"
)

func (h *handler) robotRoutes(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/robots", h.wrap(h.listRobots))
	mux.Handle("POST /api/v1/robots", h.wrap(h.createSystemRobot))
	mux.Handle("GET /api/v1/robots/{robot}", h.wrap(h.getRobot))
	mux.Handle("PATCH /api/v1/robots/{robot}", h.wrap(h.updateRobot))
	mux.Handle("DELETE /api/v1/robots/{robot}", h.wrap(h.deleteRobot))
	mux.Handle("POST /api/v1/robots/{robot}/rotate", h.wrap(h.rotateRobot))
	mux.Handle("GET /api/v1/projects/{name}/robots", h.wrap(h.listProjectRobots))
	mux.Handle("POST /api/v1/projects/{name}/robots", h.wrap(h.createProjectRobot))
}

// RobotPermission lets a robot perform Actions in Project ("*": every
// project).
type RobotPermission struct {
	Project string        `json:"project"`
	Actions []rbac.Action `json:"actions"`
}

// Robot is the API representation of a robot account. Secret is set only in
// the answers that create or rotate it: it is shown once, never stored.
type Robot struct {
	Name        string            `json:"name"`
	Project     string            `json:"project,omitempty"`
	Description string            `json:"description,omitempty"`
	Permissions []RobotPermission `json:"permissions"`
	ExpiresAt   *time.Time        `json:"expiresAt,omitempty"`
	Disabled    bool              `json:"disabled"`
	CreatedBy   string            `json:"createdBy,omitempty"`
	CreatedAt   time.Time         `json:"createdAt"`
	Secret      string            `json:"secret,omitempty"`
}

func toRobot(r store.Robot) Robot {
	out := Robot{Name: r.Name, Project: r.Project, Description: r.Description, Disabled: r.Disabled,
		CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, Permissions: []RobotPermission{}}
	if !r.ExpiresAt.IsZero() {
		t := r.ExpiresAt
		out.ExpiresAt = &t
	}
	for _, p := range r.Permissions {
		rp := RobotPermission{Project: p.Project, Actions: []rbac.Action{}}
		for _, a := range p.Actions {
			if act, err := rbac.ParseAction(a); err == nil {
				rp.Actions = append(rp.Actions, act)
			}
		}
		out.Permissions = append(out.Permissions, rp)
	}
	return out
}

// Expiry is how long a robot lives: an absolute time, or a duration from
// now ("720h", "30d"). Both empty means it never expires.
type Expiry struct {
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	ExpiresIn string     `json:"expiresIn,omitempty"`
}

// resolve returns the expiry time (zero: never).
func (e Expiry) resolve(now time.Time) (time.Time, error) {
	switch {
	case e.ExpiresAt != nil && e.ExpiresIn != "":
		return time.Time{}, apperr.Errorf(apperr.EINVALID, "give expiresAt or expiresIn, not both")
	case e.ExpiresAt != nil:
		if !e.ExpiresAt.After(now) {
			return time.Time{}, apperr.Errorf(apperr.EINVALID, "expiresAt %s is in the past", e.ExpiresAt.Format(time.RFC3339))
		}
		return e.ExpiresAt.UTC(), nil
	case e.ExpiresIn != "":
		d, err := ParseLifetime(e.ExpiresIn)
		if err != nil {
			return time.Time{}, err
		}
		return now.Add(d).UTC(), nil
	}
	return time.Time{}, nil
}

// ParseLifetime parses a robot lifetime: a Go duration ("720h") or days
// ("30d", "1.5d"). It must be positive and at most 3650 days.
func ParseLifetime(s string) (time.Duration, error) {
	d, err := config.ParseDuration(s)
	if err != nil || d <= 0 || d.Std() > maxLifetime {
		return 0, apperr.Errorf(apperr.EINVALID, "invalid lifetime %q: use a positive duration such as 720h or 30d, at most 3650d", s)
	}
	return d.Std(), nil
}

// maxLifetime bounds a robot's lifetime.
const maxLifetime = 3650 * 24 * time.Hour

// CreateRobotRequest is the body of POST /api/v1/robots (a system robot,
// Permissions required) and POST /api/v1/projects/{name}/robots (a project
// robot, Actions required). Push implies pull (pushing needs it), and any
// action implies read-project.
type CreateRobotRequest struct {
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Permissions []RobotPermission `json:"permissions,omitempty"`
	Actions     []rbac.Action     `json:"actions,omitempty"`
	Expiry
}

// UpdateRobotRequest is the body of PATCH /api/v1/robots/{name}; absent
// fields are left unchanged. Permissions replaces a system robot's
// permissions, Actions a project robot's.
type UpdateRobotRequest struct {
	Description *string           `json:"description,omitempty"`
	Disabled    *bool             `json:"disabled,omitempty"`
	Permissions []RobotPermission `json:"permissions,omitempty"`
	Actions     []rbac.Action     `json:"actions,omitempty"`
	// NeverExpires removes the expiry.
	NeverExpires bool `json:"neverExpires,omitempty"`
	Expiry
}

// checkPermissions validates permissions for the store: known projects
// (or "*"), at least one action each; push adds pull, and every permission
// adds read-project.
func (h *handler) checkPermissions(r *http.Request, perms []RobotPermission) ([]store.RobotPermission, error) {
	if len(perms) == 0 {
		return nil, apperr.Errorf(apperr.EINVALID, "a robot needs at least one permission")
	}
	out := make([]store.RobotPermission, 0, len(perms))
	for _, p := range perms {
		if p.Project != "*" {
			if _, err := h.opts.Store.Project(r.Context(), p.Project); err != nil {
				if apperr.Is(err, apperr.ENOTFOUND) {
					return nil, apperr.Errorf(apperr.EINVALID, "permission for project %q: no such project", p.Project)
				}
				return nil, err
			}
		}
		set := rbac.SetOf(p.Actions...)
		if set == 0 {
			return nil, apperr.Errorf(apperr.EINVALID, "permission for project %q lists no action", p.Project)
		}
		if set.Has(rbac.ActionPush) {
			set |= rbac.SetOf(rbac.ActionPull)
		}
		set |= rbac.SetOf(rbac.ActionReadProject) // a robot may see the projects it acts in
		out = append(out, store.RobotPermission{Project: p.Project, Actions: set.Strings()})
	}
	return out, nil
}

// newSecret generates a secret for robot name and returns it with its hash.
func (h *handler) newSecret(name string) (secret, hash string, err error) {
	if secret, err = auth.NewRobotSecret(); err != nil {
		return "", "", err
	}
	hash, err = h.opts.Auth.RobotSecretHash(name, secret)
	return secret, hash, err
}

func (h *handler) createRobot(w http.ResponseWriter, r *http.Request, p auth.Principal, project string, req CreateRobotRequest, perms []store.RobotPermission) error {
	name, err := auth.RobotName(project, req.Name)
	if err != nil {
		return err
	}
	expires, err := req.resolve(h.opts.Clock())
	if err != nil {
		return err
	}
	secret, hash, err := h.newSecret(name)
	if err != nil {
		return err
	}
	rb := &store.Robot{Name: name, Project: project, Description: req.Description, SecretHash: hash,
		Permissions: perms, ExpiresAt: expires, CreatedBy: p.Name}
	if err := h.opts.Store.CreateRobot(r.Context(), rb); err != nil {
		return err
	}
	reqLogger(r, h).Info("robot created", "robot", name, "by", p.Name)
	h.audit(r, p, audit.Event{Action: auditRobotCreate, Resource: "robot:" + name, Project: project,
		Details: robotDetails(rb)})
	out := toRobot(*rb)
	out.Secret = secret
	w.Header().Set("Location", "/api/v1/robots/"+name)
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// robotDetails describes a robot's grants for audit events (never its secret).
func robotDetails(rb *store.Robot) map[string]string {
	var parts []string
	for _, p := range rb.Permissions {
		parts = append(parts, p.Project+":"+strings.Join(p.Actions, ","))
	}
	d := map[string]string{"permissions": strings.Join(parts, " ")}
	if !rb.ExpiresAt.IsZero() {
		d["expiresAt"] = rb.ExpiresAt.Format(time.RFC3339)
	}
	return d
}

func (h *handler) createSystemRobot(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := h.requireAdmin(r, p, auditRobotCreate, ""); err != nil {
		return err
	}
	var req CreateRobotRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if len(req.Actions) > 0 {
		return apperr.Errorf(apperr.EINVALID, "a system robot takes permissions (project and actions), not actions")
	}
	perms, err := h.checkPermissions(r, req.Permissions)
	if err != nil {
		return err
	}
	return h.createRobot(w, r, p, "", req, perms)
}

func (h *handler) createProjectRobot(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	pr, err := h.lookup(r, p)
	if err != nil {
		return err
	}
	if err := h.require(r, p, pr, rbac.ActionManageRobots, auditRobotCreate, "project:"+pr.Name); err != nil {
		return err
	}
	var req CreateRobotRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if len(req.Permissions) > 0 {
		return apperr.Errorf(apperr.EINVALID, "a project robot takes actions (in its project), not permissions")
	}
	perms, err := h.checkPermissions(r, []RobotPermission{{Project: pr.Name, Actions: req.Actions}})
	if err != nil {
		return err
	}
	return h.createRobot(w, r, p, pr.Name, req, perms)
}

func (h *handler) listRobots(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := h.requireAdmin(r, p, "", ""); err != nil {
		return err
	}
	return h.writeRobots(w, r, "")
}

func (h *handler) listProjectRobots(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	pr, err := h.lookup(r, p)
	if err != nil {
		return err
	}
	if err := h.require(r, p, pr, rbac.ActionListRobots, "", ""); err != nil {
		return err
	}
	return h.writeRobots(w, r, pr.Name)
}

func (h *handler) writeRobots(w http.ResponseWriter, r *http.Request, project string) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	rs, err := h.opts.Store.Robots(r.Context(), project, pg)
	if err != nil {
		return err
	}
	out := make([]Robot, 0, len(rs))
	for _, rb := range rs {
		out = append(out, toRobot(rb))
	}
	writeJSON(w, http.StatusOK, map[string]any{"robots": out})
	return nil
}

// targetRobot returns the robot named in the path if p may act on it with
// action: a project robot needs action in its project, a system robot a
// system administrator. Robots p may not see are ENOTFOUND.
func (h *handler) targetRobot(r *http.Request, p auth.Principal, action rbac.Action, auditAction string) (*store.Robot, error) {
	if err := requireUser(p); err != nil {
		return nil, err
	}
	name := r.PathValue("robot")
	rb, err := h.opts.Store.Robot(r.Context(), name)
	if apperr.Is(err, apperr.ENOTFOUND) && !p.Admin {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "robot %q not found", name)
	}
	if err != nil {
		return nil, err
	}
	if rb.Project == "" {
		if !p.Admin {
			return nil, apperr.Errorf(apperr.ENOTFOUND, "robot %q not found", name)
		}
		return rb, nil
	}
	may, err := h.opts.Auth.ProjectPermissions(r.Context(), p, rb.Project)
	if err != nil {
		return nil, err
	}
	if !may.Has(rbac.ActionListRobots) && !may.Has(action) {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "robot %q not found", name)
	}
	if err := h.require(r, p, project{Project: &store.Project{Name: rb.Project}, may: may}, action, auditAction, "robot:"+name); err != nil {
		return nil, err
	}
	return rb, nil
}

func (h *handler) getRobot(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	rb, err := h.targetRobot(r, p, rbac.ActionListRobots, "")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toRobot(*rb))
	return nil
}

func (h *handler) updateRobot(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	rb, err := h.targetRobot(r, p, rbac.ActionManageRobots, auditRobotUpdate)
	if err != nil {
		return err
	}
	var req UpdateRobotRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	action := auditRobotUpdate
	if req.Description != nil {
		rb.Description = *req.Description
	}
	if req.Disabled != nil && *req.Disabled != rb.Disabled {
		rb.Disabled = *req.Disabled
		action = auditRobotEnable
		if rb.Disabled {
			action = auditRobotDisable
		}
	}
	switch {
	case rb.Project == "" && len(req.Actions) > 0:
		return apperr.Errorf(apperr.EINVALID, "a system robot takes permissions (project and actions), not actions")
	case rb.Project != "" && len(req.Permissions) > 0:
		return apperr.Errorf(apperr.EINVALID, "a project robot takes actions (in its project), not permissions")
	case len(req.Permissions) > 0:
		if rb.Permissions, err = h.checkPermissions(r, req.Permissions); err != nil {
			return err
		}
	case len(req.Actions) > 0:
		if rb.Permissions, err = h.checkPermissions(r, []RobotPermission{{Project: rb.Project, Actions: req.Actions}}); err != nil {
			return err
		}
	}
	if req.NeverExpires {
		if req.ExpiresAt != nil || req.ExpiresIn != "" {
			return apperr.Errorf(apperr.EINVALID, "neverExpires cannot be combined with expiresAt or expiresIn")
		}
		rb.ExpiresAt = time.Time{}
	} else if req.ExpiresAt != nil || req.ExpiresIn != "" {
		if rb.ExpiresAt, err = req.resolve(h.opts.Clock()); err != nil {
			return err
		}
	}
	if err := h.opts.Store.UpdateRobot(r.Context(), rb); err != nil {
		return err
	}
	h.opts.Auth.ForgetPermissions()
	reqLogger(r, h).Info("robot updated", "robot", rb.Name, "disabled", rb.Disabled, "by", p.Name)
	h.audit(r, p, audit.Event{Action: action, Resource: "robot:" + rb.Name, Project: rb.Project, Details: robotDetails(rb)})
	writeJSON(w, http.StatusOK, toRobot(*rb))
	return nil
}

func (h *handler) rotateRobot(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	rb, err := h.targetRobot(r, p, rbac.ActionManageRobots, auditRobotRotate)
	if err != nil {
		return err
	}
	secret, hash, err := h.newSecret(rb.Name)
	if err != nil {
		return err
	}
	rb.SecretHash = hash
	if err := h.opts.Store.UpdateRobot(r.Context(), rb); err != nil {
		return err
	}
	reqLogger(r, h).Info("robot secret rotated", "robot", rb.Name, "by", p.Name)
	h.audit(r, p, audit.Event{Action: auditRobotRotate, Resource: "robot:" + rb.Name, Project: rb.Project})
	out := toRobot(*rb)
	out.Secret = secret
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) deleteRobot(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	rb, err := h.targetRobot(r, p, rbac.ActionManageRobots, auditRobotDelete)
	if err != nil {
		return err
	}
	if err := h.opts.Store.DeleteRobot(r.Context(), rb.Name); err != nil {
		return err
	}
	h.opts.Auth.ForgetPermissions()
	reqLogger(r, h).Info("robot deleted", "robot", rb.Name, "by", p.Name)
	h.audit(r, p, audit.Event{Action: auditRobotDelete, Resource: "robot:" + rb.Name, Project: rb.Project})
	w.WriteHeader(http.StatusNoContent)
	return nil
}
