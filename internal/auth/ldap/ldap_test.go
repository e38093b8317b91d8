package ldap_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/auth/ldap"
	"github.com/customs-dev/customs/internal/auth/ldap/ldaptest"
	"github.com/customs-dev/customs/internal/config"
)

// people is the directory the tests share: users, groups, two entries with
// one uid, a uid with filter metacharacters, and a user without groups.
var people = ldaptest.User("alice", "alice-pw") +
	ldaptest.User("bob", "bob-pw") +
	ldaptest.User("carol", "carol-pw") +
	ldaptest.User("Dave", "dave-pw") +
	ldaptest.User("par(en)*", "paren-pw") +
	ldaptest.User("twin", "twin-pw") +
	"dn: ou=elsewhere," + ldaptest.BaseDN + "\nobjectClass: organizationalUnit\nou: elsewhere\n\n" +
	"dn: uid=twin,ou=elsewhere," + ldaptest.BaseDN + "\nobjectClass: inetOrgPerson\nuid: twin\ncn: twin\nsn: twin\nuserPassword: twin-pw\n\n" +
	ldaptest.Group("devs", "alice", "bob", "par(en)*") +
	ldaptest.Group("ops", "alice") +
	ldaptest.Group("Release Managers", "Dave")

// directory starts a slapd (with TLS) holding people; it stops when t ends.
func directory(t *testing.T) *ldaptest.Server {
	t.Helper()
	srv := ldaptest.Start(t, ldaptest.Options{TLS: true})
	srv.Add(t, people)
	return srv
}

// cfg returns a configuration for srv: service account, group search.
func cfg(srv *ldaptest.Server) config.LDAP {
	c := config.Default().Auth.LDAP
	c.URL = srv.URL
	c.BindDN, c.BindPassword = ldaptest.ServiceDN, ldaptest.ServicePassword
	c.BaseDN = ldaptest.BaseDN
	c.GroupBaseDN = ldaptest.GroupsDN
	c.Timeout = config.Duration(5 * time.Second)
	return c
}

