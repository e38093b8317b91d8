package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strconv"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
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

// Audit actions of session ends.
const (
	// ActionLogout: a session was logged out (its token is refused from
	// then on, wherever it was copied to).
	ActionLogout = "user.logout"
	// ActionSessionsRevoke: every session and refresh token of a user
	// issued before was ended ("log out everywhere", or as a consequence
	// of a password change or of disabling or enabling the account, named
	// in the reason).
	ActionSessionsRevoke = "user.sessions.revoke"
)

// IssueSession returns a session token for user u valid for ttl, and its
// expiry, to be set as SessionCookie. The session ends early when it is
// logged out (EndSession), when u's sessions are all ended
// (store.SessionStore.EndUserSessions, which bumps u.SessionGeneration),
// when u is disabled or deleted, or when their account is linked to
// another external identity.
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

// EndSession logs out the session of token, if it is a valid session
// token: from then on the token is refused by every replica (it is
// recorded as revoked in the store until it would have expired), and the
// logout is audited. An invalid or expired token has nothing to end and
// is no error. Without a SessionStore it fails with EINTERNAL.
func (s *Service) EndSession(r *http.Request, token string) error {
	c, _, err := s.tokens.verify(token, useSession)
	if err != nil || c.Kind != KindUser || c.ID == "" || c.ExpiresAt == nil {
		return nil
	}
	if s.sessions == nil {
		return apperr.Errorf(apperr.EINTERNAL, "sessions cannot be revoked: no session store")
	}
	if err := s.sessions.RevokeSession(r.Context(), c.ID, c.Subject, c.ExpiresAt.Add(clockSkew)); err != nil {
		s.logger.Error("logout: cannot record the revoked session", "user", c.Subject, "err", err)
		return asAppErr(err, "cannot log out now; try again")
	}
	s.logger.Info("session logged out", "user", c.Subject)
	s.recorder.Record(r.Context(), audit.Event{
		Time: s.clock(), ActorKind: string(KindUser), Actor: c.Subject, ClientIP: s.remoteAddr(r), UserAgent: r.UserAgent(),
		Action: ActionLogout, Resource: "user:" + c.Subject, Outcome: audit.Success,
	})
	return nil
}

// EndUserSessions ends every session and refresh token of user name
// issued before ("log out everywhere"): their next use is refused by every
// replica. Access tokens already issued stay valid until they expire
// (TokenTTL); passwords and CLI secrets are not changed. by made the
// change (audited as ActionSessionsRevoke with reason, e.g. "password
// changed"; "" for an explicit request). ENOTFOUND if the user does not
// exist; EINTERNAL without a SessionStore.
func (s *Service) EndUserSessions(ctx context.Context, r *http.Request, by Principal, name, reason string) error {
	if s.sessions == nil {
		return apperr.Errorf(apperr.EINTERNAL, "sessions cannot be revoked: no session store")
	}
	gen, err := s.sessions.EndUserSessions(ctx, name)
	if err != nil {
		return asAppErr(err, "cannot end the sessions now")
	}
	s.logger.Info("sessions ended", "user", name, "by", by.Name, "reason", reason, "generation", gen)
	e := audit.Event{
		Time: s.clock(), ActorKind: string(by.Kind), Actor: by.Name, ClientIP: s.remoteAddr(r), UserAgent: r.UserAgent(),
		Action: ActionSessionsRevoke, Resource: "user:" + name, Outcome: audit.Success, Reason: reason,
	}
	if by.Kind == "" {
		e.ActorKind = string(KindSystem)
	}
	s.recorder.Record(ctx, e)
	return nil
}

// sessionFingerprint binds a session to the identity it was issued for,
// and to the user's session generation (so that bumping it ends the
// session).
func sessionFingerprint(u *store.User) string {
	id := "session\x00" + u.Source + "\x00" + u.ExternalID
	if u.SessionGeneration != 0 {
		id += "\x00" + strconv.FormatInt(u.SessionGeneration, 10)
	}
	return credFingerprint(id)
}

// userCred is what a user's refresh tokens are bound to (see
// credFingerprint): their stored password hash and, once it was bumped,
// their session generation.
func userCred(u *store.User) string {
	if u.SessionGeneration == 0 {
		return u.PasswordHash
	}
	return u.PasswordHash + "\x00generation " + strconv.FormatInt(u.SessionGeneration, 10)
}

// Messages of refused sessions.
const (
	msgSessionEnded     = "the session has expired or ended; log in again"
	msgSessionLoggedOut = "this session was logged out; log in again"
)

// verifiedSession is what the session check needs of a session token
// whose signature and claims were verified.
type verifiedSession struct {
	subject, id, cred, kid string
}

// verifySession verifies a session token of a user, consulting and filling
// the cache of verified session tokens (so that API requests made with the
// cookie do not each pay an ECDSA verification; what can end a session
// before its expiry is checked in the store on every request).
func (s *Service) verifySession(token string) (verifiedSession, error) {
	key := sha256.Sum256([]byte(token))
	if v, ok := s.sessionsOK.get(key, s.clock()); ok {
		// The key that signed it must still be trusted.
		if _, err := s.tokens.keys.PublicKey(v.kid); err == nil {
			return v, nil
		}
	}
	c, kid, err := s.tokens.verify(token, useSession)
	if err != nil {
		return verifiedSession{}, err
	}
	if c.Kind != KindUser {
		return verifiedSession{}, apperr.Errorf(apperr.EUNAUTHORIZED, "a session token of a %s", c.Kind)
	}
	v := verifiedSession{subject: c.Subject, id: c.ID, cred: c.Cred, kid: kid}
	s.sessionsOK.put(key, v, c.ExpiresAt.Add(clockSkew))
	return v, nil
}

// authenticateSession returns the user behind a session token, as the
// store knows them now; see AuthenticateAPI. With a SessionStore, the
// user and the session's revocation are read in one query, so a logout or
// "log out everywhere" applies at once on every replica.
func (s *Service) authenticateSession(r *http.Request, token string) (Principal, error) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if r.Header.Get(CSRFHeader) == "" {
			return Principal{}, apperr.Errorf(apperr.EDENIED,
				"a %s authenticated by the session cookie must carry the %s header", r.Method, CSRFHeader)
		}
	}
	expired := apperr.Errorf(apperr.EUNAUTHORIZED, msgSessionEnded)
	c, err := s.verifySession(token)
	if err != nil {
		s.logger.Debug("session rejected", "err", err)
		return Principal{}, expired
	}
	var u *store.User
	revoked := false
	if s.sessions != nil {
		u, revoked, err = s.sessions.UserSession(r.Context(), c.subject, c.id)
	} else {
		u, err = s.users.User(r.Context(), c.subject)
	}
	if apperr.Is(err, apperr.ENOTFOUND) {
		return Principal{}, expired
	}
	if err != nil {
		return Principal{}, asAppErr(err, "cannot check credentials now")
	}
	if revoked {
		s.logger.Info("session rejected", "user", u.Name, "reason", "logged out")
		return Principal{}, apperr.Errorf(apperr.EUNAUTHORIZED, msgSessionLoggedOut)
	}
	if u.Disabled || subtle.ConstantTimeCompare([]byte(c.cred), []byte(sessionFingerprint(u))) != 1 {
		s.logger.Info("session rejected", "user", u.Name, "reason", "sessions ended, account disabled or relinked")
		return Principal{}, expired
	}
	return Principal{Kind: KindUser, Name: u.Name, Admin: u.Admin}, nil
}
