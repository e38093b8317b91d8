package config

import (
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// LDAP configures login with the passwords of an LDAP directory (OpenLDAP,
// Active Directory, ...). Users who are not local accounts are looked up in
// the directory with a service account, then authenticated by binding as
// themselves; their groups give them the roles of project memberships
// given to those groups.
type LDAP struct {
	// URL is the server, ldap://host[:389] or ldaps://host[:636]; empty
	// disables LDAP login.
	URL string `yaml:"url"`
	// BindDN and BindPassword are the service account that searches users
	// and groups; an empty BindDN searches anonymously.
	BindDN       string `yaml:"bindDN"`
	BindPassword string `yaml:"bindPassword"`
	// BaseDN is where users are searched (the whole subtree).
	BaseDN string `yaml:"baseDN"`
	// UserFilter finds a user by login name: an LDAP filter in which
	// {username} stands for the name, escaped (RFC 4515). It must match
	// exactly one entry.
	UserFilter string `yaml:"userFilter"`
	// UIDAttribute holds the user's login name on their entry (uid,
	// sAMAccountName); its value, lowercased, is the customs user name.
	UIDAttribute string `yaml:"uidAttribute"`
	// GroupBaseDN is where groups are searched with GroupFilter; empty
	// means no group search.
	GroupBaseDN string `yaml:"groupBaseDN"`
	// GroupFilter finds a user's groups: {dn} stands for the user's DN and
	// {username} for their login name, both escaped.
	GroupFilter string `yaml:"groupFilter"`
	// GroupNameAttribute holds a group's name (what project members of
	// kind group are called).
	GroupNameAttribute string `yaml:"groupNameAttribute"`
	// GroupMembershipAttribute, when set (memberOf), is read from the user's
	// entry: each value is a group DN, named by its first RDN's value. It
	// adds to the groups GroupFilter finds.
	GroupMembershipAttribute string `yaml:"groupMembershipAttribute"`
	// NestedGroups expands group membership transitively, as
	// OpenLDAP-style directories need: the groups under GroupBaseDN that
	// NestedGroupFilter finds for one of the user's groups are the user's
	// groups too, level by level, at most NestedGroupsDepth levels above
	// the user's own groups, each group read once (cycles end), and at
	// most 1000 groups in all. It requires GroupBaseDN. Active Directory
	// expands nesting itself: leave this off and use the GroupFilter
	// (member:1.2.840.113556.1.4.1941:={dn}) instead.
	NestedGroups bool `yaml:"nestedGroups"`
	// NestedGroupsDepth bounds the levels of nesting NestedGroups follows
	// (1 to 50; default 10).
	NestedGroupsDepth int `yaml:"nestedGroupsDepth"`
	// NestedGroupFilter finds the groups that have a group as a member:
	// {dn} stands for that group's DN, escaped.
	NestedGroupFilter string `yaml:"nestedGroupFilter"`
	// StartTLS upgrades an ldap:// connection to TLS before binding.
	StartTLS bool `yaml:"startTLS"`
	// CAFile is a PEM file of CA certificates trusted for the server's
	// certificate (default: the system's).
	CAFile string `yaml:"caFile"`
	// InsecureSkipVerify accepts any server certificate: for tests only.
	InsecureSkipVerify bool `yaml:"insecureSkipVerify"`
	// Timeout bounds each login's conversation with the server (connect,
	// TLS, binds, searches), so an unreachable directory fails requests
	// quickly instead of hanging them.
	Timeout Duration `yaml:"timeout"`
	// CacheTTL is how long a successful directory login is remembered, so
	// registry clients sending Basic credentials on every request do not
	// each cost a directory round trip; 0 disables. Wrong passwords are
	// never remembered. Group changes in the directory apply after it.
	CacheTTL Duration `yaml:"cacheTTL"`
}

// Enabled reports whether LDAP login is configured.
func (l LDAP) Enabled() bool { return l.URL != "" }

// OIDC configures login through an OpenID Connect provider (Keycloak, Dex,
// Okta, Azure AD, ...) for the UI and API. Registry clients, which cannot
// do OIDC, log in with the user's CLI secret instead.
type OIDC struct {
	// Issuer is the provider's issuer URL (its discovery document is
	// <issuer>/.well-known/openid-configuration); empty disables OIDC.
	Issuer string `yaml:"issuer"`
	// ClientID and ClientSecret identify customs at the provider.
	ClientID     string `yaml:"clientID"`
	ClientSecret string `yaml:"clientSecret"`
	// RedirectURL is where the provider sends users back:
	// <externalURL>/api/v1/auth/oidc/callback, the default.
	RedirectURL string `yaml:"redirectURL"`
	// Scopes are requested from the provider; "openid" is always added.
	Scopes []string `yaml:"scopes"`
	// UsernameClaim is the claim whose value, lowercased, is the customs
	// user name.
	UsernameClaim string `yaml:"usernameClaim"`
	// GroupsClaim is the claim listing the user's groups; empty means none.
	GroupsClaim string `yaml:"groupsClaim"`
	// AdminGroup, when set, makes members of that group system
	// administrators, and removes the right from users who leave it (at
	// their next login).
	AdminGroup string `yaml:"adminGroup"`
	// SessionTTL is how long a login session of the UI and API lasts.
	SessionTTL Duration `yaml:"sessionTTL"`
	// CAFile is a PEM file of CA certificates trusted for the provider's
	// certificate (default: the system's).
	CAFile string `yaml:"caFile"`
	// Timeout bounds each request to the provider.
	Timeout Duration `yaml:"timeout"`
}

// Enabled reports whether OIDC login is configured.
func (o OIDC) Enabled() bool { return o.Issuer != "" }

// OIDCCallbackPath is the path of the OIDC redirect endpoint.
const OIDCCallbackPath = "/api/v1/auth/oidc/callback"

// defaultLDAP and defaultOIDC are the defaults of the directory keys.
func defaultLDAP() LDAP {
	return LDAP{
		UserFilter:         "(&(objectClass=person)(uid={username}))",
		UIDAttribute:       "uid",
		GroupFilter:        "(|(member={dn})(uniqueMember={dn})(memberUid={username}))",
		GroupNameAttribute: "cn",
		NestedGroupsDepth:  10,
		NestedGroupFilter:  "(|(member={dn})(uniqueMember={dn}))",
		Timeout:            Duration(5 * time.Second),
		CacheTTL:           Duration(time.Minute),
	}
}

func defaultOIDC() OIDC {
	return OIDC{
		Scopes:        []string{"openid", "profile", "email"},
		UsernameClaim: "preferred_username",
		GroupsClaim:   "groups",
		SessionTTL:    Duration(8 * time.Hour),
		Timeout:       Duration(10 * time.Second),
	}
}

// validateLDAP reports the problems of c.Auth.LDAP through bad.
func (c *Config) validateLDAP(bad func(key, format string, args ...any)) {
	l := c.Auth.LDAP
	if !l.Enabled() {
		if l.BaseDN != "" || l.BindDN != "" {
			bad("auth.ldap.url", "is required when other auth.ldap keys are set")
		}
		return
	}
	u, err := url.Parse(l.URL)
	switch {
	case err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "":
		bad("auth.ldap.url", "%q is not an ldap:// or ldaps:// URL", l.URL)
	case u.Path != "" && u.Path != "/" || u.RawQuery != "":
		bad("auth.ldap.url", "%q: give only scheme, host and port (the base DN is auth.ldap.baseDN)", l.URL)
	case l.StartTLS && u.Scheme == "ldaps":
		bad("auth.ldap.startTLS", "cannot be combined with an ldaps:// URL (already TLS)")
	}
	checkDN := func(key, dn string, required bool) {
		if dn == "" {
			if required {
				bad(key, "is required with auth.ldap.url")
			}
			return
		}
		if _, err := ldap.ParseDN(dn); err != nil {
			bad(key, "%q is not a distinguished name: %v", dn, err)
		}
	}
	checkDN("auth.ldap.baseDN", l.BaseDN, true)
	checkDN("auth.ldap.bindDN", l.BindDN, false)
	checkDN("auth.ldap.groupBaseDN", l.GroupBaseDN, false)
	if l.BindDN != "" && l.BindPassword == "" {
		bad("auth.ldap.bindPassword", "is required with auth.ldap.bindDN (an empty password is an unauthenticated bind)")
	}
	checkFilter := func(key, filter string, placeholders ...string) {
		f := filter
		for _, p := range placeholders {
			f = strings.ReplaceAll(f, p, "x")
		}
		if _, err := ldap.CompileFilter(f); err != nil {
			bad(key, "%q is not an LDAP filter: %v", filter, err)
		}
	}
	if !strings.Contains(l.UserFilter, "{username}") {
		bad("auth.ldap.userFilter", "%q must contain {username}", l.UserFilter)
	} else {
		checkFilter("auth.ldap.userFilter", l.UserFilter, "{username}")
	}
	if l.GroupBaseDN != "" {
		if !strings.Contains(l.GroupFilter, "{dn}") && !strings.Contains(l.GroupFilter, "{username}") {
			bad("auth.ldap.groupFilter", "%q must contain {dn} or {username}", l.GroupFilter)
		} else {
			checkFilter("auth.ldap.groupFilter", l.GroupFilter, "{dn}", "{username}")
		}
	}
	if l.NestedGroups {
		if l.GroupBaseDN == "" {
			bad("auth.ldap.nestedGroups", "requires auth.ldap.groupBaseDN (nested groups are found by the group search)")
		}
		if !strings.Contains(l.NestedGroupFilter, "{dn}") {
			bad("auth.ldap.nestedGroupFilter", "%q must contain {dn}", l.NestedGroupFilter)
		} else {
			checkFilter("auth.ldap.nestedGroupFilter", l.NestedGroupFilter, "{dn}")
		}
	}
	if l.NestedGroupsDepth < 1 || l.NestedGroupsDepth > 50 {
		bad("auth.ldap.nestedGroupsDepth", "must be between 1 and 50, got %d", l.NestedGroupsDepth)
	}
	for key, attr := range map[string]string{
		"auth.ldap.uidAttribute":             l.UIDAttribute,
		"auth.ldap.groupNameAttribute":       l.GroupNameAttribute,
		"auth.ldap.groupMembershipAttribute": l.GroupMembershipAttribute,
	} {
		if attr == "" && key == "auth.ldap.groupMembershipAttribute" {
			continue
		}
		if !validAttribute(attr) {
			bad(key, "%q is not an attribute name", attr)
		}
	}
	if l.Timeout < Duration(100*time.Millisecond) || l.Timeout > Duration(time.Minute) {
		bad("auth.ldap.timeout", "must be between 100ms and 1m, got %s", l.Timeout)
	}
	if l.CacheTTL < 0 || l.CacheTTL > Duration(time.Hour) {
		bad("auth.ldap.cacheTTL", "must be between 0 (no cache) and 1h, got %s", l.CacheTTL)
	}
}

// validAttribute reports whether s is an LDAP attribute description: a
// letter followed by letters, digits and hyphens, or a numeric OID.
func validAttribute(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		digit := c >= '0' && c <= '9'
		if i == 0 && !letter && !digit || !letter && !digit && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// validateOIDC reports the problems of c.Auth.OIDC through bad.
func (c *Config) validateOIDC(bad func(key, format string, args ...any)) {
	o := c.Auth.OIDC
	if !o.Enabled() {
		if o.ClientID != "" {
			bad("auth.oidc.issuer", "is required when other auth.oidc keys are set")
		}
		return
	}
	if u, err := url.Parse(o.Issuer); err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" ||
		!(u.Scheme == "https" || u.Scheme == "http" && loopbackHost(u.Hostname())) {
		bad("auth.oidc.issuer", "%q is not an https URL (plain http only on loopback, for tests)", o.Issuer)
	}
	if o.ClientID == "" {
		bad("auth.oidc.clientID", "is required with auth.oidc.issuer")
	}
	switch {
	case o.RedirectURL == "" && c.ExternalURL == "":
		bad("auth.oidc.redirectURL", "is required when externalURL is not set (it is <externalURL>%s)", OIDCCallbackPath)
	case o.RedirectURL != "":
		u, err := url.Parse(o.RedirectURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != OIDCCallbackPath {
			bad("auth.oidc.redirectURL", "%q is not an http(s) URL with the path %s", o.RedirectURL, OIDCCallbackPath)
		}
	}
	if o.UsernameClaim == "" {
		bad("auth.oidc.usernameClaim", "must not be empty")
	}
	if o.SessionTTL < Duration(5*time.Minute) || o.SessionTTL > Duration(7*24*time.Hour) {
		bad("auth.oidc.sessionTTL", "must be between 5m and 7d, got %s", o.SessionTTL)
	}
	if o.Timeout < Duration(time.Second) || o.Timeout > Duration(5*time.Minute) {
		bad("auth.oidc.timeout", "must be between 1s and 5m, got %s", o.Timeout)
	}
	for _, s := range o.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\"") {
			bad("auth.oidc.scopes", "%q is not a scope", s)
		}
	}
}

// OIDCRedirectURL returns the redirect URL of the OIDC configuration:
// auth.oidc.redirectURL, or the callback path under externalURL.
func (c *Config) OIDCRedirectURL() string {
	if c.Auth.OIDC.RedirectURL != "" {
		return c.Auth.OIDC.RedirectURL
	}
	return strings.TrimRight(c.ExternalURL, "/") + OIDCCallbackPath
}

// loopbackHost reports whether host is localhost or a loopback address.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
