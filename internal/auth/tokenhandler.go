package auth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/store"
)

// maxTokenForm bounds the body of a POST to the token endpoint.
const maxTokenForm = 64 << 10

// tokenResponse is the token endpoint's answer. "token" and "access_token"
// hold the same access token: the Docker token spec names it "token", OAuth2
// clients read "access_token".
type tokenResponse struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// TokenHandler returns the Docker token endpoint, to be mounted at
// /service/token.
//
// GET ?service=&scope=&scope=&account=&offline_token= authenticates with
// optional Basic credentials (none: an anonymous token). POST takes an OAuth2
// form: grant_type=password with username and password, or
// grant_type=refresh_token with refresh_token; access_type=offline (POST) or
// offline_token=true (GET) with a password also returns a refresh token, which
// docker keeps as its identity token. Each scope is granted only the actions
// the identity may perform (possibly none); a malformed scope or a service
// other than this one is 400, bad credentials 401.
func (s *Service) TokenHandler() http.Handler {
	return http.HandlerFunc(s.serveToken)
}

func (s *Service) serveToken(w http.ResponseWriter, r *http.Request) {
	var err error
	switch r.Method {
	case http.MethodGet:
		err = s.tokenGET(w, r)
	case http.MethodPost:
		err = s.tokenPOST(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		err = &apperr.Error{Code: apperr.EUNSUPPORTED, Detail: "method", Message: "use GET or POST"}
	}
	if err != nil {
		s.writeTokenError(w, r, err)
	}
}

func (s *Service) tokenGET(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	scopes, err := s.checkRequest(q.Get("service"), q["scope"])
	if err != nil {
		return err
	}
	id := Anonymous
	var refresh string
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest := parseAuthorization(h)
		if scheme != "basic" {
			return apperr.Errorf(apperr.EUNAUTHORIZED, "the token endpoint takes Basic credentials")
		}
		user, pass, err := parseBasic(rest)
		if err != nil {
			return err
		}
		if acct := q.Get("account"); acct != "" && acct != user {
			return invalidRequest("account %q does not match the credentials", acct)
		}
		p, cred, err := s.login(r.Context(), r, user, pass)
		if err != nil {
			return err
		}
		id = p
		if q.Get("offline_token") == "true" {
			if refresh, err = s.refreshToken(p, cred); err != nil {
				return err
			}
		}
	}
	return s.grant(w, r, id, scopes, refresh, false)
}

func (s *Service) tokenPOST(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenForm)
	if err := r.ParseForm(); err != nil {
		return invalidRequest("cannot parse the form: %v", err)
	}
	f := r.PostForm
	scopes, err := s.checkRequest(f.Get("service"), f["scope"])
	if err != nil {
		return err
	}
	var id Principal
	var refresh string
	switch gt := f.Get("grant_type"); gt {
	case "password":
		user, pass := f.Get("username"), f.Get("password")
		if user == "" {
			return invalidRequest("username is required with grant_type=password")
		}
		p, cred, err := s.login(r.Context(), r, user, pass)
		if err != nil {
			return err
		}
		id = p
		if f.Get("access_type") == "offline" {
			if refresh, err = s.refreshToken(p, cred); err != nil {
				return err
			}
		}
	case "refresh_token":
		rt := f.Get("refresh_token")
		if rt == "" {
			return invalidRequest("refresh_token is required with grant_type=refresh_token")
		}
		if id, err = s.redeemRefresh(r.Context(), rt); err != nil {
			return err
		}
	case "":
		return invalidRequest("grant_type is required")
	default:
		return &apperr.Error{Code: apperr.EINVALID, Detail: "unsupported_grant_type",
			Message: "unsupported grant_type " + quote(gt) + " (want password or refresh_token)"}
	}
	return s.grant(w, r, id, scopes, refresh, true)
}

// checkRequest validates the service parameter and parses the scopes.
func (s *Service) checkRequest(service string, scopeValues []string) ([]Access, error) {
	if service != "" && service != s.service {
		return nil, invalidRequest("unknown service %q (this is %q)", service, s.service)
	}
	scopes, err := ParseScopes(scopeValues)
	if err != nil {
		return nil, (&apperr.Error{Code: apperr.EINVALID, Message: apperr.Message(err)}).WithDetail("invalid_scope")
	}
	return scopes, nil
}

