// Package oidc logs users in to the UI and JSON API through an OpenID
// Connect provider, with the authorization code flow.
//
// GET /api/v1/auth/oidc/login redirects the browser to the provider with a
// random state, a nonce and a PKCE challenge, which it keeps in a signed,
// short-lived cookie of that browser. GET /api/v1/auth/oidc/callback checks
// the state against the cookie, exchanges the code (with the PKCE
// verifier), verifies the ID token (signature by the provider's published
// keys, issuer, audience, expiry) and its nonce, reads the user name and
// groups from its claims (completed from the userinfo endpoint when the ID
// token lacks them), creates or updates the customs user (source oidc, its
// external ID the issuer and subject) and their groups, and sets the
// session cookie the JSON API accepts. POST /api/v1/auth/oidc/logout ends
// the browser's session: server-side (the token is recorded as revoked, so
// a copy of the cookie is refused too) and by removing the cookie.
//
// Registry clients cannot do OIDC: an OIDC user creates a CLI secret (see
// package api) and gives it as their password.
package oidc

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/config"
	"github.com/customs-dev/customs/internal/store"
)

// Paths the Handler serves.
const (
	LoginPath    = "/api/v1/auth/oidc/login"
	CallbackPath = config.OIDCCallbackPath
	LogoutPath   = "/api/v1/auth/oidc/logout"
	// cookiePath scopes the state cookies to the endpoints that read them.
	cookiePath = "/api/v1/auth/oidc/"
)

// DefaultNext is where a browser goes after logging in when the login did
// not name a page (until the UI exists: who the API says you are).
const DefaultNext = "/api/v1/users/me"

// Logins is what the Handler needs of the auth service.
type Logins interface {
	// SyncExternalUser creates or updates the user of an external identity.
	SyncExternalUser(ctx context.Context, source string, du *auth.DirectoryUser, admin *bool) (*store.User, error)
	// IssueSession returns a session token for u and its expiry.
	IssueSession(u *store.User, ttl time.Duration) (string, time.Time, error)
	// EndSession logs out the session of a session token (refused
	// everywhere from then on); an invalid token is no error.
	EndSession(r *http.Request, token string) error
	// AuditLogin records a login attempt.
	AuditLogin(r *http.Request, name, source string, outcome audit.Outcome, reason string)
}

// Options configures a Handler.
type Options struct {
	// Config is the validated auth.oidc configuration.
	Config config.OIDC
	// RedirectURL is the absolute URL of CallbackPath the provider sends
	// browsers back to (config.Config.OIDCRedirectURL).
	RedirectURL string
	// Logins creates users and sessions; required.
	Logins Logins
	// StateKey signs the login state cookies: at least 32 random bytes,
	// the same on every replica.
	StateKey []byte
	// HTTPClient talks to the provider; default one with Config.Timeout
	// that trusts Config.CAFile (or the system's CAs).
	HTTPClient *http.Client
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
	// Logger receives failed logins and provider errors; default discards.
	Logger *slog.Logger
}

// Handler serves the OIDC login endpoints. It finds the provider (OIDC
// discovery) at the first login rather than at startup, so customs starts
// while the provider is down; a failed discovery is retried at the next
// login.
type Handler struct {
	cfg      config.OIDC
	redirect string
	secure   bool // cookies are Secure (the redirect URL is https)
	logins   Logins
	key      []byte
	client   *http.Client
	clock    func() time.Time
	logger   *slog.Logger
	mux      *http.ServeMux
	patterns []string

	mu       sync.Mutex
	provider *gooidc.Provider
}

