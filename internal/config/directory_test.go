package config

import (
	"strings"
	"testing"
	"time"
)

// goodLDAP is a valid LDAP configuration the cases below break one key of.
func goodLDAP() LDAP {
	l := defaultLDAP()
	l.URL = "ldap://ldap.example.org"
	l.BindDN = "cn=customs,ou=services,dc=example,dc=org"
	l.BindPassword = "secret"
	l.BaseDN = "ou=people,dc=example,dc=org"
	l.GroupBaseDN = "ou=groups,dc=example,dc=org"
	return l
}

func goodOIDC() OIDC {
	o := defaultOIDC()
	o.Issuer = "https://id.example.org/realms/main"
	o.ClientID = "customs"
	o.ClientSecret = "secret"
	o.RedirectURL = "https://registry.example.org" + OIDCCallbackPath
	return o
}

func TestValidateDirectoryKeys(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Config)
		want string // "" means valid
	}{
		{"ldap valid", func(c *Config) { c.Auth.LDAP = goodLDAP() }, ""},
		{"ldap valid ldaps memberOf anonymous", func(c *Config) {
			c.Auth.LDAP = goodLDAP()
			c.Auth.LDAP.URL = "ldaps://ldap.example.org:636"
			c.Auth.LDAP.BindDN, c.Auth.LDAP.BindPassword = "", ""
			c.Auth.LDAP.GroupBaseDN = ""
			c.Auth.LDAP.GroupMembershipAttribute = "memberOf"
		}, ""},
		{"ldap keys without url", func(c *Config) { c.Auth.LDAP.BaseDN = "dc=x" }, "auth.ldap.url: is required"},
		{"ldap url scheme", func(c *Config) { c.Auth.LDAP = goodLDAP(); c.Auth.LDAP.URL = "http://ldap" }, "auth.ldap.url:"},
		{"ldap url with base", func(c *Config) { c.Auth.LDAP = goodLDAP(); c.Auth.LDAP.URL = "ldap://h/dc=x" }, "auth.ldap.url:"},
		{"ldaps with starttls", func(c *Config) {
			c.Auth.LDAP = goodLDAP()
			c.Auth.LDAP.URL = "ldaps://h"
			c.Auth.LDAP.StartTLS = true
		}, "auth.ldap.startTLS:"},
		{"ldap no base", func(c *Config) { c.Auth.LDAP = goodLDAP(); c.Auth.LDAP.BaseDN = "" }, "auth.ldap.baseDN: is required"},
		{"ldap bad base", func(c *Config) { c.Auth.LDAP = goodLDAP(); c.Auth.LDAP.BaseDN = "not a dn" }, "auth.ldap.baseDN:"},
		{"ldap bad group base", func(c *Config) { c.Auth.LDAP = goodLDAP(); c.Auth.LDAP.GroupBaseDN = "x" }, "auth.ldap.groupBaseDN:"},
		{"ldap bind without password", func(c *Config) { c.Auth.LDAP = goodLDAP(); c.Auth.LDAP.BindPassword = "" }, "auth.ldap.bindPassword:"},
		{"ldap filter without placeholder", func(c *Config) { c.Auth.LDAP = goodLDAP(); c.Auth.LDAP.UserFilter = "(uid=alice)" }, "auth.ldap.userFilter:"},
		{"ldap filter unbalanced", func(c *Config) { c.Auth.LDAP = goodLDAP(); c.Auth.LDAP.UserFilter = "(&(uid={username})" }, "auth.ldap.userFilter:"},
		{"ldap group filter", func(c *Config) { c.Auth.LDAP = goodLDAP(); c.Auth.LDAP.GroupFilter = "(member=x)" }, "auth.ldap.groupFilter:"},
		{"ldap group filter syntax", func(c *Config) { c.Auth.LDAP = goodLDAP(); c.Auth.LDAP.GroupFilter = "member={dn}" }, "auth.ldap.groupFilter:"},
		{"ldap uid attribute", func(c *Config) { c.Auth.LDAP = goodLDAP(); c.Auth.LDAP.UIDAttribute = "u id" }, "auth.ldap.uidAttribute:"},
		{"ldap membership attribute", func(c *Config) {
			c.Auth.LDAP = goodLDAP()
			c.Auth.LDAP.GroupMembershipAttribute = "member of"
		}, "auth.ldap.groupMembershipAttribute:"},
		{"ldap timeout", func(c *Config) { c.Auth.LDAP = goodLDAP(); c.Auth.LDAP.Timeout = 0 }, "auth.ldap.timeout:"},
		{"ldap cache", func(c *Config) { c.Auth.LDAP = goodLDAP(); c.Auth.LDAP.CacheTTL = Duration(2 * time.Hour) }, "auth.ldap.cacheTTL:"},
		{"ldap nested valid", func(c *Config) { c.Auth.LDAP = goodLDAP(); c.Auth.LDAP.NestedGroups = true }, ""},
		{"ldap nested without group base", func(c *Config) {
			c.Auth.LDAP = goodLDAP()
			c.Auth.LDAP.NestedGroups, c.Auth.LDAP.GroupBaseDN = true, ""
			c.Auth.LDAP.GroupMembershipAttribute = "memberOf"
		}, "auth.ldap.nestedGroups: requires auth.ldap.groupBaseDN"},
		{"ldap nested depth 0", func(c *Config) { c.Auth.LDAP = goodLDAP(); c.Auth.LDAP.NestedGroupsDepth = 0 }, "auth.ldap.nestedGroupsDepth:"},
		{"ldap nested depth 51", func(c *Config) { c.Auth.LDAP = goodLDAP(); c.Auth.LDAP.NestedGroupsDepth = 51 }, "auth.ldap.nestedGroupsDepth:"},
		{"ldap nested filter without dn", func(c *Config) {
			c.Auth.LDAP = goodLDAP()
			c.Auth.LDAP.NestedGroups, c.Auth.LDAP.NestedGroupFilter = true, "(member={username})"
		}, "auth.ldap.nestedGroupFilter:"},
		{"ldap nested filter syntax", func(c *Config) {
			c.Auth.LDAP = goodLDAP()
			c.Auth.LDAP.NestedGroups, c.Auth.LDAP.NestedGroupFilter = true, "(|(member={dn})"
		}, "auth.ldap.nestedGroupFilter:"},
		{"oidc valid", func(c *Config) { c.Auth.OIDC = goodOIDC() }, ""},
		{"oidc redirect from external url", func(c *Config) {
			c.Auth.OIDC = goodOIDC()
			c.Auth.OIDC.RedirectURL = ""
			c.ExternalURL = "https://registry.example.org"
		}, ""},
		{"oidc loopback http issuer", func(c *Config) { c.Auth.OIDC = goodOIDC(); c.Auth.OIDC.Issuer = "http://127.0.0.1:5556" }, ""},
		{"oidc keys without issuer", func(c *Config) { c.Auth.OIDC.ClientID = "x" }, "auth.oidc.issuer: is required"},
		{"oidc http issuer", func(c *Config) { c.Auth.OIDC = goodOIDC(); c.Auth.OIDC.Issuer = "http://id.example.org" }, "auth.oidc.issuer:"},
		{"oidc no client", func(c *Config) { c.Auth.OIDC = goodOIDC(); c.Auth.OIDC.ClientID = "" }, "auth.oidc.clientID:"},
		{"oidc no redirect", func(c *Config) { c.Auth.OIDC = goodOIDC(); c.Auth.OIDC.RedirectURL = "" }, "auth.oidc.redirectURL: is required"},
		{"oidc wrong redirect path", func(c *Config) {
			c.Auth.OIDC = goodOIDC()
			c.Auth.OIDC.RedirectURL = "https://registry.example.org/callback"
		}, "auth.oidc.redirectURL:"},
		{"oidc session", func(c *Config) { c.Auth.OIDC = goodOIDC(); c.Auth.OIDC.SessionTTL = Duration(time.Minute) }, "auth.oidc.sessionTTL:"},
		{"oidc scope", func(c *Config) { c.Auth.OIDC = goodOIDC(); c.Auth.OIDC.Scopes = []string{"openid groups"} }, "auth.oidc.scopes:"},
		{"oidc username claim", func(c *Config) { c.Auth.OIDC = goodOIDC(); c.Auth.OIDC.UsernameClaim = "" }, "auth.oidc.usernameClaim:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid configuration refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestDirectoryKeysFromEnv(t *testing.T) {
	c, err := Load("", []string{
		"CUSTOMS_AUTH_LDAP_URL=ldap://127.0.0.1:3890",
		"CUSTOMS_AUTH_LDAP_BASE_DN=dc=example,dc=org",
		"CUSTOMS_AUTH_LDAP_START_TLS=true",
		"CUSTOMS_AUTH_LDAP_NESTED_GROUPS=true",
		"CUSTOMS_AUTH_LDAP_NESTED_GROUPS_DEPTH=3",
		"CUSTOMS_AUTH_LDAP_GROUP_BASE_DN=ou=groups,dc=example,dc=org",
		"CUSTOMS_AUTH_OIDC_SCOPES=openid,groups",
		"CUSTOMS_AUTH_OIDC_SESSION_TTL=1h",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.LDAP.URL != "ldap://127.0.0.1:3890" || c.Auth.LDAP.BaseDN != "dc=example,dc=org" || !c.Auth.LDAP.StartTLS {
		t.Errorf("ldap = %+v", c.Auth.LDAP)
	}
	if !c.Auth.LDAP.NestedGroups || c.Auth.LDAP.NestedGroupsDepth != 3 {
		t.Errorf("nested groups from env = %v, depth %d", c.Auth.LDAP.NestedGroups, c.Auth.LDAP.NestedGroupsDepth)
	}
	if c.Auth.LDAP.UIDAttribute != "uid" {
		t.Errorf("default uidAttribute lost: %q", c.Auth.LDAP.UIDAttribute)
	}
	if strings.Join(c.Auth.OIDC.Scopes, " ") != "openid groups" || c.Auth.OIDC.SessionTTL.Std() != time.Hour {
		t.Errorf("oidc = %+v", c.Auth.OIDC)
	}
}

func TestOIDCRedirectURL(t *testing.T) {
	c := Default()
	c.ExternalURL = "https://r.example.org/"
	if got, want := c.OIDCRedirectURL(), "https://r.example.org"+OIDCCallbackPath; got != want {
		t.Errorf("derived = %q, want %q", got, want)
	}
	c.Auth.OIDC.RedirectURL = "https://other.example.org" + OIDCCallbackPath
	if got := c.OIDCRedirectURL(); got != c.Auth.OIDC.RedirectURL {
		t.Errorf("explicit = %q", got)
	}
}
