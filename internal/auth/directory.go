package auth

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/store"
)

// DirectoryUser is a user as an external directory knows them.
type DirectoryUser struct {
	// Name is the user's login name in the directory; lowercased, it is
	// their customs user name.
	Name string
	// ExternalID identifies the user in the directory (an LDAP DN).
	ExternalID string
	// Groups are the names of the directory groups the user belongs to.
	Groups []string
}

// Directory checks passwords against an external directory (LDAP) whose
// users become customs users of source store.SourceLDAP at their first
// login.
type Directory interface {
	// Authenticate checks name's password in the directory and returns
	// the user with their groups. It fails with EUNAUTHORIZED, whose
	// message says why for the logs, when the name is unknown or
	// ambiguous or the password is wrong or empty, and with EUNAVAILABLE
	// when the directory does not answer in time.
	Authenticate(ctx context.Context, name, password string) (*DirectoryUser, error)
	// Lookup returns the user the directory knows by name, with their
	// groups, without checking a password: ENOTFOUND if the directory no
	// longer has them, EUNAVAILABLE when it does not answer in time.
	Lookup(ctx context.Context, name string) (*DirectoryUser, error)
}

// GroupStore keeps the directory groups of LDAP and OIDC users (see
// store.GroupStore).
type GroupStore interface {
	// SetUserGroups replaces the named user's groups.
	SetUserGroups(ctx context.Context, user string, groups []string) error
	// UserGroups returns the named user's groups.
	UserGroups(ctx context.Context, user string) ([]string, error)
}

// Audit detail key naming where a login was checked: "local", "ldap",
// "oidc" (store.Source* values).
const DetailSource = "source"

