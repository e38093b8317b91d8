package auth

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/rbac"
	"github.com/customs-dev/customs/internal/store"
)

// recorder keeps audit events for tests.
type recorder struct{ audit.Memory }

// take returns and forgets the recorded events.
func (r *recorder) take() []audit.Event { return r.Take() }

// registryScope returns the registry scope action standing for a, if any.
func registryScope(a rbac.Action) string {
	for _, ra := range registryActions {
		if ra.action == a {
			return ra.scope
		}
	}
	return ""
}

// roleFixture is a fixture where user "<role>" holds that role in priv,
// for every role of the table.
func roleFixture(t *testing.T, mod ...func(*Options)) *fixture {
	t.Helper()
	f := newFixture(t, mod...)
	for _, r := range rbac.Roles() {
		h, err := HashPassword("pw-"+r.String(), fastParams)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.st.CreateUser(context.Background(), &store.User{Name: r.String(), PasswordHash: h}); err != nil {
			t.Fatal(err)
		}
		f.st.setMember("priv", store.MemberUser, r.String(), r.String())
	}
	return f
}

// TestRolesDriveRegistryScopes walks every role and every registry scope
// action, with Basic auth (Authorize) and through a token (the token
// endpoint's intersection), and expects exactly what the rbac table says.
func TestRolesDriveRegistryScopes(t *testing.T) {
	f := roleFixture(t)
	ctx := context.Background()
	for _, role := range rbac.Roles() {
		for _, ra := range registryActions {
			want := rbac.Allowed(role, ra.action)
			t.Run(role.String()+"/"+ra.scope, func(t *testing.T) {
				p := Principal{Kind: KindUser, Name: role.String()}
				err := f.svc.Authorize(ctx, p, Access{Type: TypeRepository, Name: "priv/app", Actions: []string{ra.scope}})
				if (err == nil) != want {
					t.Fatalf("Authorize = %v, want allowed=%v", err, want)
				}
				if err != nil && apperr.Code(err) != apperr.EDENIED {
					t.Fatalf("denial %v, want EDENIED", err)
				}
				_, reply := doToken(t, f, newRequest("GET", "/service/token?service=customs&scope=repository:priv/app:"+ra.scope,
					basic(role.String(), "pw-"+role.String())))
				tp := grantedBy(t, f, reply.Token)
				got := f.svc.Authorize(ctx, tp, Access{Type: TypeRepository, Name: "priv/app", Actions: []string{ra.scope}})
				if (got == nil) != want {
					t.Fatalf("token grants %v; Authorize = %v, want allowed=%v", tp.Granted, got, want)
				}
			})
		}
	}
}

func TestStarScopeGrantsWhatTheRoleHas(t *testing.T) {
	f := roleFixture(t)
	for _, tc := range []struct {
		role rbac.Role
		want []string
	}{
		{rbac.RoleProjectAdmin, []string{"*"}},
		{rbac.RoleMaintainer, []string{"*"}},
		{rbac.RoleDeveloper, []string{"pull", "push"}},
		{rbac.RoleGuest, []string{"pull"}},
		{rbac.RoleLimitedGuest, []string{"pull"}},
	} {
		t.Run(tc.role.String(), func(t *testing.T) {
			_, reply := doToken(t, f, newRequest("GET", "/service/token?scope=repository:priv/app:*",
				basic(tc.role.String(), "pw-"+tc.role.String())))
			p := grantedBy(t, f, reply.Token)
			if len(p.Granted) != 1 || !slices.Equal(p.Granted[0].Actions, tc.want) {
				t.Fatalf("granted %v, want %v", p.Granted, tc.want)
			}
			// A "*" grant is only given with all three actions.
			err := f.svc.Authorize(context.Background(), p, Access{Type: TypeRepository, Name: "priv/app", Actions: []string{"delete"}})
			if (err == nil) != (slices.Contains(tc.want, "delete") || slices.Contains(tc.want, "*")) {
				t.Fatalf("delete with %v: %v", p.Granted, err)
			}
		})
	}
}