// grant issues an access token for the intersection of what was asked and
// what id may do, and writes the response.
func (s *Service) grant(w http.ResponseWriter, r *http.Request, id Principal, asked []Access, refresh string, oauth bool) error {
	granted, err := s.intersect(r.Context(), id, asked)
	if err != nil {
		return err
	}
	tok, issued, err := s.tokens.sign(Claims{
		RegisteredClaims: registered(id.Name), Kind: id.Kind, Access: granted, Use: useAccess,
	}, s.tokenTTL)
	if err != nil {
		return err
	}
	resp := tokenResponse{
		Token: tok, AccessToken: tok, TokenType: "Bearer",
		ExpiresIn: int64(s.tokenTTL / time.Second), IssuedAt: issued.UTC().Format(time.RFC3339),
		RefreshToken: refresh,
	}
	if oauth {
		resp.Scope = FormatScopes(granted)
	}
	s.logger.Debug("token issued", "principal", id.Name, "kind", id.Kind,
		"asked", FormatScopes(asked), "granted", FormatScopes(granted))
	s.auditToken(r, id, asked, granted)
	body, err := json.Marshal(resp)
	if err != nil {
		return apperr.Wrap(err, apperr.EINTERNAL, "cannot encode token response")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	_, _ = w.Write(body)
	return nil
}

// intersect returns, for each asked scope, the actions id may perform,
// leaving out scopes with none.
func (s *Service) intersect(ctx context.Context, id Principal, asked []Access) ([]Access, error) {
	granted := make([]Access, 0, len(asked))
	for _, a := range asked {
		got, err := permitted(ctx, s.authz, id, a)
		if err != nil {
			s.logger.Error("token: permission check failed", "principal", id.Name, "scope", a.String(), "err", err)
			return nil, asAppErr(err, "cannot check permissions now")
		}
		var acts []string
		for _, act := range a.Actions { // keep the asked order; never grant more than asked
			for _, g := range got {
				if g == act {
					acts = append(acts, act)
					break
				}
			}
		}
		if slices.Contains(a.Actions, ActionAll) && !slices.Contains(acts, ActionAll) {
			// "*" asked but not all granted: grant what the identity has.
			for _, g := range got {
				if !slices.Contains(acts, g) {
					acts = append(acts, g)
				}
			}
		}
		if len(acts) > 0 {
			granted = append(granted, Access{Type: a.Type, Name: a.Name, Actions: acts})
		}
	}
	return granted, nil
}

// refreshToken issues a refresh token for an identity that just logged in
// with the credential whose stored hash is cred.
func (s *Service) refreshToken(p Principal, cred string) (string, error) {
	tok, _, err := s.tokens.sign(Claims{
		RegisteredClaims: registered(p.Name), Kind: p.Kind, Use: useRefresh, Cred: credFingerprint(cred),
	}, s.refreshTTL)
	return tok, err
}

// redeemRefresh verifies a refresh token and returns the user or robot it
// was issued to, as the store knows them now. It fails if the identity is
// gone or disabled (or, for a robot, expired), its password or secret
// changed since, or (for a user) their sessions were ended since.
func (s *Service) redeemRefresh(ctx context.Context, token string) (Principal, error) {
	invalid := apperr.Errorf(apperr.EUNAUTHORIZED, "refresh token is invalid or expired; log in again")
	c, _, err := s.tokens.verify(token, useRefresh)
	if err != nil {
		s.logger.Info("refresh token rejected", "err", err)
		return Principal{}, invalid
	}
	if c.Kind == KindRobot && s.robots != nil {
		rb, err := s.robots.Robot(ctx, c.Subject)
		if apperr.Is(err, apperr.ENOTFOUND) {
			s.logger.Info("refresh token rejected", "robot", c.Subject, "reason", "no such robot")
			return Principal{}, invalid
		}
		if err != nil {
			return Principal{}, apperr.Wrap(err, apperr.EUNAVAILABLE, "cannot check credentials now")
		}
		if robotUnusable(rb, s.clock()) != "" || subtle.ConstantTimeCompare([]byte(c.Cred), []byte(credFingerprint(rb.SecretHash))) != 1 {
			s.logger.Info("refresh token rejected", "robot", c.Subject, "reason", "robot disabled, expired or rotated")
			return Principal{}, invalid
		}
		return Principal{Kind: KindRobot, Name: rb.Name}, nil
	}
	if c.Kind != KindUser {
		return Principal{}, invalid
	}
	u, err := s.users.User(ctx, c.Subject)
	if apperr.Is(err, apperr.ENOTFOUND) {
		s.logger.Info("refresh token rejected", "user", c.Subject, "reason", "no such user")
		return Principal{}, invalid
	}
	if err != nil {
		return Principal{}, apperr.Wrap(err, apperr.EUNAVAILABLE, "cannot check credentials now")
	}
	if u.Disabled || subtle.ConstantTimeCompare([]byte(c.Cred), []byte(credFingerprint(userCred(u)))) != 1 {
		s.logger.Info("refresh token rejected", "user", c.Subject, "reason", "account disabled, password changed or sessions ended")
		return Principal{}, invalid
	}
	if u.Source == store.SourceLDAP {
		// The password is the directory's: the token lives while the
		// directory still has the user (whose groups are refreshed).
		if err := s.recheckDirectoryUser(ctx, u); apperr.Is(err, apperr.EUNAUTHORIZED) {
			s.logger.Info("refresh token rejected", "user", c.Subject, "reason", apperr.Message(err))
			return Principal{}, invalid
		} else if err != nil {
			s.logger.Error("refresh token: the directory cannot confirm the user", "user", c.Subject, "err", err)
			return Principal{}, asAppErr(err, "the LDAP directory cannot confirm the account now; try again later")
		}
	}
	return Principal{Kind: KindUser, Name: u.Name, Admin: u.Admin}, nil
}

// writeTokenError writes err as both a distribution-style error body
// ({"errors":[{"code","message"}]}, which docker, containers/image,
// go-containerregistry and oras-go read) and an OAuth2 one ("error",
// "error_description").
func (s *Service) writeTokenError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, oauth := http.StatusInternalServerError, "UNKNOWN", "server_error"
	switch apperr.Code(err) {
	case apperr.EUNAUTHORIZED:
		status, code, oauth = http.StatusUnauthorized, "UNAUTHORIZED", "invalid_grant"
		w.Header().Set("WWW-Authenticate", `Basic realm=`+quoteParam(s.service))
	case apperr.EDENIED:
		status, code, oauth = http.StatusForbidden, "DENIED", "access_denied"
	case apperr.EINVALID:
		status, code, oauth = http.StatusBadRequest, "UNSUPPORTED", "invalid_request"
		if d := apperr.Detail(err); d != "" {
			oauth = d
		}
	case apperr.EUNSUPPORTED:
		status, code, oauth = http.StatusMethodNotAllowed, "UNSUPPORTED", "invalid_request"
	case apperr.EUNAVAILABLE:
		status, code, oauth = http.StatusServiceUnavailable, "UNAVAILABLE", "temporarily_unavailable"
		if apperr.Detail(err) == "TOOMANYREQUESTS" {
			status, code = http.StatusTooManyRequests, "TOOMANYREQUESTS"
			secs := max(1, int64((apperr.RetryAfter(err)+time.Second-1)/time.Second))
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		}
	default:
		s.logger.Error("token endpoint failed", "method", r.Method, "err", err)
	}
	msg := apperr.Message(err)
	body, _ := json.Marshal(map[string]any{
		"errors":            []map[string]string{{"code": code, "message": msg}},
		"error":             oauth,
		"error_description": msg,
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// auditToken records a token issue with what was asked and granted.
func (s *Service) auditToken(r *http.Request, id Principal, asked, granted []Access) {
	project := ""
	for i, g := range granted {
		p, _, _ := strings.Cut(g.Name, "/")
		if g.Type != TypeRepository || (i > 0 && p != project) {
			project = ""
			break
		}
		project = p
	}
	s.recorder.Record(r.Context(), audit.Event{
		Time: s.clock(), ActorKind: string(id.Kind), Actor: id.Name, ClientIP: s.remoteAddr(r), UserAgent: r.UserAgent(),
		Action: ActionTokenIssue, Resource: "token", Project: project, Outcome: audit.Success,
		Details: map[string]string{"requested": FormatScopes(asked), "granted": FormatScopes(granted)},
	})
}

func invalidRequest(format string, args ...any) error {
	return apperr.Errorf(apperr.EINVALID, format, args...).WithDetail("invalid_request")
}
