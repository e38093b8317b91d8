package ldap_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/auth/ldap/ldaptest"
	"github.com/customs-dev/customs/internal/config"
	"github.com/customs-dev/customs/internal/rbac"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/sqlite"
)

// recorder keeps audit events.
type recorder struct{ audit.Memory }

// logins returns the user.login events of name.
func (r *recorder) logins(name string) []audit.Event {
	return r.Events(func(e audit.Event) bool { return e.Action == auth.ActionLogin && e.Actor == name })
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fixture is an auth.Service over a real SQLite store and a real slapd,
// wired as the server wires them.
type fixture struct {
	srv *ldaptest.Server
	svc *auth.Service
	db  *sqlite.DB
	rec *recorder
	clk *clock
}

const cacheTTL = time.Minute

// newFixture starts the fixture; edits change the directory configuration.
func newFixture(t *testing.T, edits ...func(*config.LDAP)) *fixture {
	t.Helper()
	f := &fixture{srv: directory(t), rec: &recorder{}, clk: &clock{now: time.Now()}}
	dc := cfg(f.srv)
	for _, e := range edits {
		e(&dc)
	}
	ctx := context.Background()
	dir := t.TempDir()
	var err error
	f.db, err = sqlite.Open(ctx, filepath.Join(dir, "meta.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.db.Close() })
	keys, err := auth.OpenKeyDir(filepath.Join(dir, "keys"), auth.KeyDirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.svc, err = auth.NewService(auth.Options{
		Users: f.db, Projects: f.db, Members: f.db, UserGroups: f.db, Keys: keys,
		Directory: newDirectory(t, dc), DirectoryCacheTTL: cacheTTL,
		Recorder: f.rec, Clock: f.clk.Now, PasswordParams: auth.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"team", "other"} {
		if err := f.db.CreateProject(ctx, &store.Project{Name: p}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// basic authenticates a registry request with Basic credentials.
func (f *fixture) basic(user, password string) (auth.Principal, error) {
	r := httptest.NewRequest("GET", "/v2/", nil)
	r.SetBasicAuth(user, password)
	return f.svc.Authenticate(r)
}

// token asks the token endpoint for scope with Basic credentials and
// returns the status, the granted access and the refresh token.
func (f *fixture) token(t *testing.T, user, password, scope string, offline bool) (int, []auth.Access, string) {
	t.Helper()
	q := url.Values{"service": {"customs"}, "scope": {scope}}
	if offline {
		q.Set("offline_token", "true")
	}
	r := httptest.NewRequest("GET", "/service/token?"+q.Encode(), nil)
	r.SetBasicAuth(user, password)
	return f.serveToken(t, r)
}

// refresh redeems a refresh token for scope.
func (f *fixture) refresh(t *testing.T, refresh, scope string) (int, []auth.Access, string) {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "service": {"customs"}, "scope": {scope}}
	r := httptest.NewRequest("POST", "/service/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return f.serveToken(t, r)
}

func (f *fixture) serveToken(t *testing.T, r *http.Request) (int, []auth.Access, string) {
	t.Helper()
	w := httptest.NewRecorder()
	f.svc.TokenHandler().ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		return w.Code, nil, w.Body.String()
	}
	var reply struct {
		Token        string `json:"token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &reply); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(reply.Token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Access []auth.Access `json:"access"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return w.Code, claims.Access, reply.RefreshToken
}

func (f *fixture) member(t *testing.T, project, kind, name, role string) {
	t.Helper()
	if err := f.db.AddMember(context.Background(), &store.Member{Project: project, Kind: kind, Name: name, Role: role}); err != nil {
		t.Fatal(err)
	}
	f.svc.ForgetPermissions()
}

func actionsOf(access []auth.Access) []string {
	var out []string
	for _, a := range access {
		out = append(out, a.Actions...)
	}
	slices.Sort(out)
	return out
}

func TestServiceLogin(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	p, err := f.basic("alice", "alice-pw")
	if err != nil || p.Kind != auth.KindUser || p.Name != "alice" || p.Admin {
		t.Fatalf("first login = %+v, %v", p, err)
	}
	u, err := f.db.User(ctx, "alice")
	if err != nil || u.Source != store.SourceLDAP || u.ExternalID != ldaptest.UserDN("alice") || u.PasswordHash != "" {
		t.Fatalf("user after the first login = %+v, %v", u, err)
	}
	if g, _ := f.db.UserGroups(ctx, "alice"); !slices.Equal(g, []string{"devs", "ops"}) {
		t.Fatalf("groups = %q", g)
	}
	ev := f.rec.logins("alice")
	if len(ev) != 1 || ev[0].Outcome != audit.Success || ev[0].Details[auth.DetailSource] != store.SourceLDAP {
		t.Fatalf("audit of the login = %+v", ev)
	}

	t.Run("a capitalized uid becomes a lowercase user", func(t *testing.T) {
		p, err := f.basic("Dave", "dave-pw")
		if err != nil || p.Name != "dave" {
			t.Fatalf("login = %+v, %v", p, err)
		}
		if g, _ := f.db.UserGroups(ctx, "dave"); !slices.Equal(g, []string{"Release Managers"}) {
			t.Fatalf("groups = %q", g)
		}
	})

	t.Run("failures", func(t *testing.T) {
		if err := f.db.CreateUser(ctx, &store.User{Name: "carol", PasswordHash: mustHash(t, f.svc, "local-carol-pw")}); err != nil {
			t.Fatal(err)
		}
		if err := f.db.CreateUser(ctx, &store.User{Name: "bob", Source: store.SourceLDAP, ExternalID: ldaptest.UserDN("bob"), Disabled: true}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name, user, password, reason string
		}{
			{"wrong password", "alice", "bob-pw", "wrong password"},
			{"empty password", "alice", "", "empty"},
			{"unknown user", "mallory", "x", "no such user"},
			{"filter injection", "*)(uid=*", "alice-pw", "no such user"},
			{"a local user's name is not the directory's", "carol", "carol-pw", "wrong password"},
			{"disabled", "bob", "bob-pw", "account disabled"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				n := len(f.rec.logins(tc.user))
				_, err := f.basic(tc.user, tc.password)
				if apperr.Code(err) != apperr.EUNAUTHORIZED || apperr.Message(err) != "invalid username or password" {
					t.Fatalf("login: %v, want the one EUNAUTHORIZED message", err)
				}
				ev := f.rec.logins(tc.user)
				if len(ev) != n+1 || ev[n].Outcome != audit.Failure || !strings.Contains(ev[n].Reason, tc.reason) {
					t.Fatalf("audit = %+v, want a failure saying %q", ev, tc.reason)
				}
			})
		}
		// The local carol keeps her account and password.
		if p, err := f.basic("carol", "local-carol-pw"); err != nil || p.Name != "carol" {
			t.Fatalf("local carol: %+v, %v", p, err)
		}
		if u, _ := f.db.User(ctx, "carol"); u.Source != store.SourceLocal {
			t.Fatalf("carol's source became %q", u.Source)
		}
	})
}

// TestServiceLoginWithLocalNameTaken: a directory user whose name a local
// account holds cannot log in as that account, even with the directory's
// password (a directory cannot take over accounts).
func TestServiceLoginWithLocalNameTaken(t *testing.T) {
	f := newFixture(t)
	// The typed name differs from the local one, so the directory is asked,
	// answers "alice", and the local alice must not be taken over.
	if err := f.db.CreateUser(context.Background(), &store.User{Name: "alice", PasswordHash: mustHash(t, f.svc, "local-pw")}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.basic("ALICE", "alice-pw"); apperr.Code(err) != apperr.EUNAUTHORIZED {
		t.Fatalf("login as ALICE with the directory's password: %v", err)
	}
	ev := f.rec.logins("ALICE")
	if len(ev) != 1 || !strings.Contains(ev[0].Reason, "taken by a local account") {
		t.Fatalf("audit = %+v", ev)
	}
}

func mustHash(t *testing.T, svc *auth.Service, pw string) string {
	t.Helper()
	h, err := svc.HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestGroupRoles: project roles given to directory groups apply to their
// members (highest role wins), through tokens and Basic auth, and leaving a
// group in the directory takes the role away once the login cache expires.
func TestGroupRoles(t *testing.T) {
	f := newFixture(t)
	f.member(t, "team", store.MemberGroup, "devs", "developer")
	f.member(t, "other", store.MemberGroup, "ops", "maintainer")
	f.member(t, "other", store.MemberGroup, "devs", "guest")

	const push = "repository:team/app:pull,push"
	if code, got, _ := f.token(t, "bob", "bob-pw", push, false); code != 200 || !slices.Equal(actionsOf(got), []string{"pull", "push"}) {
		t.Fatalf("bob (devs) asking push on team: %d %v", code, got)
	}
	if code, got, _ := f.token(t, "carol", "carol-pw", push, false); code != 200 || len(got) != 0 {
		t.Fatalf("carol (no group) asking push on team: %d %v", code, got)
	}
	// alice is in devs (guest of other) and ops (maintainer of other): the
	// higher role wins.
	p, err := f.basic("alice", "alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	set, err := f.svc.ProjectPermissions(context.Background(), p, "other")
	if err != nil || set != rbac.Permissions(rbac.RoleMaintainer) {
		t.Fatalf("alice on other = %v, %v; want maintainer's %v", set, err, rbac.Permissions(rbac.RoleMaintainer))
	}
	if err := f.svc.Authorize(context.Background(), p, auth.Access{Type: auth.TypeRepository, Name: "other/x", Actions: []string{auth.ActionDelete}}); err != nil {
		t.Fatalf("alice may not delete in other: %v", err)
	}

	// bob leaves devs in the directory.
	_, _, refresh := f.token(t, "bob", "bob-pw", push, true)
	if refresh == "" {
		t.Fatal("no refresh token")
	}
	f.srv.Modify(t, "dn: cn=devs,"+ldaptest.GroupsDN+"\nchangetype: modify\ndelete: member\nmember: "+ldaptest.UserDN("bob")+"\n")
	if code, got, _ := f.token(t, "bob", "bob-pw", push, false); code != 200 || len(actionsOf(got)) != 2 {
		t.Fatalf("within the cache TTL bob keeps the role (the login is not re-checked): %d %v", code, got)
	}
	f.clk.Advance(cacheTTL + time.Second)
	if code, got, _ := f.token(t, "bob", "bob-pw", push, false); code != 200 || len(got) != 0 {
		t.Fatalf("after the cache TTL, bob (no longer in devs) was granted %v (%d)", got, code)
	}
	if g, _ := f.db.UserGroups(context.Background(), "bob"); len(g) != 0 {
		t.Fatalf("bob's groups after leaving devs = %q", g)
	}

	// His refresh token still works (he is in the directory) but grants
	// nothing on team; once he is deleted from the directory it dies.
	if code, got, _ := f.refresh(t, refresh, push); code != 200 || len(got) != 0 {
		t.Fatalf("refresh after leaving devs: %d %v", code, got)
	}
	f.srv.Modify(t, "dn: "+ldaptest.UserDN("bob")+"\nchangetype: delete\n")
	if code, _, _ := f.refresh(t, refresh, push); code != 200 {
		t.Fatalf("within the cache TTL the directory is not asked again: %d", code)
	}
	f.clk.Advance(cacheTTL + time.Second)
	if code, _, body := f.refresh(t, refresh, push); code != http.StatusUnauthorized || !strings.Contains(body, "log in again") {
		t.Fatalf("refresh after bob left the directory: %d %s", code, body)
	}
}

// TestDirectoryDown: logins cached before the directory went down keep
// working until the cache expires; others fail at once with a clear 503,
// never a hang and never "wrong password".
func TestDirectoryDown(t *testing.T) {
	f := newFixture(t)
	if _, err := f.basic("alice", "alice-pw"); err != nil {
		t.Fatal(err)
	}
	f.srv.Stop()
	if p, err := f.basic("alice", "alice-pw"); err != nil || p.Name != "alice" {
		t.Fatalf("cached login with the directory down: %+v, %v", p, err)
	}
	for _, tc := range []struct{ name, user, password string }{
		{"wrong password", "alice", "nope"},
		{"uncached user", "bob", "bob-pw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := f.basic(tc.user, tc.password)
			if apperr.Code(err) != apperr.EUNAVAILABLE || !strings.Contains(apperr.Message(err), "LDAP directory") {
				t.Fatalf("err = %v, want EUNAVAILABLE about the LDAP directory", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %s", d)
			}
		})
	}
	f.clk.Advance(cacheTTL + time.Second)
	if _, err := f.basic("alice", "alice-pw"); apperr.Code(err) != apperr.EUNAVAILABLE {
		t.Fatalf("after the cache TTL with the directory down: %v", err)
	}
	code, _, body := f.token(t, "alice", "alice-pw", "repository:team/app:pull", false)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "LDAP directory") {
		t.Fatalf("token endpoint with the directory down: %d %s", code, body)
	}
}

// TestNoDirectory: without a directory, an LDAP user cannot log in (LDAP
// was turned off) and unknown users are simply unknown.
func TestNoDirectory(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "meta.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, err := auth.OpenKeyDir(filepath.Join(t.TempDir(), "keys"), auth.KeyDirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	svc, err := auth.NewService(auth.Options{Users: db, Projects: db, Keys: keys, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateUser(ctx, &store.User{Name: "alice", Source: store.SourceLDAP, ExternalID: "uid=alice"}); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/v2/", nil)
	r.SetBasicAuth("alice", "alice-pw")
	if _, err := svc.Authenticate(r); apperr.Code(err) != apperr.EUNAUTHORIZED {
		t.Fatalf("LDAP user without a directory: %v", err)
	}
	if ev := rec.logins("alice"); len(ev) != 1 || !strings.Contains(ev[0].Reason, "not configured") {
		t.Fatalf("audit = %+v", ev)
	}
}

// TestNestedGroupRoles: with auth.ldap.nestedGroups, carol (in nested-a,
// which is in nested-b, which is in nested-c) gets the role project team
// gives nested-c, through the real token endpoint; without it she does
// not.
func TestNestedGroupRoles(t *testing.T) {
	const push = "repository:team/app:pull,push"
	for _, nested := range []bool{true, false} {
		t.Run(fmt.Sprintf("nestedGroups=%v", nested), func(t *testing.T) {
			f := newFixture(t, func(c *config.LDAP) { c.NestedGroups = nested })
			f.srv.Add(t, nestedGroupsLDIF)
			f.member(t, "team", store.MemberGroup, "nested-c", "developer")
			code, got, _ := f.token(t, "carol", "carol-pw", push, false)
			want := []string{"pull", "push"}
			if !nested {
				want = nil
			}
			if code != 200 || !slices.Equal(actionsOf(got), want) {
				t.Fatalf("carol (nested-a < nested-b < nested-c) asking push on team: %d %v, want %v", code, got, want)
			}
			groups, err := f.db.UserGroups(context.Background(), "carol")
			if err != nil {
				t.Fatal(err)
			}
			wantGroups := []string{"nested-a", "nested-b", "nested-c"}
			if !nested {
				wantGroups = []string{"nested-a"}
			}
			if !slices.Equal(groups, wantGroups) {
				t.Fatalf("carol's stored groups = %q, want %q", groups, wantGroups)
			}
		})
	}
}