func TestGroupMembershipsAndSeveralRoles(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		o.Groups = func(_ context.Context, user string) ([]string, error) {
			if user == "alice" {
				return []string{"ops"}, nil
			}
			return nil, nil
		}
	})
	ctx := context.Background()
	f.st.setMember("priv", store.MemberUser, "alice", "guest")
	f.st.setMember("priv", store.MemberGroup, "ops", "maintainer")
	set, err := f.svc.ProjectPermissions(ctx, Principal{Kind: KindUser, Name: "alice"}, "priv")
	if err != nil || set != rbac.Permissions(rbac.RoleMaintainer) {
		t.Fatalf("alice (guest, and maintainer through ops) may %v (%v), want maintainer's", set.Strings(), err)
	}
	f.st.setMember("priv", store.MemberUser, "bob", "no-such-role")
	set, err = f.svc.ProjectPermissions(ctx, Principal{Kind: KindUser, Name: "bob"}, "priv")
	if err != nil || set != 0 {
		t.Fatalf("an unknown stored role grants %v (%v)", set.Strings(), err)
	}
	set, err = f.svc.ProjectPermissions(ctx, Principal{Kind: KindUser, Name: "bob"}, "pub")
	if err != nil || set != rbac.Public() {
		t.Fatalf("in a public project a non-member may %v (%v), want the public actions", set.Strings(), err)
	}
}

// robotFixture adds robots: ci (project priv: pull, push), sys (every
// project: pull), disabled, expired and a project robot of pub claiming priv.
func robotFixture(t *testing.T, mod ...func(*Options)) (*fixture, map[string]string) {
	t.Helper()
	f := newFixture(t, mod...)
	secrets := map[string]string{}
	add := func(r store.Robot) {
		s, err := NewRobotSecret()
		if err != nil {
			t.Fatal(err)
		}
		r.SecretHash = hashRobotSecret(testPepper, r.Name, s)
		f.st.putRobot(r)
		secrets[r.Name] = s
	}
	add(store.Robot{Name: "robot$priv+ci", Project: "priv", Permissions: []store.RobotPermission{{Project: "priv", Actions: []string{"pull", "push"}}}})
	add(store.Robot{Name: "robot$sys", Permissions: []store.RobotPermission{{Project: "*", Actions: []string{"pull"}}}})
	add(store.Robot{Name: "robot$priv+off", Project: "priv", Disabled: true, Permissions: []store.RobotPermission{{Project: "priv", Actions: []string{"pull"}}}})
	add(store.Robot{Name: "robot$priv+old", Project: "priv", ExpiresAt: f.clock.Now().Add(time.Hour),
		Permissions: []store.RobotPermission{{Project: "priv", Actions: []string{"pull"}}}})
	add(store.Robot{Name: "robot$pub+sneaky", Project: "pub", Permissions: []store.RobotPermission{{Project: "priv", Actions: []string{"pull"}}, {Project: "*", Actions: []string{"push"}}}})
	return f, secrets
}

