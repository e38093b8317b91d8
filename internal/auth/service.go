// Package auth authenticates registry and API clients and decides what they
// may do.
//
// A Service checks Basic credentials (argon2id password hashes for users,
// keyed hashes of generated secrets for robot accounts) and bearer tokens
// (ES256 JWTs it issued itself), answers the Docker token protocol at
// /service/token (GET with optional Basic auth, and the OAuth2 POST flavour
// with password and refresh-token grants), and authorizes each request
// through an Authorizer, which reads the one permission table of package
// rbac. Tokens are signed by keys from a KeyStore (KeyDir keeps them as
// files); they carry exactly what they grant, so any replica can verify them
// without shared state. Logins, failed logins and token issues are audited.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/rbac"
	"github.com/customs-dev/customs/internal/store"
)

// Messages of denials, as registry clients show them.
const (
	msgAuthRequired = "authentication required"
	msgDenied       = "requested access to the resource is denied"
	msgBadLogin     = "invalid username or password"
)

// Options configures a Service. Users and Keys are required; Projects is
// required unless Authorizer is given.
type Options struct {
	Users store.UserStore
	// Sessions records logged-out sessions and ends all of a user's
	// sessions; nil means Users, if it is a store.SessionStore, else
	// sessions cannot be revoked (they end at expiry or when the user is
	// disabled).
	Sessions store.SessionStore
	Projects ProjectGetter
	Keys     KeyStore
	// Members gives users their project roles (default authorizer); nil
	// means users have none.
	Members MemberRoles
	// Groups resolves users' directory groups (default authorizer); nil
	// means UserGroups' UserGroups, or none without it.
	Groups GroupResolver
	// UserGroups keeps the groups of LDAP and OIDC users, saved at each
	// of their logins; nil means their groups are not kept.
	UserGroups GroupStore
	// Directory checks the passwords of users who are not local (LDAP):
	// those unknown to customs (created at their first login) and those
	// of source store.SourceLDAP. Nil means only local users and robots
	// log in with passwords.
	Directory Directory
	// DirectoryCacheTTL is how long a successful directory login (and a
	// directory's confirmation that a user still exists) is remembered;
	// default 1 minute, negative disables. Failures are never remembered.
	DirectoryCacheTTL time.Duration
	// Robots enables robot accounts; nil means robots cannot log in.
	Robots RobotGetter
	// RobotPepper keys the hashes of robot secrets (at least
	// MinRobotPepper bytes); required with Robots, and the same on every
	// replica and across restarts.
	RobotPepper []byte
	// Authorizer decides permissions; default RoleAuthorizer over
	// Projects, Members, Groups and Robots.
	Authorizer Authorizer
	// PermissionCacheTTL is how long the permission decisions behind
	// Basic-authenticated registry requests, catalog filtering and Entitled
	// (with the token holder's identity it reads) are remembered; default 5
	// seconds, negative disables. Token issues and API checks always read
	// the store.
	PermissionCacheTTL time.Duration
	// Limiter throttles password guessing; default NoLoginLimit.
	Limiter LoginLimiter
	// Recorder receives audit events (logins, failed and throttled
	// logins, token issues); default audit.Discard.
	Recorder audit.Recorder
	// Service is the token audience and the challenge's service; default "customs".
	Service string
	// Issuer is the tokens' "iss"; default "customs".
	Issuer string
	// TokenTTL is the lifetime of access tokens; default 5 minutes, at least
	// 1 minute (clients treat shorter lifetimes as 60 seconds).
	TokenTTL time.Duration
	// RefreshTTL is the lifetime of refresh (identity) tokens; default 90
	// days. Keep retired signing keys at least this long.
	RefreshTTL time.Duration
	// ExternalURL is the base URL clients reach customs at, e.g.
	// "https://registry.example.com"; if empty it is derived per request.
	ExternalURL string
	// TrustProxyHeaders makes the service believe X-Forwarded-Proto, -Host and -For.
	TrustProxyHeaders bool
	// PasswordParams are the argon2id parameters of new hashes; zero means
	// DefaultPasswordParams. Older hashes are upgraded at login.
	PasswordParams PasswordParams
	// CredentialCacheTTL is how long a verified password is remembered, so
	// clients sending Basic auth on every request do not pay argon2id each
	// time; default 1 minute, negative disables.
	CredentialCacheTTL time.Duration
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
	// Logger receives failed logins and errors; default discards.
	Logger *slog.Logger
}