func newDirectory(t *testing.T, c config.LDAP) *ldap.Directory {
	t.Helper()
	full := config.Default()
	full.Auth.LDAP = c
	if err := full.Validate(); err != nil {
		t.Fatalf("test configuration invalid: %v", err)
	}
	d, err := ldap.New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestAuthenticate(t *testing.T) {
	srv := directory(t)
	byGroupSearch := newDirectory(t, cfg(srv))
	memberOf := cfg(srv)
	memberOf.GroupBaseDN = ""
	memberOf.GroupMembershipAttribute = "memberOf"
	byMemberOf := newDirectory(t, memberOf)

	tests := []struct {
		name, user, password string
		wantName             string   // on success
		wantGroups           []string // on success, sorted
		wantCode, wantMsg    string   // on failure
	}{
		{name: "good login", user: "alice", password: "alice-pw", wantName: "alice", wantGroups: []string{"devs", "ops"}},
		{name: "name in another case", user: "ALICE", password: "alice-pw", wantName: "alice", wantGroups: []string{"devs", "ops"}},
		{name: "uid with capitals", user: "dave", password: "dave-pw", wantName: "Dave", wantGroups: []string{"Release Managers"}},
		{name: "no groups", user: "carol", password: "carol-pw", wantName: "carol", wantGroups: nil},
		{name: "filter metacharacters in a real uid", user: "par(en)*", password: "paren-pw", wantName: "par(en)*", wantGroups: []string{"devs"}},
		{name: "wrong password", user: "alice", password: "bob-pw", wantCode: apperr.EUNAUTHORIZED, wantMsg: "wrong password"},
		{name: "empty password", user: "alice", password: "", wantCode: apperr.EUNAUTHORIZED, wantMsg: "empty password"},
		{name: "unknown user", user: "mallory", password: "x", wantCode: apperr.EUNAUTHORIZED, wantMsg: "no such user"},
		{name: "empty name", user: "", password: "x", wantCode: apperr.EUNAUTHORIZED, wantMsg: "no such user"},
		{name: "two entries", user: "twin", password: "twin-pw", wantCode: apperr.EUNAUTHORIZED, wantMsg: "several"},
		{name: "injection: wildcard", user: "*", password: "alice-pw", wantCode: apperr.EUNAUTHORIZED, wantMsg: "no such user"},
		{name: "injection: prefix wildcard", user: "ali*", password: "alice-pw", wantCode: apperr.EUNAUTHORIZED, wantMsg: "no such user"},
		{name: "injection: close and or", user: "*)(uid=*", password: "alice-pw", wantCode: apperr.EUNAUTHORIZED, wantMsg: "no such user"},
		{name: "injection: always true", user: "alice)(|(objectClass=*", password: "alice-pw", wantCode: apperr.EUNAUTHORIZED, wantMsg: "no such user"},
		{name: "injection: NUL", user: "alice\x00", password: "alice-pw", wantCode: apperr.EUNAUTHORIZED, wantMsg: "no such user"},
		{name: "injection: the service account's cn", user: "customs", password: ldaptest.ServicePassword, wantCode: apperr.EUNAUTHORIZED, wantMsg: "no such user"},
		{name: "too long", user: strings.Repeat("a", 300), password: "x", wantCode: apperr.EUNAUTHORIZED, wantMsg: "too long"},
	}
	for _, dir := range []struct {
		name string
		d    *ldap.Directory
	}{{"group search", byGroupSearch}, {"memberOf", byMemberOf}} {
		for _, tc := range tests {
			t.Run(dir.name+"/"+tc.name, func(t *testing.T) {
				u, err := dir.d.Authenticate(context.Background(), tc.user, tc.password)
				if tc.wantCode != "" {
					if apperr.Code(err) != tc.wantCode || !strings.Contains(apperr.Message(err), tc.wantMsg) {
						t.Fatalf("Authenticate(%q) = %+v, %v; want %s mentioning %q", tc.user, u, err, tc.wantCode, tc.wantMsg)
					}
					return
				}
				if err != nil {
					t.Fatalf("Authenticate(%q): %v", tc.user, err)
				}
				slices.Sort(u.Groups)
				if u.Name != tc.wantName || !slices.Equal(u.Groups, tc.wantGroups) || u.ExternalID != ldaptest.UserDN(tc.wantName) {
					t.Fatalf("Authenticate(%q) = %+v, want name %q, DN %q, groups %q", tc.user, u, tc.wantName, ldaptest.UserDN(tc.wantName), tc.wantGroups)
				}
			})
		}
	}

	t.Run("lookup", func(t *testing.T) {
		u, err := byGroupSearch.Lookup(context.Background(), "bob")
		if err != nil || u.Name != "bob" || !slices.Equal(u.Groups, []string{"devs"}) {
			t.Fatalf("Lookup(bob) = %+v, %v", u, err)
		}
		if _, err := byGroupSearch.Lookup(context.Background(), "mallory"); apperr.Code(err) != apperr.ENOTFOUND {
			t.Fatalf("Lookup(mallory): %v, want ENOTFOUND", err)
		}
		if _, err := byGroupSearch.Lookup(context.Background(), "*"); apperr.Code(err) != apperr.ENOTFOUND {
			t.Fatalf("Lookup(*): %v, want ENOTFOUND", err)
		}
	})

	t.Run("changes in the directory apply at once", func(t *testing.T) {
		srv.Modify(t, "dn: cn=devs,"+ldaptest.GroupsDN+"\nchangetype: modify\ndelete: member\nmember: "+ldaptest.UserDN("bob")+"\n")
		u, err := byGroupSearch.Authenticate(context.Background(), "bob", "bob-pw")
		if err != nil || len(u.Groups) != 0 {
			t.Fatalf("after removing bob from devs: %+v, %v", u, err)
		}
		srv.Modify(t, "dn: "+ldaptest.UserDN("bob")+"\nchangetype: modify\nreplace: userPassword\nuserPassword: new-bob-pw\n")
		if _, err := byGroupSearch.Authenticate(context.Background(), "bob", "bob-pw"); apperr.Code(err) != apperr.EUNAUTHORIZED {
			t.Fatalf("old password after a change: %v", err)
		}
		if _, err := byGroupSearch.Authenticate(context.Background(), "bob", "new-bob-pw"); err != nil {
			t.Fatalf("new password: %v", err)
		}
	})

	t.Run("concurrent logins", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pw := "alice-pw"
				if i%2 == 1 {
					pw = "wrong"
				}
				_, err := byGroupSearch.Authenticate(context.Background(), "alice", pw)
				if (err == nil) != (i%2 == 0) {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent login: %v", err)
		}
	})
}

func TestTLS(t *testing.T) {
	srv := directory(t)
	tests := []struct {
		name     string
		edit     func(c *config.LDAP)
		wantCode string
	}{
		{"starttls with the CA", func(c *config.LDAP) { c.StartTLS, c.CAFile = true, srv.CAFile }, ""},
		{"ldaps with the CA", func(c *config.LDAP) { c.URL, c.CAFile = srv.LDAPSURL, srv.CAFile }, ""},
		{"ldaps insecure", func(c *config.LDAP) { c.URL, c.InsecureSkipVerify = srv.LDAPSURL, true }, ""},
		{"starttls with an unknown CA", func(c *config.LDAP) { c.StartTLS = true }, apperr.EUNAVAILABLE},
		{"ldaps with an unknown CA", func(c *config.LDAP) { c.URL = srv.LDAPSURL }, apperr.EUNAVAILABLE},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg(srv)
			tc.edit(&c)
			u, err := newDirectory(t, c).Authenticate(context.Background(), "alice", "alice-pw")
			if apperr.Code(err) != tc.wantCode && !(tc.wantCode == "" && err == nil) {
				t.Fatalf("Authenticate = %+v, %v; want code %q", u, err, tc.wantCode)
			}
		})
	}
}

