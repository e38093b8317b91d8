package auth

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/rbac"
	"github.com/customs-dev/customs/internal/store"
)

// Authorizer decides what an identity may do in a project. It is the one
// place permissions are decided (from the rbac table); the Service maps
// registry scopes and API checks onto it.
type Authorizer interface {
	// ProjectPermissions returns the actions identity p may perform in the
	// named project (a project that does not exist yields what p's roles
	// allow in no project: everything for system administrators, nothing
	// otherwise). p is never a token principal (the service checks tokens
	// itself). An error means the decision could not be made (for example
	// the store is unavailable).
	ProjectPermissions(ctx context.Context, p Principal, project string) (rbac.Set, error)
}

// ProjectGetter looks projects up by name.
type ProjectGetter interface {
	// Project returns the named project, or ENOTFOUND.
	Project(ctx context.Context, name string) (*store.Project, error)
}

// MemberRoles looks up a user's project roles (see store.MemberStore).
type MemberRoles interface {
	// MemberRoles returns the role names user holds, directly or through
	// one of groups, per project.
	MemberRoles(ctx context.Context, user string, groups []string) (map[string][]string, error)
}

// RobotGetter looks robot accounts up by name (see store.RobotStore).
type RobotGetter interface {
	// Robot returns the named robot, or ENOTFOUND.
	Robot(ctx context.Context, name string) (*store.Robot, error)
}

// GroupResolver returns the directory groups a user belongs to, for
// memberships given to groups (LDAP, OIDC).
type GroupResolver func(ctx context.Context, user string) ([]string, error)

// RoleAuthorizer is customs' permission model, read from the rbac table:
//
//   - system administrators may do everything everywhere;
//   - anyone, anonymous included, may perform rbac.Public() in a public project;
//   - a user may perform what their roles in the project allow (memberships
//     of the user and of their groups add up);
//   - a robot may perform the actions its permissions list for the project
//     (or for "*"), while it is neither disabled nor expired; a project robot
//     never gets anything outside its own project.
type RoleAuthorizer struct {
	Projects ProjectGetter
	// Members is required for users to get project roles; nil means none.
	Members MemberRoles
	// Robots is required for robots to get permissions; nil means none.
	Robots RobotGetter
	// Groups resolves a user's directory groups; nil means none.
	Groups GroupResolver
	// Clock tells robot expiry; default time.Now.
	Clock func() time.Time
}

// ProjectPermissions implements Authorizer.
func (z RoleAuthorizer) ProjectPermissions(ctx context.Context, p Principal, project string) (rbac.Set, error) {
	if p.Token {
		return 0, apperr.Errorf(apperr.EINTERNAL, "authorizer called with a token principal")
	}
	if p.Admin && p.Kind != KindAnonymous {
		return rbac.All, nil
	}
	proj, err := z.Projects.Project(ctx, project)
	if apperr.Is(err, apperr.ENOTFOUND) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var set rbac.Set
	if proj.Public {
		set = rbac.Public()
	}
	switch p.Kind {
	case KindUser:
		roles, err := z.userRoles(ctx, p.Name)
		if err != nil {
			return 0, err
		}
		for _, name := range roles[project] {
			if r, err := rbac.ParseRole(name); err == nil {
				set |= rbac.Permissions(r)
			}
		}
	case KindRobot:
		perms, err := z.robotPermissions(ctx, p.Name, project)
		if err != nil {
			return 0, err
		}
		set |= perms
	}
	return set, nil
}

func (z RoleAuthorizer) userRoles(ctx context.Context, user string) (map[string][]string, error) {
	if z.Members == nil {
		return nil, nil
	}
	var groups []string
	if z.Groups != nil {
		g, err := z.Groups(ctx, user)
		if err != nil {
			return nil, err
		}
		groups = g
	}
	return z.Members.MemberRoles(ctx, user, groups)
}

// robotPermissions returns what robot name may do in project now.
func (z RoleAuthorizer) robotPermissions(ctx context.Context, name, project string) (rbac.Set, error) {
	if z.Robots == nil {
		return 0, nil
	}
	r, err := z.Robots.Robot(ctx, name)
	if apperr.Is(err, apperr.ENOTFOUND) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	now := time.Now
	if z.Clock != nil {
		now = z.Clock
	}
	if robotUnusable(r, now()) != "" {
		return 0, nil
	}
	return RobotSet(r, project), nil
}