func TestRobotPermissions(t *testing.T) {
	f, secrets := robotFixture(t)
	ctx := context.Background()
	repo := func(name string, acts ...string) Access {
		return Access{Type: TypeRepository, Name: name, Actions: acts}
	}
	cases := []struct {
		name  string
		robot string
		a     Access
		ok    bool
	}{
		{"project robot pulls", "robot$priv+ci", repo("priv/app", "pull"), true},
		{"project robot pushes", "robot$priv+ci", repo("priv/app", "pull", "push"), true},
		{"project robot cannot delete", "robot$priv+ci", repo("priv/app", "delete"), false},
		{"project robot pulls a public project", "robot$priv+ci", repo("pub/app", "pull"), true},
		{"project robot cannot push elsewhere", "robot$priv+ci", repo("pub/app", "push"), false},
		{"system robot pulls everywhere", "robot$sys", repo("priv/x/y", "pull"), true},
		{"system robot cannot push", "robot$sys", repo("priv/app", "push"), false},
		{"project robot never outside its project", "robot$pub+sneaky", repo("priv/app", "pull"), false},
		{"project robot star permission stays home", "robot$pub+sneaky", repo("pub/app", "push"), true},
		{"robot catalog", "robot$sys", Access{Type: TypeRegistry, Name: "catalog", Actions: []string{"*"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := f.svc.Authenticate(newRequest("GET", "/v2/", basic(tc.robot, secrets[tc.robot])))
			if err != nil || p.Kind != KindRobot || p.Name != tc.robot || p.Admin {
				t.Fatalf("robot login: %+v, %v", p, err)
			}
			if err := f.svc.Authorize(ctx, p, tc.a); (err == nil) != tc.ok {
				t.Fatalf("Authorize(%s) = %v, want allowed=%v", tc.a, err, tc.ok)
			}
			_, reply := doToken(t, f, newRequest("GET", "/service/token?scope="+url.QueryEscape(tc.a.String()), basic(tc.robot, secrets[tc.robot])))
			tp := grantedBy(t, f, reply.Token)
			if tp.Kind != KindRobot || tp.Name != tc.robot {
				t.Fatalf("token principal %+v", tp)
			}
			if err := f.svc.Authorize(ctx, tp, tc.a); (err == nil) != tc.ok {
				t.Fatalf("token grants %v: Authorize = %v, want allowed=%v", tp.Granted, err, tc.ok)
			}
		})
	}
}

func TestRobotLoginRefused(t *testing.T) {
	f, secrets := robotFixture(t)
	rec := &recorder{}
	f.svc.recorder = rec
	login := func(name, secret string) error {
		_, err := f.svc.Authenticate(newRequest("GET", "/v2/", basic(name, secret)))
		return err
	}
	if err := login("robot$priv+old", secrets["robot$priv+old"]); err != nil {
		t.Fatalf("robot before expiry: %v", err)
	}
	f.clock.Advance(time.Hour)
	for _, tc := range []struct{ name, robot, secret, reason string }{
		{"wrong secret", "robot$priv+ci", secrets["robot$sys"], "wrong secret"},
		{"unknown robot", "robot$priv+nobody", "x", "no such robot"},
		{"disabled", "robot$priv+off", secrets["robot$priv+off"], "robot disabled"},
		{"expired", "robot$priv+old", secrets["robot$priv+old"], "robot expired"},
		{"case trick", "ROBOT$priv+ci", secrets["robot$priv+ci"], "no such user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec.take()
			err := login(tc.robot, tc.secret)
			if apperr.Code(err) != apperr.EUNAUTHORIZED || apperr.Message(err) != msgBadLogin {
				t.Fatalf("login = %v, want the one bad-login answer", err)
			}
			ev := rec.take()
			if len(ev) != 1 || ev[0].Action != ActionLogin || ev[0].Outcome != audit.Failure || ev[0].Reason != tc.reason || ev[0].Actor != tc.robot {
				t.Fatalf("audit %+v, want one failed login with reason %q", ev, tc.reason)
			}
		})
	}
	// The refresh token of an expired robot is refused too.
	r, _ := f.st.Robot(context.Background(), "robot$priv+old")
	if _, err := f.svc.identity(context.Background(), Principal{Kind: KindRobot, Name: r.Name, Token: true}); err == nil {
		t.Fatal("an expired robot's token still resolves to an identity")
	}
}

func TestRobotRotationAndRefresh(t *testing.T) {
	f, secrets := robotFixture(t)
	name, old := "robot$priv+ci", secrets["robot$priv+ci"]
	form := url.Values{"grant_type": {"password"}, "username": {name}, "password": {old}, "access_type": {"offline"}, "scope": {"repository:priv/app:pull"}}
	w, reply := doToken(t, f, postForm(form))
	if w.Code != 200 || reply.RefreshToken == "" {
		t.Fatalf("robot password grant: %d %s", w.Code, w.Body)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {reply.RefreshToken}, "scope": {"repository:priv/app:pull"}}
	if w, reply := doToken(t, f, postForm(refresh)); w.Code != 200 || len(grantedBy(t, f, reply.Token).Granted) != 1 {
		t.Fatalf("robot refresh: %d %s", w.Code, w.Body)
	}
	// Rotate: a new secret, the old one and the refresh token die at once.
	rb, _ := f.st.Robot(context.Background(), name)
	fresh, _ := NewRobotSecret()
	rb.SecretHash = hashRobotSecret(testPepper, name, fresh)
	f.st.putRobot(*rb)
	if _, err := f.svc.Authenticate(newRequest("GET", "/v2/", basic(name, old))); apperr.Code(err) != apperr.EUNAUTHORIZED {
		t.Fatalf("old secret after rotation: %v", err)
	}
	if _, err := f.svc.Authenticate(newRequest("GET", "/v2/", basic(name, fresh))); err != nil {
		t.Fatalf("new secret after rotation: %v", err)
	}
	if w, _ := doToken(t, f, postForm(refresh)); w.Code != 401 {
		t.Fatalf("refresh token after rotation: %d %s", w.Code, w.Body)
	}
}

