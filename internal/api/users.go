package api

import (
	"net/http"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/store"
)

// Audit actions of user changes.
const (
	auditUserCreate   = "user.create"
	auditUserUpdate   = "user.update"
	auditUserDisable  = "user.disable"
	auditUserEnable   = "user.enable"
	auditUserDelete   = "user.delete"
	auditUserPassword = "user.password.change"
)

// Password length bounds: long enough to resist guessing, short enough
// that hashing one is cheap.
const (
	minPasswordLen = 8
	maxPasswordLen = 256
)

func (h *handler) userRoutes(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/users", h.wrap(h.listUsers))
	mux.Handle("POST /api/v1/users", h.wrap(h.createUser))
	mux.Handle("GET /api/v1/users/me", h.wrap(h.me))
	mux.Handle("GET /api/v1/users/{user}", h.wrap(h.getUser))
	mux.Handle("PATCH /api/v1/users/{user}", h.wrap(h.updateUser))
	mux.Handle("DELETE /api/v1/users/{user}", h.wrap(h.deleteUser))
	mux.Handle("PUT /api/v1/users/{user}/password", h.wrap(h.changePassword))
	mux.Handle("DELETE /api/v1/users/me/sessions", h.wrap(h.endSessions))
	mux.Handle("DELETE /api/v1/users/{user}/sessions", h.wrap(h.endSessions))
}

// Reasons of the user.sessions.revoke events that follow other changes.
const (
	reasonPasswordChanged = "password changed"
	reasonDisabled        = "account disabled"
	reasonEnabled         = "account enabled"
)

