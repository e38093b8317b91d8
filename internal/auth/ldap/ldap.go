// Package ldap checks passwords against an LDAP directory (OpenLDAP,
// Active Directory, ...) and reads its users' groups, for the auth
// service's directory logins.
//
// A login is: connect (StartTLS if asked), bind as the service account,
// search the user with the configured filter ({username} escaped as RFC
// 4515 says, so a name cannot change the filter), require exactly one
// entry, bind as that entry with the password (an empty password is
// refused first: LDAP servers take it as an anonymous bind and answer
// success), bind as the service account again and collect the user's
// groups. Every step shares one deadline, so an unreachable or stuck
// server fails the login within the configured timeout.
package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/config"
)

// maxNameLen bounds a login name sent to the directory.
const maxNameLen = 256

// maxGroups bounds the groups read for one user.
const maxGroups = 1000

// Directory is an LDAP directory. It implements auth.Directory and is safe
// for concurrent use (each call opens its own connection).
type Directory struct {
	cfg     config.LDAP
	tls     *tls.Config
	timeout time.Duration
	logger  *slog.Logger
}

var _ auth.Directory = (*Directory)(nil)

// New returns the directory cfg describes (cfg must have passed
// config.Validate). It reads cfg.CAFile; it does not connect.
func New(cfg config.LDAP, logger *slog.Logger) (*Directory, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
		return nil, fmt.Errorf("auth.ldap.url: %q is not an ldap:// or ldaps:// URL", cfg.URL)
	}
	tc := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("auth.ldap.caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("auth.ldap.caFile: %s holds no PEM certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	timeout := cfg.Timeout.Std()
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &Directory{cfg: cfg, tls: tc, timeout: timeout, logger: logger}, nil
}

// Authenticate implements auth.Directory.
func (d *Directory) Authenticate(ctx context.Context, name, password string) (*auth.DirectoryUser, error) {
	if password == "" {
		// An LDAP simple bind with a DN and no password is an
		// unauthenticated bind, which servers answer with success.
		return nil, apperr.Errorf(apperr.EUNAUTHORIZED, "empty password")
	}
	var out *auth.DirectoryUser
	err := d.do(ctx, func(c *goldap.Conn) error {
		entry, err := d.findUser(c, name)
		if err != nil {
			return err
		}
		if err := c.Bind(entry.DN, password); err != nil {
			if rejectedBind(err) {
				return apperr.Errorf(apperr.EUNAUTHORIZED, "wrong password (%s)", resultName(err))
			}
			return err
		}
		if err := d.bindService(c); err != nil {
			return err
		}
		out, err = d.user(c, entry)
		return err
	})
	return out, err
}

// Lookup implements auth.Directory.
func (d *Directory) Lookup(ctx context.Context, name string) (*auth.DirectoryUser, error) {
	var out *auth.DirectoryUser
	err := d.do(ctx, func(c *goldap.Conn) error {
		entry, err := d.findUser(c, name)
		if apperr.Is(err, apperr.EUNAUTHORIZED) {
			return apperr.Errorf(apperr.ENOTFOUND, "%s", apperr.Message(err))
		}
		if err != nil {
			return err
		}
		out, err = d.user(c, entry)
		return err
	})
	return out, err
}

// do runs fn on a connection bound as the service account, all within the
// timeout: when it passes, the connection is closed, which ends whatever
// was waiting on it. Errors that are not an *apperr.Error become
// EUNAVAILABLE (logged in full, with a short message for clients).
func (d *Directory) do(ctx context.Context, fn func(*goldap.Conn) error) error {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	err := d.session(ctx, fn)
	if err == nil {
		return nil
	}
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return err
	}
	msg := "the LDAP directory cannot be reached"
	var ne net.Error
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		msg = fmt.Sprintf("the LDAP directory did not answer within %s", d.timeout)
	} else if le := new(goldap.Error); errors.As(err, &le) && le.ResultCode < goldap.ErrorNetwork {
		msg = "the LDAP directory refused the request (" + resultName(err) + ")"
	}
	d.logger.Error("ldap", "url", d.cfg.URL, "err", err)
	return apperr.Wrap(err, apperr.EUNAVAILABLE, msg)
}

func (d *Directory) session(ctx context.Context, fn func(*goldap.Conn) error) error {
	dialer := &net.Dialer{Timeout: d.timeout}
	if dl, ok := ctx.Deadline(); ok {
		dialer.Deadline = dl
	}
	c, err := goldap.DialURL(d.cfg.URL, goldap.DialWithDialer(dialer), goldap.DialWithTLSConfig(d.tls))
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	// The deadline of ctx ends the conversation; the per-request timeout
	// is only a backstop.
	c.SetTimeout(d.timeout + time.Second)
	if d.cfg.StartTLS {
		if err := c.StartTLS(d.tls); err != nil {
			return fmt.Errorf("StartTLS: %w", err)
		}
	}
	if err := d.bindService(c); err != nil {
		return err
	}
	if err := fn(c); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return err
	}
	return nil
}

