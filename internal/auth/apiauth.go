package auth

import (
	"context"
	"net/http"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/rbac"
)

// AuthenticateAPI returns the identity behind a JSON API request, as the
// store knows it now: never a token principal, so that the API decides with
// current roles (a disabled user or robot is refused at once, a promoted
// one gains at once).
//
// It accepts Basic credentials (user password or robot secret) and bearer
// access tokens that carry APIScope, which the token service grants to any
// identity that asks for it ("scope=api:v1:*", what `customs login` does).
// A registry token without that scope is refused, so that a token handed to
// a registry client for some repositories cannot be replayed against the
// API. Without an Authorization header, the session cookie (SessionCookie,
// set by an OIDC login) is accepted, with CSRFHeader on requests that change
// something. No credentials give Anonymous.
func (s *Service) AuthenticateAPI(r *http.Request) (Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
			return s.authenticateSession(r, c.Value)
		}
	}
	scheme, rest := parseAuthorization(h)
	if h == "" || scheme != "bearer" {
		return s.Authenticate(r)
	}
	p, err := s.bearer(rest)
	if err != nil {
		return Principal{}, err
	}
	if !allows(p.Granted, APIScope.Type, APIScope.Name, ActionAll) {
		return Principal{}, apperr.Errorf(apperr.EUNAUTHORIZED,
			"this token is not valid for the API (it lacks scope %s); log in with customs login", APIScope)
	}
	id, err := s.identity(r.Context(), p)
	if apperr.Is(err, apperr.ENOTFOUND) || apperr.Is(err, apperr.EUNAUTHORIZED) {
		s.logger.Info("API token refused", "principal", p.Name, "err", err)
		return Principal{}, apperr.Errorf(apperr.EUNAUTHORIZED, "the account behind this token is gone, disabled or expired; log in again")
	}
	if err != nil {
		return Principal{}, asAppErr(err, "cannot check credentials now")
	}
	return id, nil
}

// ProjectPermissions returns what identity p (not a token principal) may do
// in project now, read from the store (no cache).
func (s *Service) ProjectPermissions(ctx context.Context, p Principal, project string) (rbac.Set, error) {
	set, err := s.authz.ProjectPermissions(ctx, p, project)
	if err != nil {
		s.logger.Error("permission check failed", "principal", p.Name, "project", project, "err", err)
		return 0, asAppErr(err, "cannot check permissions now")
	}
	return set, nil
}

// CheckPassword verifies that password is user name's current password,
// through the login limiter and the audit trail like any login (so that a
// password-change form is no guessing oracle). It fails with EUNAUTHORIZED.
func (s *Service) CheckPassword(r *http.Request, name, password string) error {
	if IsRobotName(name) {
		return apperr.Errorf(apperr.EUNAUTHORIZED, msgBadLogin)
	}
	_, _, err := s.login(r.Context(), r, name, password)
	return err
}

// HashPassword hashes a new password with the service's parameters.
func (s *Service) HashPassword(password string) (string, error) {
	return HashPassword(password, s.params)
}

// RobotSecretHash returns the stored form of robot name's secret. It fails
// with EINTERNAL when robot accounts are not enabled.
func (s *Service) RobotSecretHash(name, secret string) (string, error) {
	if s.robots == nil {
		return "", apperr.Errorf(apperr.EINTERNAL, "robot accounts are not enabled")
	}
	return hashRobotSecret(s.pepper, name, secret), nil
}

// ClientIP returns the address of the client that made r (from
// X-Forwarded-For only with TrustProxyHeaders), as audit events and the
// login limiter see it.
func (s *Service) ClientIP(r *http.Request) string { return s.remoteAddr(r) }
