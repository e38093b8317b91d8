package ldap

import (
	"strings"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"

	"github.com/customs-dev/customs/internal/config"
)

// FuzzUserFilter: whatever a client sends as its login name, the search
// filter stays (&(objectClass=person)(uid=<value>)) with value exactly the
// name: no wildcard, no extra clause, no broken filter.
func FuzzUserFilter(f *testing.F) {
	for _, s := range []string{"alice", "*", "*)(uid=*", "alice)(|(objectClass=*", "a\x00b", "\\2a", "é", "\xff", "(", ")"} {
		f.Add(s)
	}
	d := &Directory{cfg: config.Default().Auth.LDAP}
	f.Fuzz(func(t *testing.T, name string) {
		filter := d.userFilter(name)
		p, err := goldap.CompileFilter(filter)
		if err != nil {
			t.Fatalf("name %q gives the filter %q, which does not compile: %v", name, filter, err)
		}
		if p.Tag != goldap.FilterAnd || len(p.Children) != 2 {
			t.Fatalf("name %q changed the filter's shape: %q", name, filter)
		}
		eq := p.Children[1]
		if eq.Tag != goldap.FilterEqualityMatch || len(eq.Children) != 2 {
			t.Fatalf("name %q is not one equality assertion: %q", name, filter)
		}
		if got := assertionValue(eq.Children[1]); got != name {
			t.Fatalf("name %q is asserted as %q (filter %q)", name, got, filter)
		}
	})
}

func assertionValue(p *ber.Packet) string {
	if s, ok := p.Value.(string); ok {
		return s
	}
	return string(p.Data.Bytes())
}

// FuzzDNKey: group DNs come from the directory's answers (search results,
// memberOf values). dnKey never panics, gives one DN one key, and ignores
// the case of ASCII letters (so the cycle check sees a group spelled in
// another case as the same group).
func FuzzDNKey(f *testing.F) {
	for _, s := range []string{"cn=devs,ou=groups,dc=example,dc=org", "CN=Devs,OU=Groups,DC=Example,DC=Org",
		"cn=a\\,b,dc=x", "cn=a+sn=b,dc=x", "cn=#04024869", "cn= lead", "cn=trail\\ ", "not a dn", "", "cn=\\c3\\a9", "=", "cn=\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dn string) {
		k := dnKey(dn)
		if again := dnKey(dn); again != k {
			t.Fatalf("dnKey(%q) = %q, then %q", dn, k, again)
		}
		ascii := true
		for i := 0; i < len(dn); i++ {
			if dn[i] >= 0x80 {
				ascii = false
			}
		}
		if _, err := goldap.ParseDN(dn); ascii && err == nil {
			if _, err := goldap.ParseDN(strings.ToUpper(dn)); err == nil && dnKey(strings.ToUpper(dn)) != k {
				t.Fatalf("dnKey(%q) = %q but dnKey(upper) = %q", dn, k, dnKey(strings.ToUpper(dn)))
			}
		}
	})
}