// bindService binds as the service account, or does nothing for an
// anonymous configuration. A refused bind is a configuration problem.
func (d *Directory) bindService(c *goldap.Conn) error {
	if d.cfg.BindDN == "" {
		return nil
	}
	if err := c.Bind(d.cfg.BindDN, d.cfg.BindPassword); err != nil {
		if rejectedBind(err) {
			d.logger.Error("ldap: the service account cannot bind; check auth.ldap.bindDN and auth.ldap.bindPassword",
				"bindDN", d.cfg.BindDN, "err", err)
			return apperr.Wrap(err, apperr.EUNAVAILABLE, "the LDAP directory refused customs' service account")
		}
		return err
	}
	return nil
}

// findUser searches the one entry of login name.
func (d *Directory) findUser(c *goldap.Conn, name string) (*goldap.Entry, error) {
	if name == "" || len(name) > maxNameLen {
		return nil, apperr.Errorf(apperr.EUNAUTHORIZED, "no such user in the directory (name empty or too long)")
	}
	filter := d.userFilter(name)
	attrs := []string{d.cfg.UIDAttribute}
	if d.cfg.GroupMembershipAttribute != "" {
		attrs = append(attrs, d.cfg.GroupMembershipAttribute)
	}
	res, err := c.Search(goldap.NewSearchRequest(d.cfg.BaseDN, goldap.ScopeWholeSubtree, goldap.DerefAlways,
		2, int(d.timeout/time.Second)+1, false, filter, attrs, nil))
	switch {
	case goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded):
		d.logger.Warn("ldap: several entries match one login name; check auth.ldap.userFilter", "name", name, "filter", filter)
		return nil, apperr.Errorf(apperr.EUNAUTHORIZED, "several directory entries match the name")
	case goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject):
		d.logger.Error("ldap: the base DN does not exist or the search account may not see it; check auth.ldap.baseDN and auth.ldap.bindDN",
			"baseDN", d.cfg.BaseDN, "bindDN", d.cfg.BindDN)
		return nil, apperr.Wrap(err, apperr.EUNAVAILABLE, "LDAP login is misconfigured: the user search base is not visible")
	case err != nil:
		return nil, err
	case len(res.Entries) == 0:
		return nil, apperr.Errorf(apperr.EUNAUTHORIZED, "no such user in the directory")
	case len(res.Entries) > 1:
		d.logger.Warn("ldap: several entries match one login name; check auth.ldap.userFilter", "name", name, "filter", filter)
		return nil, apperr.Errorf(apperr.EUNAUTHORIZED, "several directory entries match the name")
	}
	e := res.Entries[0]
	if e.GetEqualFoldAttributeValue(d.cfg.UIDAttribute) == "" {
		d.logger.Warn("ldap: the user entry has no login name attribute; check auth.ldap.uidAttribute", "dn", e.DN, "attribute", d.cfg.UIDAttribute)
		return nil, apperr.Errorf(apperr.EUNAUTHORIZED, "the directory entry has no %s", d.cfg.UIDAttribute)
	}
	return e, nil
}

// userFilter returns the user search filter for login name: the
// configured filter with {username} replaced by name escaped (RFC 4515), so
// that whatever name holds stays one assertion value.
func (d *Directory) userFilter(name string) string {
	return strings.ReplaceAll(d.cfg.UserFilter, "{username}", goldap.EscapeFilter(name))
}

// user returns the directory user of entry e with their groups.
func (d *Directory) user(c *goldap.Conn, e *goldap.Entry) (*auth.DirectoryUser, error) {
	uid := e.GetEqualFoldAttributeValue(d.cfg.UIDAttribute)
	var groups, groupDNs []string
	if a := d.cfg.GroupMembershipAttribute; a != "" {
		for _, dn := range e.GetEqualFoldAttributeValues(a) {
			groups = append(groups, d.groupNameOfDN(dn))
			groupDNs = append(groupDNs, dn)
		}
	}
	if d.cfg.GroupBaseDN != "" {
		filter := strings.NewReplacer("{dn}", goldap.EscapeFilter(e.DN), "{username}", goldap.EscapeFilter(uid)).Replace(d.cfg.GroupFilter)
		entries, err := d.searchGroups(c, filter, maxGroups, e.DN)
		if err != nil {
			return nil, err
		}
		for _, g := range entries {
			if n := g.GetEqualFoldAttributeValue(d.cfg.GroupNameAttribute); n != "" {
				groups = append(groups, n)
			}
			groupDNs = append(groupDNs, g.DN)
		}
	}
	if d.cfg.NestedGroups && d.cfg.GroupBaseDN != "" {
		more, err := d.nestedGroups(c, e.DN, groupDNs, len(groups))
		if err != nil {
			return nil, err
		}
		groups = append(groups, more...)
	}
	return &auth.DirectoryUser{Name: uid, ExternalID: e.DN, Groups: dedupe(groups)}, nil
}

