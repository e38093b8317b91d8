package server

import (
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/auth/ldap"
	"github.com/customs-dev/customs/internal/auth/oidc"
)

// directory returns the LDAP directory auth.ldap configures, or nil when
// LDAP login is off, and how long its logins are cached (negative: not
// at all, as auth.Options wants it).
func (s *Server) directory() (auth.Directory, time.Duration, error) {
	if !s.cfg.Auth.LDAP.Enabled() {
		return nil, 0, nil
	}
	d, err := ldap.New(s.cfg.Auth.LDAP, s.logger.With("component", "ldap"))
	if err != nil {
		return nil, 0, fmt.Errorf("LDAP login: %w", err)
	}
	ttl := s.cfg.Auth.LDAP.CacheTTL.Std()
	if ttl == 0 {
		ttl = -1
	}
	s.logger.Info("LDAP login enabled", "url", s.cfg.Auth.LDAP.URL, "baseDN", s.cfg.Auth.LDAP.BaseDN)
	return d, ttl, nil
}

// oidcHandler returns the OIDC login endpoints auth.oidc configures, or nil
// when OIDC login is off. Its state cookies are signed with a key kept in
// the data directory, like the upload session secret.
func (s *Server) oidcHandler() (http.Handler, error) {
	if !s.cfg.Auth.OIDC.Enabled() {
		return nil, nil
	}
	key, err := loadOrCreateSecret(filepath.Join(s.cfg.DataDir, "oidc-state-key"))
	if err != nil {
		return nil, fmt.Errorf("OIDC login state key: %w", err)
	}
	h, err := oidc.New(oidc.Options{
		Config: s.cfg.Auth.OIDC, RedirectURL: s.cfg.OIDCRedirectURL(), Logins: s.Auth, StateKey: key,
		Logger: s.logger.With("component", "oidc"),
	})
	if err != nil {
		return nil, fmt.Errorf("OIDC login: %w", err)
	}
	s.logger.Info("OIDC login enabled", "issuer", s.cfg.Auth.OIDC.Issuer, "redirectURL", s.cfg.OIDCRedirectURL())
	return h, nil
}