// RobotSet returns the actions robot r's permissions grant in project,
// ignoring whether r is disabled or expired. Unknown action names grant
// nothing; a project robot's permissions count only in its own project.
func RobotSet(r *store.Robot, project string) rbac.Set {
	if r.Project != "" && r.Project != project {
		return 0
	}
	var set rbac.Set
	for _, perm := range r.Permissions {
		if perm.Project != project && perm.Project != "*" {
			continue
		}
		for _, name := range perm.Actions {
			if a, err := rbac.ParseAction(name); err == nil {
				set |= rbac.SetOf(a)
			}
		}
	}
	return set
}

// robotUnusable returns why r may not be used at now ("disabled",
// "expired"), or "".
func robotUnusable(r *store.Robot, now time.Time) string {
	switch {
	case r.Disabled:
		return "robot disabled"
	case !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt):
		return "robot expired"
	}
	return ""
}

// Registry scope actions and the rbac actions they stand for. "*" stands
// for all three.
var registryActions = [...]struct {
	scope  string
	action rbac.Action
}{
	{ActionPull, rbac.ActionPull},
	{ActionPush, rbac.ActionPush},
	{ActionDelete, rbac.ActionDeleteArtifact},
}

// TypeAPI is the resource type of the scope "api:v1:*", which a token must
// carry to be accepted by the JSON API (see AuthenticateAPI).
const TypeAPI = "api"

// APIScope is the scope that makes an access token valid for the JSON API.
var APIScope = Access{Type: TypeAPI, Name: "v1", Actions: []string{ActionAll}}

// permitted returns the registry actions identity p may perform on the
// resource a names: the subset of a.Actions, plus, when a.Actions holds
// "*", each specific action p may perform (so that a request for "*" can be
// granted less). The catalog is for system administrators only; the API
// scope for any authenticated identity; a repository name that is not
// <project>/<path> gets nothing.
func permitted(ctx context.Context, z Authorizer, p Principal, a Access) ([]string, error) {
	switch a.Type {
	case TypeRegistry:
		if p.Admin && p.Kind != KindAnonymous {
			return slices.Clone(a.Actions), nil
		}
		return nil, nil
	case TypeAPI:
		if a.Name == APIScope.Name && p.Kind != KindAnonymous && slices.Equal(a.Actions, APIScope.Actions) {
			return slices.Clone(a.Actions), nil
		}
		return nil, nil
	case TypeRepository:
	default:
		return nil, nil
	}
	project, path, ok := strings.Cut(a.Name, "/")
	if !ok || path == "" {
		// Not <project>/<path>: no repository of customs has this name,
		// so nothing is granted on it (not the project's permissions).
		return nil, nil
	}
	set, err := z.ProjectPermissions(ctx, p, project)
	if err != nil {
		return nil, err
	}
	return scopeActions(set, a.Actions), nil
}

// scopeActions returns the registry actions of asked that set allows, plus
// every specific registry action set allows when asked holds "*".
func scopeActions(set rbac.Set, asked []string) []string {
	var out []string
	star := false
	for _, act := range asked {
		if act == ActionAll {
			star = true
			continue
		}
		for _, ra := range registryActions {
			if ra.scope == act && set.Has(ra.action) {
				out = append(out, act)
			}
		}
	}
	if star {
		all := true
		for _, ra := range registryActions {
			if !set.Has(ra.action) {
				all = false
			} else if !slices.Contains(out, ra.scope) {
				out = append(out, ra.scope)
			}
		}
		if all {
			out = append(out, ActionAll)
		}
	}
	return out
}

// LoginLimiter throttles password guessing. Every password check (Basic
// auth on a registry or API request, a token request) asks Allow first and
// reports the outcome to Done. The default, NoLoginLimit, allows everything;
// MemoryLoginLimiter limits per user and client address.
type LoginLimiter interface {
	// Allow returns nil if an attempt to log in as user from remote (an IP
	// address) may proceed now, or an *apperr.Error that is returned to the
	// client instead of checking the password.
	Allow(ctx context.Context, user, remote string) error
	// Done records the outcome of an attempt that Allow let through.
	Done(ctx context.Context, user, remote string, ok bool)
}

// NoLoginLimit is a LoginLimiter that never limits.
type NoLoginLimit struct{}

// Allow always returns nil.
func (NoLoginLimit) Allow(context.Context, string, string) error { return nil }

// Done does nothing.
func (NoLoginLimit) Done(context.Context, string, string, bool) {}