func TestServiceAccount(t *testing.T) {
	srv := directory(t)
	t.Run("wrong service password", func(t *testing.T) {
		c := cfg(srv)
		c.BindPassword = "not-it"
		_, err := newDirectory(t, c).Authenticate(context.Background(), "alice", "alice-pw")
		if apperr.Code(err) != apperr.EUNAVAILABLE || !strings.Contains(apperr.Message(err), "service account") {
			t.Fatalf("err = %v, want EUNAVAILABLE naming the service account", err)
		}
	})
	t.Run("anonymous search where anonymous may not read", func(t *testing.T) {
		c := cfg(srv)
		c.BindDN, c.BindPassword = "", ""
		// slapd hides the base from who may not read it.
		_, err := newDirectory(t, c).Authenticate(context.Background(), "alice", "alice-pw")
		if apperr.Code(err) != apperr.EUNAVAILABLE || !strings.Contains(apperr.Message(err), "misconfigured") {
			t.Fatalf("err = %v, want EUNAVAILABLE saying LDAP login is misconfigured", err)
		}
	})
	t.Run("anonymous search where anonymous may read", func(t *testing.T) {
		open := ldaptest.Start(t, ldaptest.Options{AnonymousRead: true})
		open.Add(t, people)
		c := cfg(open)
		c.BindDN, c.BindPassword = "", ""
		u, err := newDirectory(t, c).Authenticate(context.Background(), "alice", "alice-pw")
		if err != nil || u.Name != "alice" || len(u.Groups) != 2 {
			t.Fatalf("Authenticate = %+v, %v", u, err)
		}
		if _, err := newDirectory(t, c).Authenticate(context.Background(), "alice", "wrong"); apperr.Code(err) != apperr.EUNAUTHORIZED {
			t.Fatalf("wrong password: %v", err)
		}
	})
	t.Run("missing base DN", func(t *testing.T) {
		c := cfg(srv)
		c.BaseDN = "ou=nowhere," + ldaptest.BaseDN
		_, err := newDirectory(t, c).Authenticate(context.Background(), "alice", "alice-pw")
		if apperr.Code(err) != apperr.EUNAVAILABLE || !strings.Contains(apperr.Message(err), "misconfigured") {
			t.Fatalf("err = %v, want EUNAVAILABLE saying LDAP login is misconfigured", err)
		}
	})
}

// TestUnreachable: a directory that is down or stuck fails a login within
// the timeout, with a message saying so, instead of hanging it.
func TestUnreachable(t *testing.T) {
	// A listener that accepts connections and never answers.
	stuck, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := stuck.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "ldap://" + closed.Addr().String()
	closed.Close()

	stopped := ldaptest.Start(t)
	stoppedURL := stopped.URL
	stopped.Stop()

	const timeout = 500 * time.Millisecond
	tests := []struct {
		name, url string
		starttls  bool
		wantMsg   string
	}{
		{"stuck server", "ldap://" + stuck.Addr().String(), false, "did not answer within 500ms"},
		{"stuck server, starttls", "ldap://" + stuck.Addr().String(), true, "did not answer within 500ms"},
		{"stuck server, ldaps", "ldaps://" + stuck.Addr().String(), false, "did not answer within 500ms"},
		{"nothing listening", closedURL, false, "cannot be reached"},
		{"slapd stopped", stoppedURL, false, "cannot be reached"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default().Auth.LDAP
			c.URL, c.StartTLS, c.BaseDN = tc.url, tc.starttls, ldaptest.BaseDN
			c.BindDN, c.BindPassword = ldaptest.ServiceDN, ldaptest.ServicePassword
			c.Timeout = config.Duration(timeout)
			d := newDirectory(t, c)
			for _, call := range []struct {
				name string
				fn   func() error
			}{
				{"Authenticate", func() error { _, err := d.Authenticate(context.Background(), "alice", "alice-pw"); return err }},
				{"Lookup", func() error { _, err := d.Lookup(context.Background(), "alice"); return err }},
			} {
				start := time.Now()
				err := call.fn()
				took := time.Since(start)
				if apperr.Code(err) != apperr.EUNAVAILABLE || !strings.Contains(apperr.Message(err), tc.wantMsg) {
					t.Errorf("%s: err = %v, want EUNAVAILABLE saying %q", call.name, err, tc.wantMsg)
				}
				if took > timeout+2*time.Second {
					t.Errorf("%s took %s with a timeout of %s", call.name, took, timeout)
				}
			}
		})
	}

	t.Run("caller's deadline", func(t *testing.T) {
		c := config.Default().Auth.LDAP
		c.URL, c.BaseDN = "ldap://"+stuck.Addr().String(), ldaptest.BaseDN
		c.Timeout = config.Duration(30 * time.Second)
		d := newDirectory(t, c)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := d.Authenticate(ctx, "alice", "alice-pw")
		if apperr.Code(err) != apperr.EUNAVAILABLE || time.Since(start) > 5*time.Second {
			t.Fatalf("err = %v after %s, want EUNAVAILABLE soon after the caller's deadline", err, time.Since(start))
		}
	})
}