func TestRobotSecretsAndNames(t *testing.T) {
	a, err := NewRobotSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewRobotSecret()
	if len(a) < 32 || a == b {
		t.Fatalf("secrets %q and %q", a, b)
	}
	h := hashRobotSecret(testPepper, "robot$x", a)
	if strings.Contains(h, a) || !verifyRobotSecret(testPepper, "robot$x", a, h) {
		t.Fatalf("hash %q", h)
	}
	for _, bad := range []struct{ pepper, name, secret string }{
		{"another pepper, 32 bytes long....", "robot$x", a},
		{string(testPepper), "robot$y", a},
		{string(testPepper), "robot$x", b},
	} {
		if verifyRobotSecret([]byte(bad.pepper), bad.name, bad.secret, h) {
			t.Errorf("verified with %+v", bad)
		}
	}
	for _, tc := range []struct{ project, short, want string }{
		{"proj", "ci", "robot$proj+ci"},
		{"", "scanner", "robot$scanner"},
		{"p", "a.b_c-d", "robot$p+a.b_c-d"},
		{"p", "CI", ""},
		{"p", "a+b", ""},
		{"p", "a$b", ""},
		{"p", "../x", ""},
		{"p", "", ""},
	} {
		got, err := RobotName(tc.project, tc.short)
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("RobotName(%q, %q) = %q, %v", tc.project, tc.short, got, err)
		}
	}
}

func TestAuthenticateAPI(t *testing.T) {
	f, secrets := robotFixture(t)
	ctx := context.Background()
	token := func(auth, scope string) string {
		_, reply := doToken(t, f, newRequest("GET", "/service/token?scope="+url.QueryEscape(scope), auth))
		return reply.Token
	}
	apiTok := token(basic("alice", alicePW), "api:v1:*")
	regTok := token(basic("admin", adminPW), "repository:priv/app:pull")
	adminTok := token(basic("admin", adminPW), "api:v1:*")
	robotTok := token(basic("robot$priv+ci", secrets["robot$priv+ci"]), "api:v1:*")
	cases := []struct {
		name, auth string
		want       Principal
		code       string
	}{
		{"none", "", Anonymous, ""},
		{"basic user", basic("alice", alicePW), Principal{Kind: KindUser, Name: "alice"}, ""},
		{"basic admin", basic("admin", adminPW), Principal{Kind: KindUser, Name: "admin", Admin: true}, ""},
		{"basic robot", basic("robot$priv+ci", secrets["robot$priv+ci"]), Principal{Kind: KindRobot, Name: "robot$priv+ci"}, ""},
		{"api token", "Bearer " + apiTok, Principal{Kind: KindUser, Name: "alice"}, ""},
		{"admin api token is admin", "Bearer " + adminTok, Principal{Kind: KindUser, Name: "admin", Admin: true}, ""},
		{"robot api token", "Bearer " + robotTok, Principal{Kind: KindRobot, Name: "robot$priv+ci"}, ""},
		{"registry token refused", "Bearer " + regTok, Principal{}, apperr.EUNAUTHORIZED},
		{"garbage token", "Bearer abc", Principal{}, apperr.EUNAUTHORIZED},
		{"bad password", basic("alice", "nope"), Principal{}, apperr.EUNAUTHORIZED},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := f.svc.AuthenticateAPI(newRequest("GET", "/api/v1/users/me", tc.auth))
			if apperr.Code(err) != tc.code {
				t.Fatalf("AuthenticateAPI = %+v, %v; want code %q", p, err, tc.code)
			}
			if err == nil && (p.Kind != tc.want.Kind || p.Name != tc.want.Name || p.Admin != tc.want.Admin || p.Token) {
				t.Fatalf("principal %+v, want %+v", p, tc.want)
			}
		})
	}
	// Demoting, disabling and deleting apply to API tokens at once.
	u, _ := f.st.User(ctx, "admin")
	u.Admin = false
	_ = f.st.UpdateUser(ctx, u)
	if p, err := f.svc.AuthenticateAPI(newRequest("GET", "/api/v1/users/me", "Bearer "+adminTok)); err != nil || p.Admin {
		t.Fatalf("demoted admin's API token: %+v, %v", p, err)
	}
	u, _ = f.st.User(ctx, "alice")
	u.Disabled = true
	_ = f.st.UpdateUser(ctx, u)
	if _, err := f.svc.AuthenticateAPI(newRequest("GET", "/api/v1/users/me", "Bearer "+apiTok)); apperr.Code(err) != apperr.EUNAUTHORIZED {
		t.Fatalf("disabled user's API token: %v", err)
	}
	rb, _ := f.st.Robot(ctx, "robot$priv+ci")
	rb.Disabled = true
	f.st.putRobot(*rb)
	if _, err := f.svc.AuthenticateAPI(newRequest("GET", "/api/v1/users/me", "Bearer "+robotTok)); apperr.Code(err) != apperr.EUNAUTHORIZED {
		t.Fatalf("disabled robot's API token: %v", err)
	}
}