// Service implements the registry's authentication guard and the token
// endpoint. It is safe for concurrent use.
type Service struct {
	hashes      *hashGate
	users       store.UserStore
	sessions    store.SessionStore
	userGroups  GroupStore
	directory   Directory
	dirTTL      time.Duration
	robots      RobotGetter
	pepper      []byte
	authz       Authorizer
	limiter     LoginLimiter
	recorder    audit.Recorder
	permTTL     time.Duration
	perms       *lru[permKey, rbac.Set]
	identities  *lru[identityKey, Principal]
	tokens      *tokens
	service     string
	tokenTTL    time.Duration
	refreshTTL  time.Duration
	externalURL string
	trustProxy  bool
	params      PasswordParams
	credTTL     time.Duration
	clock       func() time.Time
	logger      *slog.Logger

	credSecret [32]byte
	creds      *lru[[32]byte, struct{}]        // HMAC(user, password, stored hash) -> verified
	verified   *lru[[32]byte, verifiedToken]   // sha256(token) -> verified claims
	sessionsOK *lru[[32]byte, verifiedSession] // sha256(session token) -> verified claims

	dummyOnce sync.Once
	dummyHash string
}

// verifiedToken is a bearer token whose signature and claims were checked.
type verifiedToken struct {
	principal Principal
	kid       string
}

// Cache sizes: enough for every active client of a busy server; each entry
// is small, and eviction only costs a recomputation.
const (
	credCacheSize  = 1024
	tokenCacheSize = 4096
	permCacheSize  = 4096
)

// permKey identifies a cached permission decision: an identity in a project.
type permKey struct {
	kind    Kind
	name    string
	admin   bool
	project string
}