// groupOf returns the LDIF of a groupOfNames cn=<name> in GroupsDN whose
// members are the entries memberDNs (people or groups).
func groupOf(name string, memberDNs ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nobjectClass: groupOfNames\ncn: %s\n", groupDN(name), name)
	for _, m := range memberDNs {
		fmt.Fprintf(&b, "member: %s\n", m)
	}
	return b.String() + "\n"
}

func groupDN(name string) string { return "cn=" + name + "," + ldaptest.GroupsDN }

// nestedGroupsLDIF nests groups: carol is in nested-a, nested-a in
// nested-b, nested-b in nested-c; the chain-1 .. chain-12 groups nest
// twelve deep above Dave's group chain-1; loop-a (bob's) is in loop-b;
// nested-c names nested-b in capitals (DNs compare without case).
var nestedGroupsLDIF = groupOf("nested-a", ldaptest.UserDN("carol")) +
	groupOf("nested-b", groupDN("nested-a")) +
	groupOf("nested-c", strings.ToUpper(groupDN("nested-b"))) +
	chainLDIF(12) +
	// TestNestedGroups then adds loop-b to loop-a's members.
	groupOf("loop-a", ldaptest.UserDN("bob")) +
	groupOf("loop-b", groupDN("loop-a"))

// chainLDIF returns groups chain-1 (Dave's) to chain-n, each a member of
// the next.
func chainLDIF(n int) string {
	out := groupOf("chain-1", ldaptest.UserDN("Dave"))
	for i := 2; i <= n; i++ {
		out += groupOf(fmt.Sprintf("chain-%d", i), groupDN(fmt.Sprintf("chain-%d", i-1)))
	}
	return out
}

func TestNestedGroups(t *testing.T) {
	srv := directory(t)
	srv.Add(t, nestedGroupsLDIF)
	// Close the loop: loop-b is a member of loop-a, which is in loop-b.
	srv.Modify(t, "dn: "+groupDN("loop-a")+"\nchangetype: modify\nadd: member\nmember: "+groupDN("loop-b")+"\n")
	nested := func(depth int) config.LDAP {
		c := cfg(srv)
		c.NestedGroups, c.NestedGroupsDepth = true, depth
		return c
	}
	chain := func(n int) []string {
		out := []string{"Release Managers"}
		for i := 1; i <= n; i++ {
			out = append(out, fmt.Sprintf("chain-%d", i))
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		name     string
		c        config.LDAP
		user, pw string
		want     []string
	}{
		{"three levels", nested(10), "carol", "carol-pw", []string{"nested-a", "nested-b", "nested-c"}},
		{"off: no expansion", cfg(srv), "carol", "carol-pw", []string{"nested-a"}},
		{"depth 1", nested(1), "carol", "carol-pw", []string{"nested-a", "nested-b"}},
		{"depth 2", nested(2), "carol", "carol-pw", []string{"nested-a", "nested-b", "nested-c"}},
		{"cycle ends", nested(10), "bob", "bob-pw", []string{"devs", "loop-a", "loop-b"}},
		{"default depth 10 of a chain of 12", nested(config.Default().Auth.LDAP.NestedGroupsDepth), "dave", "dave-pw", chain(11)},
		{"depth 50 reaches the top", nested(50), "dave", "dave-pw", chain(12)},
		{"no groups, nothing to expand", nested(10), "par(en)*", "paren-pw", []string{"devs"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDirectory(t, tc.c)
			u, err := d.Authenticate(context.Background(), tc.user, tc.pw)
			if err != nil {
				t.Fatal(err)
			}
			got := slices.Clone(u.Groups)
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("groups of %s = %q, want %q", tc.user, got, tc.want)
			}
			// Lookup (refresh tokens, cached logins) expands the same way.
			l, err := d.Lookup(context.Background(), tc.user)
			if err != nil {
				t.Fatal(err)
			}
			lg := slices.Clone(l.Groups)
			slices.Sort(lg)
			if !slices.Equal(lg, tc.want) {
				t.Fatalf("Lookup groups of %s = %q, want %q", tc.user, lg, tc.want)
			}
		})
	}
}