// New returns a Handler configured by opts.
func New(opts Options) (*Handler, error) {
	h := &Handler{cfg: opts.Config, redirect: opts.RedirectURL, logins: opts.Logins,
		key: append([]byte(nil), opts.StateKey...), client: opts.HTTPClient, clock: opts.Clock, logger: opts.Logger}
	if h.logins == nil {
		return nil, errors.New("oidc: Logins is required")
	}
	if len(h.key) < minStateKey {
		return nil, fmt.Errorf("oidc: StateKey must have at least %d bytes", minStateKey)
	}
	u, err := url.Parse(h.redirect)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("auth.oidc.redirectURL: %q is not an absolute http(s) URL", h.redirect)
	}
	h.secure = u.Scheme == "https"
	if h.clock == nil {
		h.clock = time.Now
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	if h.client == nil {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if h.cfg.CAFile != "" {
			pem, err := os.ReadFile(h.cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("auth.oidc.caFile: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("auth.oidc.caFile: %s holds no PEM certificate", h.cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tc
		timeout := h.cfg.Timeout.Std()
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		h.client = &http.Client{Transport: tr, Timeout: timeout}
	}
	if h.cfg.SessionTTL <= 0 {
		h.cfg.SessionTTL = config.Duration(8 * time.Hour)
	}
	h.mux = http.NewServeMux()
	for _, rt := range []struct {
		pattern string
		fn      http.HandlerFunc
	}{{"GET " + LoginPath, h.login}, {"GET " + CallbackPath, h.callback}, {"POST " + LogoutPath, h.logout}} {
		h.mux.HandleFunc(rt.pattern, rt.fn)
		h.patterns = append(h.patterns, rt.pattern)
	}
	return h, nil
}

// ServeHTTP serves LoginPath, CallbackPath and LogoutPath.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Patterns returns the http.ServeMux patterns ("METHOD /path") the Handler
// serves, for the API document's completeness test.
func (h *Handler) Patterns() []string { return slices.Clone(h.patterns) }

// clientContext carries the provider HTTP client for go-oidc and oauth2.
func (h *Handler) clientContext(ctx context.Context) context.Context {
	return gooidc.ClientContext(context.WithValue(ctx, oauth2.HTTPClient, h.client), h.client)
}

// discover returns the provider, fetching its discovery document once.
func (h *Handler) discover(ctx context.Context) (*gooidc.Provider, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.provider != nil {
		return h.provider, nil
	}
	// The key set fetches the provider's keys later with this context: it
	// must outlive the request.
	p, err := gooidc.NewProvider(h.clientContext(context.WithoutCancel(ctx)), h.cfg.Issuer)
	if err != nil {
		h.logger.Error("oidc: discovery failed", "issuer", h.cfg.Issuer, "err", err)
		return nil, apperr.Wrap(err, apperr.EUNAVAILABLE, "the OIDC provider cannot be reached now; try again later")
	}
	h.provider = p
	return p, nil
}

// oauth returns the OAuth2 configuration of provider p.
func (h *Handler) oauth(p *gooidc.Provider) *oauth2.Config {
	scopes := []string{gooidc.ScopeOpenID}
	for _, s := range h.cfg.Scopes {
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	return &oauth2.Config{ClientID: h.cfg.ClientID, ClientSecret: h.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: h.redirect, Scopes: scopes}
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	p, err := h.discover(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	st := loginState{Verifier: oauth2.GenerateVerifier(), Next: localPath(r.URL.Query().Get("next")),
		Expires: h.clock().Add(stateTTL)}
	if st.State, err = randomToken(); err == nil {
		st.Nonce, err = randomToken()
	}
	if err != nil {
		h.fail(w, r, apperr.Wrap(err, apperr.EINTERNAL, "cannot start the login"))
		return
	}
	sealed, err := sealState(h.key, st)
	if err != nil {
		h.fail(w, r, apperr.Wrap(err, apperr.EINTERNAL, "cannot start the login"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName(st.State), Value: sealed, Path: cookiePath,
		MaxAge: int(stateTTL / time.Second), HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, h.oauth(p).AuthCodeURL(st.State, gooidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)), http.StatusFound)
}

func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	w.Header().Set("Cache-Control", "no-store")
	if e := q.Get("error"); e != "" {
		reason := "the provider refused: " + e
		if d := q.Get("error_description"); d != "" {
			reason += " (" + d + ")"
		}
		h.logins.AuditLogin(r, "", store.SourceOIDC, audit.Failure, reason)
		h.fail(w, r, apperr.Errorf(apperr.EUNAUTHORIZED, "the OIDC provider did not log you in: %s", reason))
		return
	}
	state := q.Get("state")
	c, err := r.Cookie(cookieName(state))
	if state == "" || err != nil {
		h.fail(w, r, apperr.Errorf(apperr.EUNAUTHORIZED, "this login was not started in this browser, or took too long; start again at %s", LoginPath))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: c.Name, Path: cookiePath, MaxAge: -1, HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode})
	st, err := openState(h.key, c.Value, h.clock())
	if err != nil || subtle.ConstantTimeCompare([]byte(st.State), []byte(state)) != 1 {
		h.logger.Info("oidc: login state refused", "err", err)
		h.fail(w, r, apperr.Errorf(apperr.EUNAUTHORIZED, "this login was not started in this browser, or took too long; start again at %s", LoginPath))
		return
	}
	u, err := h.finish(r, st, q.Get("code"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	session, expires, err := h.logins.IssueSession(u, h.cfg.SessionTTL.Std())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: auth.SessionCookie, Value: session, Path: "/", Expires: expires,
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode})
	h.logins.AuditLogin(r, u.Name, store.SourceOIDC, audit.Success, "")
	h.logger.Info("oidc login", "user", u.Name, "admin", u.Admin)
	next := st.Next
	if next == "" {
		next = DefaultNext
	}
	http.Redirect(w, r, next, http.StatusFound)
}

// finish exchanges the code, verifies the ID token and brings the user up
// to date.
func (h *Handler) finish(r *http.Request, st loginState, code string) (*store.User, error) {
	ctx := h.clientContext(r.Context())
	p, err := h.discover(ctx)
	if err != nil {
		return nil, err
	}
	refuse := func(name, reason string) (*store.User, error) {
		h.logger.Info("oidc login refused", "user", name, "reason", reason)
		h.logins.AuditLogin(r, name, store.SourceOIDC, audit.Failure, reason)
		return nil, apperr.Errorf(apperr.EUNAUTHORIZED, "OIDC login refused: %s", reason)
	}
	if code == "" {
		return refuse("", "the provider sent no code")
	}
	tok, err := h.oauth(p).Exchange(ctx, code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return refuse("", "the provider refused the code: "+re.ErrorCode)
		}
		h.logger.Error("oidc: code exchange failed", "err", err)
		return nil, apperr.Wrap(err, apperr.EUNAVAILABLE, "the OIDC provider cannot be reached now; try again later")
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return refuse("", "the provider returned no ID token")
	}
	idt, err := p.VerifierContext(ctx, &gooidc.Config{ClientID: h.cfg.ClientID, Now: h.clock}).Verify(ctx, raw)
	if err != nil {
		h.logger.Warn("oidc: ID token refused", "err", err)
		return refuse("", "the ID token is not valid")
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		return refuse("", "the ID token's nonce does not match the login")
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return refuse("", "the ID token's claims cannot be read")
	}
	if h.missing(claims) {
		info, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			h.logger.Warn("oidc: userinfo failed", "err", err)
		} else if info.Subject != idt.Subject {
			return refuse("", "the userinfo endpoint answered for another subject")
		} else {
			more := map[string]any{}
			if err := info.Claims(&more); err == nil {
				for k, v := range more {
					if _, ok := claims[k]; !ok {
						claims[k] = v
					}
				}
			}
		}
	}
	name, _ := claims[h.cfg.UsernameClaim].(string)
	if name == "" {
		return refuse("", fmt.Sprintf("the provider did not give the claim %q (auth.oidc.usernameClaim)", h.cfg.UsernameClaim))
	}
	groups, err := claimStrings(claims[h.cfg.GroupsClaim])
	if err != nil {
		return refuse(name, fmt.Sprintf("the claim %q (auth.oidc.groupsClaim) is not a list of names", h.cfg.GroupsClaim))
	}
	var admin *bool
	if h.cfg.AdminGroup != "" {
		a := slices.Contains(groups, h.cfg.AdminGroup)
		admin = &a
	}
	u, err := h.logins.SyncExternalUser(r.Context(), store.SourceOIDC,
		&auth.DirectoryUser{Name: name, ExternalID: idt.Issuer + " " + idt.Subject, Groups: groups}, admin)
	switch {
	case apperr.Is(err, apperr.ECONFLICT) || apperr.Is(err, apperr.EINVALID):
		return refuse(strings.ToLower(name), apperr.Message(err))
	case err != nil:
		return nil, err
	case u.Disabled:
		return refuse(u.Name, "account disabled")
	}
	return u, nil
}

// missing reports whether claims lack the user name or (when configured)
// the groups.
func (h *Handler) missing(claims map[string]any) bool {
	if _, ok := claims[h.cfg.UsernameClaim]; !ok {
		return true
	}
	if h.cfg.GroupsClaim == "" {
		return false
	}
	_, ok := claims[h.cfg.GroupsClaim]
	return !ok
}

// claimStrings reads a groups claim: absent, a list of strings, or one
// string (as some providers send a single group).
func claimStrings(v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("not a string")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errors.New("not a list")
}

// logout ends the session of the request's cookie server-side (a copy of
// the cookie is refused from then on) and removes the cookie. The cookie
// is removed even when the session cannot be recorded as ended (the
// answer is then an error saying so). No CSRF header is needed: another
// site making a browser log out does no harm.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: auth.SessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode})
	if c, err := r.Cookie(auth.SessionCookie); err == nil && c.Value != "" {
		if err := h.logins.EndSession(r, c.Value); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// fail answers a browser with err's status and message as plain text.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	switch apperr.Code(err) {
	case apperr.EUNAUTHORIZED:
		status = http.StatusUnauthorized
	case apperr.EDENIED:
		status = http.StatusForbidden
	case apperr.EINVALID:
		status = http.StatusBadRequest
	case apperr.EUNAVAILABLE:
		status = http.StatusServiceUnavailable
	default:
		h.logger.Error("oidc", "path", r.URL.Path, "err", err)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintf(w, "%s\n", apperr.Message(err))
}