// endSessions ends every login session and refresh token of a user issued
// before ("log out everywhere"): system administrators for anyone, users
// for themselves (/users/me/sessions or their own name). Passwords, CLI
// secrets and robot secrets are not changed.
func (h *handler) endSessions(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	name := r.PathValue("user")
	if name == "" {
		if err := requireUser(p); err != nil {
			return err
		}
		if p.Kind != auth.KindUser {
			return apperr.Errorf(apperr.EINVALID, "login sessions are users'; a %s has none (rotate its secret instead)", p.Kind)
		}
		name = p.Name
	}
	u, err := h.targetUserNamed(r, p, name, auth.ActionSessionsRevoke)
	if err != nil {
		return err
	}
	if err := h.opts.Auth.EndUserSessions(r.Context(), r, p, u.Name, ""); err != nil {
		return err
	}
	reqLogger(r, h).Info("sessions ended", "user", u.Name, "by", p.Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// User is the API representation of a user. It never carries a password
// or its hash.
type User struct {
	Name      string    `json:"name"`
	Source    string    `json:"source"`
	Admin     bool      `json:"admin"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"createdAt"`
	// Groups are an LDAP or OIDC user's directory groups as of their last
	// login (in the answers about one user).
	Groups []string `json:"groups,omitempty"`
}

func toUser(u store.User) User {
	return User{Name: u.Name, Source: u.Source, Admin: u.Admin, Disabled: u.Disabled, CreatedAt: u.CreatedAt}
}

// userName is a local user name: lowercase, so that "Alice" and "alice"
// can never be two accounts.
var userName = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9._@-]{0,126}[a-z0-9])?$`)

// ValidateUserName returns an EINVALID error explaining the naming rule
// when name is not a valid user name.
func ValidateUserName(name string) error {
	if !userName.MatchString(name) {
		return apperr.Errorf(apperr.EINVALID,
			"invalid user name %q: use 1-128 lowercase letters, digits, '.', '_', '@' or '-', starting and ending with a letter or digit", name)
	}
	return nil
}

// validatePassword returns an EINVALID error when password is unfit for
// user name.
func validatePassword(name, password string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case n < minPasswordLen:
		return apperr.Errorf(apperr.EINVALID, "the password must have at least %d characters", minPasswordLen)
	case n > maxPasswordLen:
		return apperr.Errorf(apperr.EINVALID, "the password must have at most %d characters", maxPasswordLen)
	case password == name:
		return apperr.Errorf(apperr.EINVALID, "the password must not be the user name")
	}
	return nil
}

func (h *handler) listUsers(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := h.requireAdmin(r, p, "", ""); err != nil {
		return err
	}
	pg, err := page(r)
	if err != nil {
		return err
	}
	us, err := h.opts.Store.Users(r.Context(), pg)
	if err != nil {
		return err
	}
	out := make([]User, 0, len(us))
	for _, u := range us {
		out = append(out, toUser(u))
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
	return nil
}

// CreateUserRequest is the body of POST /api/v1/users.
type CreateUserRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
	Admin    bool   `json:"admin"`
}

func (h *handler) createUser(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := h.requireAdmin(r, p, auditUserCreate, ""); err != nil {
		return err
	}
	var req CreateUserRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := ValidateUserName(req.Name); err != nil {
		return err
	}
	if err := validatePassword(req.Name, req.Password); err != nil {
		return err
	}
	hash, err := h.opts.Auth.HashPassword(req.Password)
	if err != nil {
		return err
	}
	u := &store.User{Name: req.Name, Source: store.SourceLocal, PasswordHash: hash, Admin: req.Admin}
	if err := h.opts.Store.CreateUser(r.Context(), u); err != nil {
		return err
	}
	reqLogger(r, h).Info("user created", "user", u.Name, "admin", u.Admin, "by", p.Name)
	h.audit(r, p, audit.Event{Action: auditUserCreate, Resource: "user:" + u.Name,
		Details: map[string]string{"admin": strconv.FormatBool(u.Admin)}})
	w.Header().Set("Location", "/api/v1/users/"+u.Name)
	writeJSON(w, http.StatusCreated, toUser(*u))
	return nil
}

// Me is the answer of GET /api/v1/users/me: who the caller is.
type Me struct {
	Kind  string `json:"kind"` // "user" or "robot"
	Name  string `json:"name"`
	Admin bool   `json:"admin"`
	// User is the caller's account when the caller is a user.
	User *User `json:"user,omitempty"`
}

func (h *handler) me(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := requireUser(p); err != nil {
		return err
	}
	out := Me{Kind: string(p.Kind), Name: p.Name, Admin: p.Admin}
	if p.Kind == auth.KindUser {
		u, err := h.opts.Store.User(r.Context(), p.Name)
		if err != nil {
			return err
		}
		au, err := h.withGroups(r, *u)
		if err != nil {
			return err
		}
		out.User = &au
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// targetUser returns the user named in the path if p is an administrator
// or that user; otherwise EDENIED (ENOTFOUND for a missing user, to
// administrators only).
func (h *handler) targetUser(r *http.Request, p auth.Principal, auditAction string) (*store.User, error) {
	return h.targetUserNamed(r, p, r.PathValue("user"), auditAction)
}

// targetUserNamed is targetUser for user name.
func (h *handler) targetUserNamed(r *http.Request, p auth.Principal, name, auditAction string) (*store.User, error) {
	if err := requireUser(p); err != nil {
		return nil, err
	}
	self := p.Kind == auth.KindUser && p.Name == name
	if !self {
		if err := h.requireAdmin(r, p, auditAction, "user:"+name); err != nil {
			return nil, err
		}
	}
	return h.opts.Store.User(r.Context(), name)
}

func (h *handler) getUser(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	u, err := h.targetUser(r, p, "")
	if err != nil {
		return err
	}
	out, err := h.withGroups(r, *u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// UpdateUserRequest is the body of PATCH /api/v1/users/{name}; absent
// fields are left unchanged.
type UpdateUserRequest struct {
	Admin    *bool `json:"admin"`
	Disabled *bool `json:"disabled"`
}

func (h *handler) updateUser(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	name := r.PathValue("user")
	if err := h.requireAdmin(r, p, auditUserUpdate, "user:"+name); err != nil {
		return err
	}
	var req UpdateUserRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if p.Kind == auth.KindUser && p.Name == name && (req.Admin != nil && !*req.Admin || req.Disabled != nil && *req.Disabled) {
		return apperr.Errorf(apperr.EINVALID, "you cannot remove your own administrator rights or disable yourself; ask another administrator")
	}
	u, err := h.opts.Store.User(r.Context(), name)
	if err != nil {
		return err
	}
	var events []audit.Event
	resource := "user:" + u.Name
	if req.Admin != nil && *req.Admin != u.Admin {
		u.Admin = *req.Admin
		events = append(events, audit.Event{Action: auditUserUpdate, Resource: resource,
			Details: map[string]string{"admin": strconv.FormatBool(u.Admin)}})
	}
	disabledChanged := req.Disabled != nil && *req.Disabled != u.Disabled
	if disabledChanged {
		u.Disabled = *req.Disabled
		action := auditUserEnable
		if u.Disabled {
			action = auditUserDisable
		}
		events = append(events, audit.Event{Action: action, Resource: resource})
	}
	if len(events) > 0 {
		if err := h.opts.Store.UpdateUser(r.Context(), u); err != nil {
			return err
		}
		h.opts.Auth.ForgetPermissions()
		reqLogger(r, h).Info("user updated", "user", u.Name, "admin", u.Admin, "disabled", u.Disabled, "by", p.Name)
		for _, e := range events {
			h.audit(r, p, e)
		}
		if disabledChanged {
			// Disabling refuses the user's sessions already; ending them
			// too keeps enabling the account from bringing them back.
			reason := reasonEnabled
			if u.Disabled {
				reason = reasonDisabled
			}
			if err := h.opts.Auth.EndUserSessions(r.Context(), r, p, u.Name, reason); err != nil {
				return err
			}
		}
	}
	writeJSON(w, http.StatusOK, toUser(*u))
	return nil
}

func (h *handler) deleteUser(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	name := r.PathValue("user")
	if err := h.requireAdmin(r, p, auditUserDelete, "user:"+name); err != nil {
		return err
	}
	if p.Kind == auth.KindUser && p.Name == name {
		return apperr.Errorf(apperr.EINVALID, "you cannot delete yourself; ask another administrator")
	}
	if err := h.opts.Store.DeleteUser(r.Context(), name); err != nil {
		return err
	}
	h.opts.Auth.ForgetPermissions()
	reqLogger(r, h).Info("user deleted", "user", name, "by", p.Name)
	h.audit(r, p, audit.Event{Action: auditUserDelete, Resource: "user:" + name})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ChangePasswordRequest is the body of PUT /api/v1/users/{name}/password.
// OldPassword is required when users change their own password.
type ChangePasswordRequest struct {
	OldPassword string `json:"oldPassword,omitempty"`
	NewPassword string `json:"newPassword"`
}

func (h *handler) changePassword(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	u, err := h.targetUser(r, p, auditUserPassword)
	if err != nil {
		return err
	}
	var req ChangePasswordRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	self := p.Kind == auth.KindUser && p.Name == u.Name
	resource := "user:" + u.Name
	if u.Source != store.SourceLocal {
		return apperr.Errorf(apperr.EINVALID, "user %q logs in through %s; change the password there", u.Name, u.Source)
	}
	if self {
		if req.OldPassword == "" {
			return apperr.Errorf(apperr.EINVALID, "oldPassword is required to change your own password")
		}
		if err := h.opts.Auth.CheckPassword(r, u.Name, req.OldPassword); err != nil {
			if apperr.Is(err, apperr.EUNAUTHORIZED) {
				h.audit(r, p, audit.Event{Action: auditUserPassword, Resource: resource, Outcome: audit.Failure,
					Reason: "wrong old password"})
				return apperr.Errorf(apperr.EDENIED, "the old password is wrong")
			}
			return err
		}
	}
	if err := validatePassword(u.Name, req.NewPassword); err != nil {
		return err
	}
	hash, err := h.opts.Auth.HashPassword(req.NewPassword)
	if err != nil {
		return err
	}
	u.PasswordHash = hash
	if err := h.opts.Store.UpdateUser(r.Context(), u); err != nil {
		return err
	}
	reqLogger(r, h).Info("password changed", "user", u.Name, "by", p.Name)
	h.audit(r, p, audit.Event{Action: auditUserPassword, Resource: resource})
	if err := h.opts.Auth.EndUserSessions(r.Context(), r, p, u.Name, reasonPasswordChanged); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
