package auth

import (
	"crypto/subtle"
	"net/http"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// SessionCookie is the cookie holding a login session of the UI and the
// JSON API (issued after an OIDC login).
const SessionCookie = "customs_session"

// CSRFHeader must be sent, with any value, by requests that change
// something (any method but GET, HEAD and OPTIONS) and are authenticated by
// the session cookie. Browsers never add a custom header to a cross-site
// request without a CORS preflight, which customs does not answer, so a
// page of another site cannot use a user's session.
const CSRFHeader = "X-Customs-CSRF"

// useSession is the "token_use" of session tokens: accepted only from the
// session cookie, by the JSON API.
const useSession = "session"

// IssueSession returns a session token for user u valid for ttl, and its
// expiry, to be set as SessionCookie. The session ends early when u is
// disabled or deleted, or their account is linked to another external
// identity.
func (s *Service) IssueSession(u *store.User, ttl time.Duration) (string, time.Time, error) {
	if u == nil || u.Name == "" {
		return "", time.Time{}, apperr.Errorf(apperr.EINTERNAL, "session for no user")
	}
	tok, issued, err := s.tokens.sign(Claims{
		RegisteredClaims: registered(u.Name), Kind: KindUser, Use: useSession, Cred: sessionFingerprint(u),
	}, ttl)
	if err != nil {
		return "", time.Time{}, err
	}
	return tok, issued.Add(ttl), nil
}

// sessionFingerprint binds a session to the identity it was issued for.
func sessionFingerprint(u *store.User) string {
	return credFingerprint("session\x00" + u.Source + "\x00" + u.ExternalID)
}

// authenticateSession returns the user behind a session token, as the
// store knows them now; see AuthenticateAPI.
func (s *Service) authenticateSession(r *http.Request, token string) (Principal, error) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if r.Header.Get(CSRFHeader) == "" {
			return Principal{}, apperr.Errorf(apperr.EDENIED,
				"a %s authenticated by the session cookie must carry the %s header", r.Method, CSRFHeader)
		}
	}
	expired := apperr.Errorf(apperr.EUNAUTHORIZED, "the session has expired or ended; log in again")
	c, _, err := s.tokens.verify(token, useSession)
	if err != nil || c.Kind != KindUser {
		s.logger.Debug("session rejected", "err", err)
		return Principal{}, expired
	}
	u, err := s.users.User(r.Context(), c.Subject)
	if apperr.Is(err, apperr.ENOTFOUND) {
		return Principal{}, expired
	}
	if err != nil {
		return Principal{}, asAppErr(err, "cannot check credentials now")
	}
	if u.Disabled || subtle.ConstantTimeCompare([]byte(c.Cred), []byte(sessionFingerprint(u))) != 1 {
		s.logger.Info("session rejected", "user", u.Name, "reason", "account disabled or relinked")
		return Principal{}, expired
	}
	return Principal{Kind: KindUser, Name: u.Name, Admin: u.Admin}, nil
}