// NewService returns a Service configured by opts, or an EINVALID error
// naming the bad option.
func NewService(opts Options) (*Service, error) {
	s := &Service{
		hashes: newHashGate(),
		users:  opts.Users, authz: opts.Authorizer, limiter: opts.Limiter, recorder: opts.Recorder,
		robots: opts.Robots, pepper: append([]byte(nil), opts.RobotPepper...), permTTL: opts.PermissionCacheTTL,
		service: opts.Service, tokenTTL: opts.TokenTTL, refreshTTL: opts.RefreshTTL,
		trustProxy: opts.TrustProxyHeaders, params: opts.PasswordParams, credTTL: opts.CredentialCacheTTL,
		clock: opts.Clock, logger: opts.Logger,
		userGroups: opts.UserGroups, directory: opts.Directory, dirTTL: opts.DirectoryCacheTTL,
		sessions: opts.Sessions,
	}
	if s.sessions == nil {
		s.sessions, _ = opts.Users.(store.SessionStore)
	}
	if s.dirTTL == 0 {
		s.dirTTL = time.Minute
	}
	groups := opts.Groups
	if groups == nil && opts.UserGroups != nil {
		groups = opts.UserGroups.UserGroups
	}
	if s.users == nil {
		return nil, apperr.Errorf(apperr.EINVALID, "auth: Users is required")
	}
	if opts.Keys == nil {
		return nil, apperr.Errorf(apperr.EINVALID, "auth: Keys is required")
	}
	if s.robots != nil && len(s.pepper) < MinRobotPepper {
		return nil, apperr.Errorf(apperr.EINVALID, "auth: RobotPepper must be at least %d bytes with Robots", MinRobotPepper)
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.authz == nil {
		if opts.Projects == nil {
			return nil, apperr.Errorf(apperr.EINVALID, "auth: Projects is required without an Authorizer")
		}
		s.authz = RoleAuthorizer{Projects: opts.Projects, Members: opts.Members, Robots: opts.Robots,
			Groups: groups, Clock: s.clock}
	}
	if s.limiter == nil {
		s.limiter = NoLoginLimit{}
	}
	if s.recorder == nil {
		s.recorder = audit.Discard{}
	}
	if s.permTTL == 0 {
		s.permTTL = 5 * time.Second
	}
	permSize := permCacheSize
	if s.permTTL < 0 {
		permSize = 0
	}
	s.perms = newLRU[permKey, rbac.Set](permSize)
	s.identities = newLRU[identityKey, Principal](permSize)
	if s.service == "" {
		s.service = "customs"
	}
	issuer := opts.Issuer
	if issuer == "" {
		issuer = "customs"
	}
	if s.tokenTTL == 0 {
		s.tokenTTL = 5 * time.Minute
	}
	if s.tokenTTL < time.Minute {
		return nil, apperr.Errorf(apperr.EINVALID, "auth: TokenTTL %s is shorter than 1m", s.tokenTTL)
	}
	if s.refreshTTL == 0 {
		s.refreshTTL = 90 * 24 * time.Hour
	}
	if s.refreshTTL < s.tokenTTL {
		return nil, apperr.Errorf(apperr.EINVALID, "auth: RefreshTTL %s is shorter than TokenTTL", s.refreshTTL)
	}
	if opts.ExternalURL != "" {
		u, err := url.Parse(opts.ExternalURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, apperr.Errorf(apperr.EINVALID, "auth: ExternalURL %q is not an http(s) base URL", opts.ExternalURL)
		}
		s.externalURL = strings.TrimRight(u.String(), "/")
	}
	if s.params == (PasswordParams{}) {
		s.params = DefaultPasswordParams()
	}
	if err := s.params.validate(); err != nil {
		return nil, apperr.Wrap(err, apperr.EINVALID, "auth: invalid PasswordParams")
	}
	if s.credTTL == 0 {
		s.credTTL = time.Minute
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if _, err := rand.Read(s.credSecret[:]); err != nil {
		return nil, apperr.Wrap(err, apperr.EINTERNAL, "auth: no randomness")
	}
	credSize := credCacheSize
	if s.credTTL < 0 {
		credSize = 0
	}
	s.creds = newLRU[[32]byte, struct{}](credSize)
	s.verified = newLRU[[32]byte, verifiedToken](tokenCacheSize)
	s.sessionsOK = newLRU[[32]byte, verifiedSession](tokenCacheSize)
	s.tokens = newTokens(opts.Keys, s.service, issuer, s.clock)
	return s, nil
}

// Authenticate returns who made r: from a bearer token issued by this
// service (a token principal granted exactly the token's access), from Basic
// credentials (a user), or Anonymous without an Authorization header. Bad
// credentials, an invalid token or an unsupported scheme are EUNAUTHORIZED.
// A bearer token is not checked against the store again: disabling a user
// stops their access tokens within TokenTTL, their refresh tokens at once.
func (s *Service) Authenticate(r *http.Request) (Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Anonymous, nil
	}
	scheme, rest := parseAuthorization(h)
	switch scheme {
	case "bearer":
		return s.bearer(rest)
	case "basic":
		user, pass, err := parseBasic(rest)
		if err != nil {
			return Principal{}, err
		}
		p, _, err := s.login(r.Context(), r, user, pass)
		return p, err
	}
	return Principal{}, apperr.Errorf(apperr.EUNAUTHORIZED, "unsupported authorization scheme")
}

// bearer verifies an access token, consulting and filling the cache of
// verified tokens.
func (s *Service) bearer(token string) (Principal, error) {
	if token == "" {
		return Principal{}, apperr.Errorf(apperr.EUNAUTHORIZED, "empty bearer token")
	}
	key := sha256.Sum256([]byte(token))
	now := s.clock()
	if v, ok := s.verified.get(key, now); ok {
		// The key that signed it must still be trusted (it may have been
		// removed after a compromise).
		if _, err := s.tokens.keys.PublicKey(v.kid); err == nil {
			return v.principal, nil
		}
	}
	c, kid, err := s.tokens.verify(token, useAccess)
	if err != nil {
		s.logger.Debug("bearer token rejected", "err", err)
		return Principal{}, err
	}
	p := Principal{Kind: c.Kind, Name: c.Subject, Token: true, Granted: c.Access}
	s.verified.put(key, verifiedToken{principal: p, kid: kid}, c.ExpiresAt.Add(clockSkew))
	return p, nil
}

// login checks a user's name and password, or a robot's name and secret,
// and returns the identity's principal and what refresh tokens are bound
// to (the stored credential hash; for users with their session
// generation, see userCred). Every failure is EUNAUTHORIZED with
// one message, whatever the reason (logged and audited); a store failure is
// EUNAVAILABLE; a refusal by the limiter is its error (audited).
func (s *Service) login(ctx context.Context, r *http.Request, name, password string) (Principal, string, error) {
	remote := s.remoteAddr(r)
	kind := KindUser
	if IsRobotName(name) {
		kind = KindRobot
	}
	if err := s.limiter.Allow(ctx, name, remote); err != nil {
		s.logger.Warn("login refused by limiter", "user", name, "remote", remote, "err", err)
		s.auditLogin(ctx, r, kind, name, audit.Denied, "too many failed logins")
		return Principal{}, "", err
	}
	fail := func(reason string) (Principal, string, error) {
		s.limiter.Done(ctx, name, remote, false)
		s.logger.Info("login failed", "user", name, "remote", remote, "reason", reason)
		s.auditLogin(ctx, r, kind, name, audit.Failure, reason)
		return Principal{}, "", apperr.Errorf(apperr.EUNAUTHORIZED, msgBadLogin)
	}
	if name == "" || password == "" {
		return fail("empty user name or password")
	}
	if kind == KindRobot {
		return s.loginRobot(ctx, r, name, password, remote, fail)
	}
	u, err := s.users.User(ctx, name)
	if apperr.Is(err, apperr.ENOTFOUND) {
		if s.directory != nil {
			return s.loginDirectory(ctx, r, name, password, nil, remote)
		}
		s.burnHash(ctx, password) // as slow as a wrong password, so names cannot be probed
		return fail("no such user")
	}
	if err != nil {
		s.logger.Error("login: cannot read user", "user", name, "err", err)
		return Principal{}, "", apperr.Wrap(err, apperr.EUNAVAILABLE, "cannot check credentials now")
	}
	if u.Disabled {
		return fail("account disabled")
	}
	if u.Source == store.SourceLDAP {
		return s.loginDirectory(ctx, r, name, password, u, remote)
	}
	if u.PasswordHash == "" {
		return fail("no local password (" + u.Source + " user)")
	}
	key := s.credKey(name, password, u.PasswordHash)
	if _, ok := s.creds.get(key, s.clock()); !ok {
		ok, rehash, err := s.hashes.verify(ctx, key, u.PasswordHash, password, s.params)
		if apperr.Is(err, apperr.EUNAVAILABLE) {
			return Principal{}, "", err
		}
		if err != nil {
			s.logger.Error("login: stored password hash unusable", "user", name, "err", err)
			return fail("stored password hash unusable")
		}
		if !ok {
			return fail("wrong password")
		}
		if rehash {
			s.upgradeHash(ctx, u, password)
			key = s.credKey(name, password, u.PasswordHash)
		}
		s.creds.put(key, struct{}{}, s.clock().Add(s.credTTL))
		s.auditLogin(ctx, r, kind, name, audit.Success, "")
	}
	s.limiter.Done(ctx, name, remote, true)
	return Principal{Kind: KindUser, Name: u.Name, Admin: u.Admin}, userCred(u), nil
}

// loginRobot checks a robot's secret; see login.
func (s *Service) loginRobot(ctx context.Context, r *http.Request, name, secret, remote string,
	fail func(string) (Principal, string, error)) (Principal, string, error) {
	if s.robots == nil {
		return fail("robot accounts are not enabled")
	}
	rb, err := s.robots.Robot(ctx, name)
	if apperr.Is(err, apperr.ENOTFOUND) {
		return fail("no such robot")
	}
	if err != nil {
		s.logger.Error("login: cannot read robot", "robot", name, "err", err)
		return Principal{}, "", apperr.Wrap(err, apperr.EUNAVAILABLE, "cannot check credentials now")
	}
	if why := robotUnusable(rb, s.clock()); why != "" {
		return fail(why)
	}
	key := s.credKey(name, secret, rb.SecretHash)
	if _, ok := s.creds.get(key, s.clock()); !ok {
		if !verifyRobotSecret(s.pepper, name, secret, rb.SecretHash) {
			return fail("wrong secret")
		}
		s.creds.put(key, struct{}{}, s.clock().Add(s.credTTL))
		s.auditLogin(ctx, r, KindRobot, name, audit.Success, "")
	}
	s.limiter.Done(ctx, name, remote, true)
	return Principal{Kind: KindRobot, Name: rb.Name}, rb.SecretHash, nil
}

// upgradeHash re-hashes a correct password with the current parameters and
// saves it if the stored hash has not changed meanwhile. Failure is logged
// only: the login itself succeeded.
func (s *Service) upgradeHash(ctx context.Context, u *store.User, password string) {
	h, err := HashPassword(password, s.params)
	if err != nil {
		s.logger.Error("password rehash failed", "user", u.Name, "err", err)
		return
	}
	// Re-read so that a concurrent change (disabling, another password) is
	// not overwritten with the values read before the slow hash.
	cur, err := s.users.User(ctx, u.Name)
	if err != nil || cur.PasswordHash != u.PasswordHash {
		return
	}
	cur.PasswordHash = h
	if err := s.users.UpdateUser(ctx, cur); err != nil {
		s.logger.Error("password rehash not saved", "user", u.Name, "err", err)
		return
	}
	u.PasswordHash = h
	s.logger.Info("password hash upgraded", "user", u.Name)
}

// credKey is the credential cache key: an HMAC, under a per-process secret,
// of the user name, the password and the stored hash it was verified
// against, so that a wrong password or a changed hash can never hit.
func (s *Service) credKey(name, password, storedHash string) [32]byte {
	m := hmac.New(sha256.New, s.credSecret[:])
	var n [8]byte
	for _, f := range []string{name, password, storedHash} {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		m.Write(n[:])
		m.Write([]byte(f))
	}
	var k [32]byte
	m.Sum(k[:0])
	return k
}

// burnHash spends the time of one password verification.
func (s *Service) burnHash(ctx context.Context, password string) {
	s.dummyOnce.Do(func() {
		s.dummyHash, _ = HashPassword("customs-no-such-user", s.params)
	})
	if s.dummyHash != "" {
		s.hashes.burn(ctx, func() { _, _, _ = VerifyPassword(s.dummyHash, password, s.params) })
	}
}

// Authorize returns nil if p may perform every action of a. A token
// principal is checked against its token's grants only. Denials are
// EUNAUTHORIZED "authentication required" for anonymous principals,
// EUNAUTHORIZED with Detail "DENIED" for other token principals (the client
// may fetch a token for the challenged scope), and EDENIED for principals
// authenticated by password.
func (s *Service) Authorize(ctx context.Context, p Principal, a Access) error {
	if len(a.Actions) == 0 {
		return apperr.Errorf(apperr.EINTERNAL, "no action to authorize on %s", a.Name)
	}
	if p.Token {
		for _, act := range a.Actions {
			if !allows(p.Granted, a.Type, a.Name, act) {
				return denial(p, a, act)
			}
		}
		return nil
	}
	got, err := s.cachedPermitted(ctx, p, a)
	if err != nil {
		s.logger.Error("authorization failed", "principal", p.Name, "scope", a.String(), "err", err)
		return asAppErr(err, "cannot check permissions now")
	}
	for _, act := range a.Actions {
		if !slices.Contains(got, act) {
			return denial(p, a, act)
		}
	}
	return nil
}

// denial is the error refusing act on a to p. Its message starts with the
// words registry clients know, "requested access to the resource is
// denied", and says who may not do what.
func denial(p Principal, a Access, act string) error {
	if p.Kind == KindAnonymous {
		return apperr.Errorf(apperr.EUNAUTHORIZED, msgAuthRequired)
	}
	what := a.Type + " " + a.Name
	switch {
	case a.Type == TypeRegistry:
		what = "use the registry's " + a.Name
	case act == ActionPull:
		what = "pull from " + a.Name
	case act == ActionPush:
		what = "push to " + a.Name
	case act == ActionDelete:
		what = "delete in " + a.Name
	case act == ActionAll:
		what = "have full access to " + a.Name
	}
	msg := msgDenied + ": " + p.Name + " may not " + what
	if p.Token {
		return apperr.Errorf(apperr.EUNAUTHORIZED, "%s", msg).WithDetail("DENIED")
	}
	return apperr.Errorf(apperr.EDENIED, "%s", msg)
}

// Entitled reports whether the identity behind p may perform action on
// repository repo now, whatever p's token grants. Errors (an unknown or
// disabled user, a store failure) count as no.
func (s *Service) Entitled(ctx context.Context, p Principal, repo, action string) bool {
	id, err := s.cachedIdentity(ctx, p)
	if err != nil {
		s.logger.Debug("entitlement check failed", "principal", p.Name, "err", err)
		return false
	}
	got, err := s.cachedPermitted(ctx, id, Access{Type: TypeRepository, Name: repo, Actions: []string{action}})
	if err != nil {
		s.logger.Error("entitlement check failed", "principal", p.Name, "repo", repo, "err", err)
		return false
	}
	return slices.Contains(got, action)
}

// identity returns the principal behind p, without token limits: for a token
// issued to a user, the user as the store knows them now.
func (s *Service) identity(ctx context.Context, p Principal) (Principal, error) {
	if !p.Token {
		return p, nil
	}
	switch p.Kind {
	case KindAnonymous:
		return Anonymous, nil
	case KindUser:
		u, err := s.users.User(ctx, p.Name)
		if err != nil {
			return Principal{}, err
		}
		if u.Disabled {
			return Principal{}, apperr.Errorf(apperr.EUNAUTHORIZED, "account disabled")
		}
		return Principal{Kind: KindUser, Name: u.Name, Admin: u.Admin}, nil
	case KindRobot:
		if s.robots == nil {
			return Principal{}, apperr.Errorf(apperr.EUNAUTHORIZED, "robot accounts are not enabled")
		}
		rb, err := s.robots.Robot(ctx, p.Name)
		if err != nil {
			return Principal{}, err
		}
		if why := robotUnusable(rb, s.clock()); why != "" {
			return Principal{}, apperr.Errorf(apperr.EUNAUTHORIZED, "%s", why)
		}
		return Principal{Kind: KindRobot, Name: rb.Name}, nil
	}
	return Principal{Kind: p.Kind, Name: p.Name}, nil
}

// identityKey names a token principal's identity in the identity cache.
type identityKey struct {
	kind Kind
	name string
}

// cachedIdentity is identity with its answers remembered for
// PermissionCacheTTL, as the permission decisions they feed are: Entitled
// runs on every manifest and blob GET (does the puller have push rights,
// which bypass the pull door?), and reading the user or robot each time was
// the largest part of a pull's server CPU. Failures are not remembered, and
// ForgetPermissions forgets the rest (a user disabled through this replica
// loses push rights at once; on others within PermissionCacheTTL).
func (s *Service) cachedIdentity(ctx context.Context, p Principal) (Principal, error) {
	if !p.Token || p.Kind == KindAnonymous {
		return s.identity(ctx, p)
	}
	k := identityKey{kind: p.Kind, name: p.Name}
	now := s.clock()
	if id, ok := s.identities.get(k, now); ok {
		return id, nil
	}
	id, err := s.identity(ctx, p)
	if err != nil {
		return Principal{}, err
	}
	s.identities.put(k, id, now.Add(s.permTTL))
	return id, nil
}

// cachedPermitted is permitted with the project permissions of the
// identity remembered for PermissionCacheTTL.
func (s *Service) cachedPermitted(ctx context.Context, p Principal, a Access) ([]string, error) {
	return permitted(ctx, cachingAuthorizer{s}, p, a)
}

// cachingAuthorizer puts the Service's permission cache in front of its
// Authorizer.
type cachingAuthorizer struct{ s *Service }

// ProjectPermissions implements Authorizer.
func (c cachingAuthorizer) ProjectPermissions(ctx context.Context, p Principal, project string) (rbac.Set, error) {
	k := permKey{kind: p.Kind, name: p.Name, admin: p.Admin, project: project}
	now := c.s.clock()
	if set, ok := c.s.perms.get(k, now); ok {
		return set, nil
	}
	set, err := c.s.authz.ProjectPermissions(ctx, p, project)
	if err != nil {
		return 0, err
	}
	c.s.perms.put(k, set, now.Add(c.s.permTTL))
	return set, nil
}

// ForgetPermissions drops every cached permission decision, so that a
// change of memberships, roles or robots made through this replica applies
// to its next Basic-authenticated request at once (other replicas see it
// within PermissionCacheTTL).
func (s *Service) ForgetPermissions() {
	s.perms.clear()
	s.identities.clear()
}

// auditLogin records a login attempt.
func (s *Service) auditLogin(ctx context.Context, r *http.Request, kind Kind, name string, outcome audit.Outcome, reason string) {
	resource := "user:" + name
	if kind == KindRobot {
		resource = "robot:" + name
	}
	s.recorder.Record(ctx, audit.Event{
		Time: s.clock(), ActorKind: string(kind), Actor: name, ClientIP: s.remoteAddr(r), UserAgent: r.UserAgent(),
		Action: ActionLogin, Resource: resource, Outcome: outcome, Reason: reason,
	})
}

// Audit actions of the package.
const (
	ActionLogin      = "user.login"  // a password or robot secret was checked
	ActionTokenIssue = "token.issue" // the token service issued an access token
)

// Challenge returns the WWW-Authenticate value that sends a client to the
// token endpoint for scopes:
// Bearer realm="<base>/service/token",service="<service>",scope="<scope> <scope>".
func (s *Service) Challenge(r *http.Request, scopes ...Access) string {
	var b strings.Builder
	b.WriteString(`Bearer realm=`)
	b.WriteString(quoteParam(s.baseURL(r) + "/service/token"))
	b.WriteString(`,service=`)
	b.WriteString(quoteParam(s.service))
	if len(scopes) > 0 {
		b.WriteString(`,scope=`)
		b.WriteString(quoteParam(FormatScopes(scopes)))
	}
	return b.String()
}

// baseURL is ExternalURL, or the scheme and host the request was made to.
func (s *Service) baseURL(r *http.Request) string {
	if s.externalURL != "" {
		return s.externalURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if s.trustProxy {
		if p := strings.ToLower(firstValue(r.Header.Get("X-Forwarded-Proto"))); p == "http" || p == "https" {
			scheme = p
		}
		if h := firstValue(r.Header.Get("X-Forwarded-Host")); validHost(h) {
			host = h
		}
	}
	if !validHost(host) {
		host = "localhost"
	}
	return scheme + "://" + host
}

// remoteAddr is the client's IP address, for logs and the login limiter.
func (s *Service) remoteAddr(r *http.Request) string {
	if s.trustProxy {
		if f := firstValue(r.Header.Get("X-Forwarded-For")); net.ParseIP(f) != nil {
			return f
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// firstValue returns the first element of a comma-separated header value.
func firstValue(v string) string {
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
}

// validHost reports whether h looks like host[:port], with nothing that
// could break out of a quoted header parameter or a URL authority.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_') {
			return false
		}
	}
	return true
}

// quoteParam quotes v as an HTTP auth-param quoted-string.
func quoteParam(v string) string {
	v = strings.ReplaceAll(v, `\`, `\\`)
	return `"` + strings.ReplaceAll(v, `"`, `\"`) + `"`
}

// parseAuthorization splits an Authorization header into its lowercased
// scheme and the rest, trimmed.
func parseAuthorization(h string) (scheme, rest string) {
	scheme, rest, _ = strings.Cut(strings.TrimSpace(h), " ")
	return strings.ToLower(scheme), strings.TrimSpace(rest)
}

// parseBasic decodes Basic credentials ("base64(user:password)").
func parseBasic(v string) (user, password string, err error) {
	raw, err := base64.StdEncoding.Strict().DecodeString(v)
	if err != nil {
		return "", "", apperr.Errorf(apperr.EUNAUTHORIZED, "malformed Basic credentials")
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if !ok || user == "" {
		return "", "", apperr.Errorf(apperr.EUNAUTHORIZED, "malformed Basic credentials")
	}
	return user, password, nil
}

// asAppErr returns err if it is an *apperr.Error, else wraps it as
// EUNAVAILABLE with message.
func asAppErr(err error, message string) error {
	var e *apperr.Error
	if errors.As(err, &e) {
		return err
	}
	return apperr.Wrap(err, apperr.EUNAVAILABLE, message)
}

// RefreshTTL returns the lifetime of refresh tokens, the longest-lived
// tokens the service signs: a retired signing key is kept at least this
// long.
func (s *Service) RefreshTTL() time.Duration { return s.refreshTTL }
