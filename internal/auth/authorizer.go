package auth

import (
	"context"
	"slices"
	"strings"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// Authorizer decides what an identity may do. It is the one place
// permissions are decided, so that roles, project membership and robot
// accounts can replace the rules of ProjectAuthorizer without touching the
// token service or the registry.
type Authorizer interface {
	// Permitted returns the subset of a.Actions that p may perform on the
	// resource a names. p is an identity, never a token principal (the
	// service checks tokens itself). The action "*" is returned only if p may
	// do everything to the resource. An error means the decision could not
	// be made (for example the store is unavailable).
	Permitted(ctx context.Context, p Principal, a Access) ([]string, error)
}

// ProjectGetter looks projects up by name.
type ProjectGetter interface {
	// Project returns the named project, or ENOTFOUND.
	Project(ctx context.Context, name string) (*store.Project, error)
}

// ProjectAuthorizer is the permission model until roles exist: system
// administrators may do everything to every repository and read the catalog;
// anyone, anonymous included, may pull the repositories of public projects
// (a repository's project is the first component of its name); nothing else
// is permitted.
type ProjectAuthorizer struct {
	Projects ProjectGetter
}

// Permitted implements Authorizer.
func (z ProjectAuthorizer) Permitted(ctx context.Context, p Principal, a Access) ([]string, error) {
	if p.Token {
		return nil, apperr.Errorf(apperr.EINTERNAL, "authorizer called with a token principal")
	}
	switch a.Type {
	case TypeRepository, TypeRegistry:
	default:
		return nil, nil
	}
	if p.Admin && p.Kind != KindAnonymous {
		return slices.Clone(a.Actions), nil
	}
	if a.Type != TypeRepository || !slices.Contains(a.Actions, ActionPull) {
		return nil, nil
	}
	project, _, _ := strings.Cut(a.Name, "/")
	proj, err := z.Projects.Project(ctx, project)
	if apperr.Is(err, apperr.ENOTFOUND) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if proj.Public {
		return []string{ActionPull}, nil
	}
	return nil, nil
}

// LoginLimiter throttles password guessing. Every password check (Basic
// auth on a registry request, a token request) asks Allow first and reports
// the outcome to Done. The default, NoLoginLimit, allows everything.
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