// TestRevocation: a removed member keeps what their current token grants
// until it expires (TokenTTL) but gets nothing new; Basic-authenticated
// requests see the change once the permission cache forgets it.
func TestRevocation(t *testing.T) {
	f := roleFixture(t)
	ctx := context.Background()
	dev := basic("developer", "pw-developer")
	_, reply := doToken(t, f, newRequest("GET", "/service/token?scope=repository:priv/app:pull,push", dev))
	tok := grantedBy(t, f, reply.Token)
	push := Access{Type: TypeRepository, Name: "priv/app", Actions: []string{"push"}}
	p, err := f.svc.Authenticate(newRequest("GET", "/v2/", dev))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Authorize(ctx, p, push); err != nil {
		t.Fatalf("developer push: %v", err)
	}
	before := f.st.lookupCount()
	if err := f.svc.Authorize(ctx, p, push); err != nil || f.st.lookupCount() != before {
		t.Fatalf("second check (%v) read the store again: %d lookups", err, f.st.lookupCount()-before)
	}

	f.st.setMember("priv", store.MemberUser, "developer", "")
	if err := f.svc.Authorize(ctx, tok, push); err != nil {
		t.Fatalf("the token in flight stops before TokenTTL: %v", err)
	}
	_, reply = doToken(t, f, newRequest("GET", "/service/token?scope=repository:priv/app:pull,push", dev))
	if g := grantedBy(t, f, reply.Token).Granted; len(g) != 0 {
		t.Fatalf("a removed member got a new token granting %v", g)
	}
	f.svc.ForgetPermissions()
	if err := f.svc.Authorize(ctx, p, push); apperr.Code(err) != apperr.EDENIED {
		t.Fatalf("Basic push after removal and ForgetPermissions: %v", err)
	}
	f.st.setMember("priv", store.MemberUser, "developer", "developer")
	f.clock.Advance(6 * time.Second) // past the default PermissionCacheTTL
	if err := f.svc.Authorize(ctx, p, push); err != nil {
		t.Fatalf("Basic push after re-adding, once the cache expired: %v", err)
	}
	f.clock.Advance(5*time.Minute + clockSkew)
	if _, err := f.svc.Authenticate(newRequest("GET", "/v2/", "Bearer "+reply.Token)); apperr.Code(err) != apperr.EUNAUTHORIZED {
		t.Fatalf("token after TokenTTL: %v", err)
	}
}