// searchGroups runs filter under GroupBaseDN for at most limit groups
// (their name attribute and DN). A directory holding more answers the
// first limit, logged as a warning about user DN userDN.
func (d *Directory) searchGroups(c *goldap.Conn, filter string, limit int, userDN string) ([]*goldap.Entry, error) {
	res, err := c.Search(goldap.NewSearchRequest(d.cfg.GroupBaseDN, goldap.ScopeWholeSubtree, goldap.DerefAlways,
		limit, int(d.timeout/time.Second)+1, false, filter, []string{d.cfg.GroupNameAttribute}, nil))
	if goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) && res != nil {
		d.logger.Warn("ldap: user has more groups than customs reads", "dn", userDN, "max", maxGroups)
		err = nil
	}
	if err != nil {
		return nil, err
	}
	return res.Entries, nil
}

// nestedBatch is how many groups one nested-group search asks about (an
// OR of NestedGroupFilter per group), so a level of many groups is a few
// searches rather than one per group, with filters of bounded size.
const nestedBatch = 50

// nestedGroups returns the names of the groups that contain, directly or
// through other groups, one of the groups whose DNs are direct (the
// user's own groups; have is how many group names the user already has): breadth first, one level at a
// time up to NestedGroupsDepth levels, each group DN searched once (so a
// cycle ends), and never more than maxGroups groups in all.
func (d *Directory) nestedGroups(c *goldap.Conn, userDN string, direct []string, have int) ([]string, error) {
	seen := make(map[string]bool, len(direct))
	var level []string
	for _, dn := range direct {
		if k := dnKey(dn); !seen[k] {
			seen[k] = true
			level = append(level, dn)
		}
	}
	var names []string
	for depth := 1; depth <= d.cfg.NestedGroupsDepth && len(level) > 0; depth++ {
		var next []string
		for start := 0; start < len(level); start += nestedBatch {
			batch := level[start:min(start+nestedBatch, len(level))]
			var f strings.Builder
			f.WriteString("(|")
			for _, dn := range batch {
				f.WriteString(strings.ReplaceAll(d.cfg.NestedGroupFilter, "{dn}", goldap.EscapeFilter(dn)))
			}
			f.WriteString(")")
			left := maxGroups - have - len(names)
			if left <= 0 {
				d.logger.Warn("ldap: user has more groups than customs reads", "dn", userDN, "max", maxGroups)
				return names, nil
			}
			entries, err := d.searchGroups(c, f.String(), left, userDN)
			if err != nil {
				return nil, err
			}
			for _, g := range entries {
				k := dnKey(g.DN)
				if seen[k] {
					continue
				}
				seen[k] = true
				next = append(next, g.DN)
				if n := g.GetEqualFoldAttributeValue(d.cfg.GroupNameAttribute); n != "" {
					names = append(names, n)
				}
			}
		}
		if depth == d.cfg.NestedGroupsDepth && len(next) > 0 {
			d.logger.Debug("ldap: nested groups cut at the depth limit", "dn", userDN, "depth", depth)
		}
		level = next
	}
	return names, nil
}

// dnKey is the form of a DN two spellings of one entry share: parsed
// and re-joined with lowercased attribute types and values (LDAP compares
// the usual naming attributes without regard to case), or the lowercased
// text when it does not parse.
func dnKey(dn string) string {
	parsed, err := goldap.ParseDN(dn)
	if err != nil {
		return strings.ToLower(dn)
	}
	var b strings.Builder
	for i, rdn := range parsed.RDNs {
		if i > 0 {
			b.WriteByte(',')
		}
		for j, a := range rdn.Attributes {
			if j > 0 {
				b.WriteByte('+')
			}
			b.WriteString(strings.ToLower(a.Type))
			b.WriteByte('=')
			b.WriteString(goldap.EscapeDN(strings.ToLower(a.Value)))
		}
	}
	return b.String()
}

// dedupe returns names without repeats, in first-seen order.
func dedupe(names []string) []string {
	seen := make(map[string]bool, len(names))
	out := names[:0]
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// groupNameOfDN names the group of DN dn: the value of its first RDN when
// that is the group name attribute (cn=devs,ou=groups,... is "devs"),
// else the whole DN.
func (d *Directory) groupNameOfDN(dn string) string {
	parsed, err := goldap.ParseDN(dn)
	if err != nil || len(parsed.RDNs) == 0 || len(parsed.RDNs[0].Attributes) != 1 {
		return dn
	}
	a := parsed.RDNs[0].Attributes[0]
	if !strings.EqualFold(a.Type, d.cfg.GroupNameAttribute) {
		return dn
	}
	return a.Value
}

// rejectedBind reports whether err is the server refusing a bind's
// credentials (rather than failing to answer).
func rejectedBind(err error) bool {
	for _, code := range []uint16{
		goldap.LDAPResultInvalidCredentials,
		goldap.LDAPResultInappropriateAuthentication,
		goldap.LDAPResultUnwillingToPerform, // disabled accounts (Active Directory, ppolicy)
		goldap.LDAPResultInvalidDNSyntax,
	} {
		if goldap.IsErrorWithCode(err, code) {
			return true
		}
	}
	return false
}

// resultName returns the LDAP result code name of err, or its text.
func resultName(err error) string {
	var le *goldap.Error
	if errors.As(err, &le) {
		if s, ok := goldap.LDAPResultCodeMap[le.ResultCode]; ok {
			return s
		}
	}
	return err.Error()
}
