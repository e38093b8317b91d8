package ldap

import (
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