func TestLoginAndTokenAudit(t *testing.T) {
	rec := &recorder{}
	f := roleFixture(t, func(o *Options) { o.Recorder = rec })
	dev := basic("developer", "pw-developer")
	for range 3 { // verified once, then served from the credential cache
		if _, err := f.svc.Authenticate(newRequest("GET", "/v2/", dev)); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = f.svc.Authenticate(newRequest("GET", "/v2/", basic("developer", "wrong")))
	r := newRequest("GET", "/service/token?scope=repository:priv/app:pull,push,delete", dev)
	r.Header.Set("User-Agent", "skopeo/1.13")
	r.RemoteAddr = "192.0.2.7:4242"
	doToken(t, f, r)
	ev := rec.take()
	if len(ev) != 3 {
		t.Fatalf("events %+v, want login success, login failure, token issue", ev)
	}
	if ev[0].Action != ActionLogin || ev[0].Outcome != audit.Success || ev[0].Actor != "developer" || ev[0].ActorKind != "user" {
		t.Errorf("first event %+v", ev[0])
	}
	if ev[1].Action != ActionLogin || ev[1].Outcome != audit.Failure || ev[1].Reason != "wrong password" {
		t.Errorf("second event %+v", ev[1])
	}
	tok := ev[2]
	if tok.Action != ActionTokenIssue || tok.Outcome != audit.Success || tok.Actor != "developer" || tok.Project != "priv" ||
		tok.ClientIP != "192.0.2.7" || tok.UserAgent != "skopeo/1.13" ||
		tok.Details["requested"] != "repository:priv/app:pull,push,delete" || tok.Details["granted"] != "repository:priv/app:pull,push" {
		t.Errorf("token event %+v", tok)
	}
	for _, e := range ev {
		for _, v := range append([]string{e.Reason, e.Resource}, mapValues(e.Details)...) {
			if strings.Contains(v, "pw-developer") || strings.Contains(v, "wrong") && e.Reason != "wrong password" {
				t.Errorf("event %+v carries a password", e)
			}
		}
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestNewServiceRobotPepper(t *testing.T) {
	f := newFixture(t)
	_, err := NewService(Options{Users: f.st, Projects: f.st, Robots: f.st, RobotPepper: []byte("short"), Keys: f.keys})
	if apperr.Code(err) != apperr.EINVALID || !strings.Contains(apperr.Message(err), "RobotPepper") {
		t.Fatalf("short pepper: %v", err)
	}
	svc, err := NewService(Options{Users: f.st, Projects: f.st, Keys: f.keys})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RobotSecretHash("robot$x", "s"); err == nil {
		t.Fatal("robot secrets hashed without robots enabled")
	}
	if _, err := svc.Authenticate(newRequest("GET", "/v2/", basic("robot$x", "s"))); apperr.Code(err) != apperr.EUNAUTHORIZED {
		t.Fatalf("robot login without robots enabled: %v", err)
	}
}

func TestDenialSaysWhoMayNotDoWhat(t *testing.T) {
	f := roleFixture(t)
	ctx := context.Background()
	guest := Principal{Kind: KindUser, Name: "guest"}
	err := f.svc.Authorize(ctx, guest, Access{Type: TypeRepository, Name: "priv/app", Actions: []string{"pull", "push"}})
	if apperr.Code(err) != apperr.EDENIED || apperr.Message(err) != "requested access to the resource is denied: guest may not push to priv/app" {
		t.Fatalf("Basic denial: %v", err)
	}
	tok := Principal{Kind: KindUser, Name: "guest", Token: true, Granted: []Access{{Type: TypeRepository, Name: "priv/app", Actions: []string{"pull"}}}}
	err = f.svc.Authorize(ctx, tok, Access{Type: TypeRepository, Name: "priv/app", Actions: []string{"delete"}})
	if apperr.Code(err) != apperr.EUNAUTHORIZED || apperr.Detail(err) != "DENIED" ||
		apperr.Message(err) != "requested access to the resource is denied: guest may not delete in priv/app" {
		t.Fatalf("token denial: %v", err)
	}
	err = f.svc.Authorize(ctx, guest, Access{Type: TypeRegistry, Name: "catalog", Actions: []string{"*"}})
	if apperr.Message(err) != "requested access to the resource is denied: guest may not use the registry's catalog" {
		t.Fatalf("catalog denial: %v", err)
	}
}