// userNameRule is the rule of customs user names (see api.ValidateUserName),
// which names coming from directories must follow too.
var userNameRule = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9._@-]{0,126}[a-z0-9])?$`)

// ValidUserName reports whether name may be a customs user name: 1-128
// lowercase letters, digits, '.', '_', '@' or '-', starting and ending with
// a letter or digit.
func ValidUserName(name string) bool { return userNameRule.MatchString(name) }

// dirKeyPrefix separates the credential cache keys of directory logins
// (bound to the user's DN) from those of local passwords (bound to a hash).
const dirKeyPrefix = "directory\x00"

// loginDirectory checks the password of user name (u, or nil if customs
// does not know them yet) against the directory, creates or updates the
// user and their groups, and returns their principal. See login.
func (s *Service) loginDirectory(ctx context.Context, r *http.Request, name, password string, u *store.User, remote string) (Principal, string, error) {
	if s.directory == nil {
		if u == nil {
			s.burnHash(ctx, password)
			return s.failLogin(ctx, r, name, remote, "", "no such user")
		}
		return s.failLogin(ctx, r, name, remote, u.Source, "directory login is not configured")
	}
	if u != nil && s.dirTTL > 0 {
		key := s.credKey(name, password, dirKeyPrefix+u.ExternalID)
		if _, ok := s.creds.get(key, s.clock()); ok {
			s.limiter.Done(ctx, name, remote, true)
			return Principal{Kind: KindUser, Name: u.Name, Admin: u.Admin}, userCred(u), nil
		}
	}
	du, err := s.directory.Authenticate(ctx, name, password)
	if apperr.Is(err, apperr.EUNAUTHORIZED) {
		return s.failLogin(ctx, r, name, remote, store.SourceLDAP, apperr.Message(err))
	}
	if err != nil {
		s.logger.Error("login: the directory cannot check credentials", "user", name, "remote", remote, "err", err)
		s.auditLoginFrom(ctx, r, name, store.SourceLDAP, audit.Failure, "directory unavailable")
		return Principal{}, "", asAppErr(err, "the LDAP directory cannot check credentials now; try again later")
	}
	u, err = s.SyncExternalUser(ctx, store.SourceLDAP, du, nil)
	switch {
	case apperr.Is(err, apperr.ECONFLICT) || apperr.Is(err, apperr.EINVALID):
		return s.failLogin(ctx, r, name, remote, store.SourceLDAP, apperr.Message(err))
	case err != nil:
		s.logger.Error("login: cannot save directory user", "user", du.Name, "err", err)
		return Principal{}, "", asAppErr(err, "cannot check credentials now")
	case u.Disabled:
		return s.failLogin(ctx, r, name, remote, store.SourceLDAP, "account disabled")
	}
	if s.dirTTL > 0 {
		s.creds.put(s.credKey(name, password, dirKeyPrefix+u.ExternalID), struct{}{}, s.clock().Add(s.dirTTL))
	}
	s.limiter.Done(ctx, name, remote, true)
	s.auditLoginFrom(ctx, r, u.Name, store.SourceLDAP, audit.Success, "")
	return Principal{Kind: KindUser, Name: u.Name, Admin: u.Admin}, userCred(u), nil
}

// failLogin reports a failed password login of user name checked at
// source ("" when unknown): it tells the limiter, logs and audits the
// reason, and returns the one message clients see.
func (s *Service) failLogin(ctx context.Context, r *http.Request, name, remote, source, reason string) (Principal, string, error) {
	s.limiter.Done(ctx, name, remote, false)
	s.logger.Info("login failed", "user", name, "remote", remote, "source", source, "reason", reason)
	s.auditLoginFrom(ctx, r, name, source, audit.Failure, reason)
	return Principal{}, "", apperr.Errorf(apperr.EUNAUTHORIZED, msgBadLogin)
}

// auditLoginFrom records a user's login attempt checked at source.
func (s *Service) auditLoginFrom(ctx context.Context, r *http.Request, name, source string, outcome audit.Outcome, reason string) {
	var details map[string]string
	if source != "" {
		details = map[string]string{DetailSource: source}
	}
	kind, resource := string(KindUser), "user:"+name
	if name == "" {
		kind, resource = string(KindAnonymous), ""
	}
	s.recorder.Record(ctx, audit.Event{
		Time: s.clock(), ActorKind: kind, Actor: name, ClientIP: s.remoteAddr(r), UserAgent: r.UserAgent(),
		Action: ActionLogin, Resource: resource, Outcome: outcome, Reason: reason, Details: details,
	})
}

// AuditLogin records the login of user name through source (an OIDC
// login, which the Service does not see itself), with reason for a
// failure; name is "" when the login failed before the user was known.
func (s *Service) AuditLogin(r *http.Request, name, source string, outcome audit.Outcome, reason string) {
	s.auditLoginFrom(r.Context(), r, name, source, outcome, reason)
}

// SyncExternalUser creates or updates the customs user of a directory or
// OIDC user (source store.SourceLDAP or store.SourceOIDC) from du, saves
// their groups and, if admin is not nil, sets their administrator right.
// The user name is du.Name lowercased. It fails with EINVALID when that is
// not a valid user name, and with ECONFLICT when the name belongs to a
// user of another source or, for OIDC, to another identity of the
// provider (du.ExternalID differs): a directory can never take over an
// account it does not own. An LDAP user whose DN changed keeps their
// account (directories rename and move entries).
func (s *Service) SyncExternalUser(ctx context.Context, source string, du *DirectoryUser, admin *bool) (*store.User, error) {
	name := strings.ToLower(du.Name)
	if !ValidUserName(name) {
		return nil, apperr.Errorf(apperr.EINVALID, "the %s user name %q cannot be a customs user name (1-128 letters, digits, '.', '_', '@' or '-')", source, du.Name)
	}
	u, err := s.users.User(ctx, name)
	if apperr.Is(err, apperr.ENOTFOUND) {
		u = &store.User{Name: name, Source: source, ExternalID: du.ExternalID, Admin: admin != nil && *admin}
		err = s.users.CreateUser(ctx, u)
		if apperr.Is(err, apperr.ECONFLICT) { // created meanwhile: by the same user's other login, or a local one
			u, err = s.users.User(ctx, name)
		}
	}
	if err != nil {
		return nil, err
	}
	if u.Source != source {
		return nil, apperr.Errorf(apperr.ECONFLICT, "user name %q is taken by a %s account", name, u.Source)
	}
	changed := false
	if u.ExternalID != du.ExternalID {
		if source != store.SourceLDAP {
			return nil, apperr.Errorf(apperr.ECONFLICT, "user name %q belongs to another %s identity (%s)", name, source, u.ExternalID)
		}
		s.logger.Info("directory user moved", "user", name, "from", u.ExternalID, "to", du.ExternalID)
		u.ExternalID, changed = du.ExternalID, true
	}
	if admin != nil && u.Admin != *admin {
		s.logger.Info("administrator right changed by directory group", "user", name, "admin", *admin)
		u.Admin, changed = *admin, true
	}
	if changed {
		if err := s.users.UpdateUser(ctx, u); err != nil {
			return nil, err
		}
	}
	if s.userGroups != nil {
		groups := slices.Clone(du.Groups)
		slices.Sort(groups)
		groups = slices.Compact(groups)
		old, err := s.userGroups.UserGroups(ctx, name)
		if err != nil {
			return nil, err
		}
		if !slices.Equal(old, groups) {
			if err := s.userGroups.SetUserGroups(ctx, name, groups); err != nil {
				return nil, err
			}
			s.ForgetPermissions()
		}
	}
	if changed {
		s.ForgetPermissions()
	}
	return u, nil
}

// recheckDirectoryUser confirms, when a refresh token of LDAP user u is
// redeemed, that the directory still has them, and refreshes their groups.
// Answers are remembered like directory logins. It fails with
// EUNAUTHORIZED when the directory no longer has the user (or LDAP login
// is off) and EUNAVAILABLE when it cannot tell.
func (s *Service) recheckDirectoryUser(ctx context.Context, u *store.User) error {
	if s.directory == nil {
		return apperr.Errorf(apperr.EUNAUTHORIZED, "directory login is not configured")
	}
	key := s.credKey(u.Name, "", "lookup\x00"+u.ExternalID)
	if _, ok := s.creds.get(key, s.clock()); ok {
		return nil
	}
	du, err := s.directory.Lookup(ctx, u.Name)
	if apperr.Is(err, apperr.ENOTFOUND) {
		return apperr.Errorf(apperr.EUNAUTHORIZED, "the directory no longer has user %q", u.Name)
	}
	if err != nil {
		return err
	}
	if strings.ToLower(du.Name) != u.Name {
		return apperr.Errorf(apperr.EUNAUTHORIZED, "the directory knows %q as %q now", u.Name, du.Name)
	}
	if _, err := s.SyncExternalUser(ctx, store.SourceLDAP, du, nil); err != nil {
		return err
	}
	if s.dirTTL > 0 {
		s.creds.put(key, struct{}{}, s.clock().Add(s.dirTTL))
	}
	return nil
}
