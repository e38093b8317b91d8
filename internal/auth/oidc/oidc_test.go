package oidc

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
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
	"github.com/customs-dev/customs/internal/auth/oidc/oidctest"
	"github.com/customs-dev/customs/internal/config"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/sqlite"
)

// recorder keeps audit events.
type recorder struct{ audit.Memory }

// last returns the newest event, or the zero Event.
func (r *recorder) last() audit.Event {
	ev := r.Events(nil)
	if len(ev) == 0 {
		return audit.Event{}
	}
	return ev[len(ev)-1]
}

// fixture is customs' OIDC endpoints and an API stand-in (who the session
// cookie says you are) in front of a real auth.Service and SQLite store, and
// a real provider.
type fixture struct {
	op      *oidctest.Provider
	svc     *auth.Service
	db      *sqlite.DB
	rec     *recorder
	h       *Handler
	url     string // customs' base URL
	now     time.Time
	nowMu   sync.Mutex
	cfg     config.OIDC
	stateKy []byte
}

var testUsers = []oidctest.User{
	{Username: "alice", Password: "alice-pw", Groups: []string{"devs", "customs-admins"}},
	{Username: "bob", Password: "bob-pw", Groups: []string{"devs"}},
	{Username: "Carol", Password: "carol-pw"},
	{Username: "no good", Password: "x"},
}

func newFixture(t *testing.T, edit ...func(*config.OIDC)) *fixture {
	t.Helper()
	f := &fixture{op: oidctest.Start(t, testUsers...), rec: &recorder{}, now: time.Now(), stateKy: []byte("0123456789abcdef0123456789abcdef")}
	ctx := context.Background()
	var err error
	f.db, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "meta.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.db.Close() })
	keys, err := auth.OpenKeyDir(filepath.Join(t.TempDir(), "keys"), auth.KeyDirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.svc, err = auth.NewService(auth.Options{Users: f.db, Projects: f.db, Members: f.db, UserGroups: f.db,
		Keys: keys, Recorder: f.rec, Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	f.url = "http://" + srv.Listener.Addr().String()
	f.op.AllowRedirect(f.url + CallbackPath)
	f.cfg = config.Default().Auth.OIDC
	f.cfg.Issuer, f.cfg.ClientID, f.cfg.ClientSecret = f.op.Issuer, f.op.ClientID, f.op.ClientSecret
	f.cfg.Scopes = []string{"openid", "profile", oidctest.GroupsScope}
	for _, e := range edit {
		e(&f.cfg)
	}
	full := config.Default()
	full.Auth.OIDC = f.cfg
	full.ExternalURL = f.url
	if err := full.Validate(); err != nil {
		t.Fatalf("test configuration invalid: %v", err)
	}
	f.h, err = New(Options{Config: f.cfg, RedirectURL: full.OIDCRedirectURL(), Logins: f.svc, StateKey: f.stateKy, Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/auth/oidc/", f.h)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		p, err := f.svc.AuthenticateAPI(r)
		if err != nil {
			http.Error(w, apperr.Code(err)+": "+apperr.Message(err), map[string]int{
				apperr.EUNAUTHORIZED: 401, apperr.EDENIED: 403}[apperr.Code(err)])
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "kind": p.Kind, "name": p.Name, "admin": p.Admin})
	})
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return f
}

func (f *fixture) clock() time.Time {
	f.nowMu.Lock()
	defer f.nowMu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.nowMu.Lock()
	defer f.nowMu.Unlock()
	f.now = f.now.Add(d)
}

// browser returns a client with a cookie jar that follows redirects.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

// whoami is the stand-in API's answer.
type whoami struct {
	Path  string `json:"path"`
	Kind  string `json:"kind"`
	Name  string `json:"name"`
	Admin bool   `json:"admin"`
}

// login runs the whole flow and returns the final status and body.
func (f *fixture) login(t *testing.T, c *http.Client, username, password, query string) (int, string) {
	t.Helper()
	resp, err := oidctest.Browser(context.Background(), c, f.url+LoginPath+query, username, password)
	if err != nil {
		t.Fatalf("login as %s: %v", username, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func decodeWhoami(t *testing.T, body string) whoami {
	t.Helper()
	var w whoami
	if err := json.Unmarshal([]byte(body), &w); err != nil {
		t.Fatalf("not the API's answer: %q", body)
	}
	return w
}

func TestLogin(t *testing.T) {
	f := newFixture(t, func(c *config.OIDC) { c.AdminGroup = "customs-admins" })
	ctx := context.Background()
	c := browser(t)
	code, body := f.login(t, c, "bob", "bob-pw", "")
	if code != http.StatusOK {
		t.Fatalf("login: %d %s", code, body)
	}
	if w := decodeWhoami(t, body); w.Path != DefaultNext || w.Name != "bob" || w.Kind != "user" || w.Admin {
		t.Fatalf("after logging in, the API sees %+v", w)
	}
	u, err := f.db.User(ctx, "bob")
	if err != nil || u.Source != store.SourceOIDC || u.ExternalID != f.op.Issuer+" sub-bob" || u.PasswordHash != "" {
		t.Fatalf("user = %+v, %v", u, err)
	}
	if g, _ := f.db.UserGroups(ctx, "bob"); !slices.Equal(g, []string{"devs"}) {
		t.Fatalf("groups = %q", g)
	}
	if e := f.rec.last(); e.Action != auth.ActionLogin || e.Actor != "bob" || e.Outcome != audit.Success || e.Details[auth.DetailSource] != "oidc" {
		t.Fatalf("audit = %+v", e)
	}
	base, _ := url.Parse(f.url)
	var session bool
	for _, ck := range c.Jar.Cookies(base) {
		session = session || ck.Name == auth.SessionCookie
	}
	if !session {
		t.Fatal("no session cookie")
	}

	t.Run("admin group", func(t *testing.T) {
		c := browser(t)
		code, body := f.login(t, c, "alice", "alice-pw", "")
		if w := decodeWhoami(t, body); code != 200 || !w.Admin {
			t.Fatalf("alice (customs-admins) = %d %+v", code, w)
		}
		f.op.SetGroups("alice", "devs")
		code, body = f.login(t, browser(t), "alice", "alice-pw", "")
		if w := decodeWhoami(t, body); code != 200 || w.Admin {
			t.Fatalf("alice after leaving customs-admins = %d %+v", code, w)
		}
		// The first session sees the change at once (the store is read).
		resp, err := c.Get(f.url + DefaultNext)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if w := decodeWhoami(t, string(b)); w.Admin {
			t.Fatalf("the older session is still admin: %+v", w)
		}
	})

	t.Run("next", func(t *testing.T) {
		for _, tc := range []struct{ next, want string }{
			{"/ui/projects?x=1", "/ui/projects"},
			{"//evil.example/x", DefaultNext},
			{"https://evil.example/", DefaultNext},
			{"/\\evil.example", DefaultNext},
		} {
			code, body := f.login(t, browser(t), "bob", "bob-pw", "?next="+url.QueryEscape(tc.next))
			if w := decodeWhoami(t, body); code != 200 || w.Path != tc.want {
				t.Errorf("next=%q: landed at %q (%d), want %q", tc.next, w.Path, code, tc.want)
			}
		}
	})

	t.Run("refused", func(t *testing.T) {
		if err := f.db.CreateUser(ctx, &store.User{Name: "carol", PasswordHash: "x"}); err != nil {
			t.Fatal(err)
		}
		if err := f.db.UpdateUser(ctx, &store.User{Name: "bob", Source: store.SourceOIDC, ExternalID: u.ExternalID, Disabled: true}); err != nil {
			t.Fatal(err)
		}
		tests := []struct{ name, user, password, reason string }{
			{"local account of the same name", "Carol", "carol-pw", "taken by a local account"},
			{"disabled", "bob", "bob-pw", "account disabled"},
			{"invalid user name", "no good", "x", "cannot be a customs user name"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				code, body := f.login(t, browser(t), tc.user, tc.password, "")
				if code != http.StatusUnauthorized || !strings.Contains(body, tc.reason) {
					t.Fatalf("login = %d %q, want 401 saying %q", code, body, tc.reason)
				}
				if e := f.rec.last(); e.Outcome != audit.Failure || !strings.Contains(e.Reason, tc.reason) {
					t.Fatalf("audit = %+v", e)
				}
			})
		}
		// A disabled user's existing session ends at once.
		resp, err := c.Get(f.url + DefaultNext)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("session of a disabled user: %d", resp.StatusCode)
		}
	})
}

// TestOtherIdentity: an OIDC account is bound to its subject: another
// identity of the provider with the same user name cannot take it over.
func TestOtherIdentity(t *testing.T) {
	f := newFixture(t)
	if err := f.db.CreateUser(context.Background(), &store.User{Name: "bob", Source: store.SourceOIDC, ExternalID: f.op.Issuer + " someone-else"}); err != nil {
		t.Fatal(err)
	}
	code, body := f.login(t, browser(t), "bob", "bob-pw", "")
	if code != http.StatusUnauthorized || !strings.Contains(body, "another oidc identity") {
		t.Fatalf("login = %d %q", code, body)
	}
}

// TestClaims: the user name and groups come from the ID token, or from the
// userinfo endpoint when the ID token lacks them; a missing user name claim
// is refused, naming the setting.
func TestClaims(t *testing.T) {
	t.Run("groups from userinfo", func(t *testing.T) {
		f := newFixture(t, func(c *config.OIDC) { c.Scopes = []string{"openid", "profile"} })
		if code, body := f.login(t, browser(t), "bob", "bob-pw", ""); code != 200 {
			t.Fatalf("login: %d %s", code, body)
		}
		if g, _ := f.db.UserGroups(context.Background(), "bob"); !slices.Equal(g, []string{"devs"}) {
			t.Fatalf("groups = %q", g)
		}
	})
	t.Run("missing user name claim", func(t *testing.T) {
		f := newFixture(t, func(c *config.OIDC) { c.UsernameClaim = "nickname" })
		code, body := f.login(t, browser(t), "bob", "bob-pw", "")
		if code != http.StatusUnauthorized || !strings.Contains(body, "auth.oidc.usernameClaim") {
			t.Fatalf("login = %d %q", code, body)
		}
	})
	t.Run("email as the user name", func(t *testing.T) {
		f := newFixture(t, func(c *config.OIDC) { c.UsernameClaim, c.Scopes = "email", []string{"openid", "email"} })
		code, body := f.login(t, browser(t), "bob", "bob-pw", "")
		if w := decodeWhoami(t, body); code != 200 || w.Name != "bob@example.org" {
			t.Fatalf("login = %d %+v", code, w)
		}
	})
}

// TestSession: the session cookie authenticates the API, needs the CSRF
// header to change anything, expires, and ends at logout.
func TestSession(t *testing.T) {
	f := newFixture(t)
	c := browser(t)
	if code, body := f.login(t, c, "bob", "bob-pw", ""); code != 200 {
		t.Fatalf("login: %d %s", code, body)
	}
	do := func(method string, csrf bool) (int, string) {
		req, _ := http.NewRequest(method, f.url+"/api/v1/projects", strings.NewReader("{}"))
		if csrf {
			req.Header.Set(auth.CSRFHeader, "1")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := do("GET", false); code != 200 {
		t.Fatalf("GET with the session: %d", code)
	}
	if code, body := do("POST", false); code != http.StatusForbidden || !strings.Contains(body, auth.CSRFHeader) {
		t.Fatalf("POST with the session, without %s: %d %s", auth.CSRFHeader, code, body)
	}
	if code, _ := do("DELETE", true); code != 200 {
		t.Fatalf("DELETE with the session and %s: %d", auth.CSRFHeader, code)
	}
	// A session token is not a bearer token (nor the reverse).
	base, _ := url.Parse(f.url)
	for _, ck := range c.Jar.Cookies(base) {
		if ck.Name == auth.SessionCookie {
			r := httptest.NewRequest("GET", "/v2/", nil)
			r.Header.Set("Authorization", "Bearer "+ck.Value)
			if _, err := f.svc.Authenticate(r); apperr.Code(err) != apperr.EUNAUTHORIZED {
				t.Fatalf("session token as a registry bearer token: %v", err)
			}
		}
	}
	f.advance(8*time.Hour + time.Minute)
	if code, body := do("GET", false); code != http.StatusUnauthorized || !strings.Contains(body, "log in again") {
		t.Fatalf("GET with an expired session: %d %s", code, body)
	}
	f.advance(-8*time.Hour - time.Minute)
	if code, _ := do("GET", false); code != 200 {
		t.Fatalf("GET with the session again: %d", code)
	}
	// A copy of the cookie, as a thief would keep it.
	var stolen string
	for _, ck := range c.Jar.Cookies(base) {
		if ck.Name == auth.SessionCookie {
			stolen = ck.Value
		}
	}
	withCopy := func() (int, string) {
		req, _ := http.NewRequest("GET", f.url+"/api/v1/projects", nil)
		req.AddCookie(&http.Cookie{Name: auth.SessionCookie, Value: stolen})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := withCopy(); code != 200 || !strings.Contains(body, `"name":"bob"`) {
		t.Fatalf("the copied cookie before logout: %d %s", code, body)
	}
	req, _ := http.NewRequest("POST", f.url+LogoutPath, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if code, body := do("GET", false); code != 200 || !strings.Contains(body, `"kind":"anonymous"`) {
		t.Fatalf("after logout: %d %s", code, body)
	}
	// The logout ended the session itself: the copy is refused.
	if code, body := withCopy(); code != http.StatusUnauthorized || !strings.Contains(body, "this session was logged out; log in again") {
		t.Fatalf("the copied cookie after logout: %d %s", code, body)
	}
	if ev := f.rec.Events(func(e audit.Event) bool { return e.Action == auth.ActionLogout }); len(ev) != 1 ||
		ev[0].Actor != "bob" || ev[0].Resource != "user:bob" || ev[0].Outcome != audit.Success {
		t.Fatalf("logout audit events = %+v", ev)
	}
	// Logging out again with the ended (or any invalid) cookie is no error.
	req, _ = http.NewRequest("POST", f.url+LogoutPath, nil)
	req.AddCookie(&http.Cookie{Name: auth.SessionCookie, Value: stolen})
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("second logout: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// Another login of bob gets a new session, unaffected.
	c2 := browser(t)
	if code, body := f.login(t, c2, "bob", "bob-pw", ""); code != 200 || !strings.Contains(body, `"name":"bob"`) {
		t.Fatalf("second login: %d %s", code, body)
	}
}

// TestEndUserSessions: ending all of a user's sessions refuses every
// session issued before (two browsers), and not the sessions of another
// user or those issued after; it is audited.
func TestEndUserSessions(t *testing.T) {
	f := newFixture(t)
	get := func(c *http.Client) (int, string) {
		resp, err := c.Get(f.url + "/api/v1/projects")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	laptop, phone, other := browser(t), browser(t), browser(t)
	for _, l := range []struct {
		c          *http.Client
		user, pass string
	}{{laptop, "bob", "bob-pw"}, {phone, "bob", "bob-pw"}, {other, "alice", "alice-pw"}} {
		if code, body := f.login(t, l.c, l.user, l.pass, ""); code != 200 {
			t.Fatalf("login of %s: %d %s", l.user, code, body)
		}
	}
	r := httptest.NewRequest("DELETE", "/api/v1/users/bob/sessions", nil)
	if err := f.svc.EndUserSessions(context.Background(), r, auth.Principal{Kind: auth.KindUser, Name: "alice", Admin: true}, "bob", ""); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*http.Client{"laptop": laptop, "phone": phone} {
		if code, body := get(c); code != http.StatusUnauthorized || !strings.Contains(body, "log in again") {
			t.Errorf("bob's %s after ending his sessions: %d %s", name, code, body)
		}
	}
	if code, body := get(other); code != 200 || !strings.Contains(body, `"name":"alice"`) {
		t.Errorf("alice's session: %d %s", code, body)
	}
	if code, body := f.login(t, laptop, "bob", "bob-pw", ""); code != 200 || !strings.Contains(body, `"name":"bob"`) {
		t.Fatalf("bob logging in again: %d %s", code, body)
	}
	if ev := f.rec.Events(func(e audit.Event) bool { return e.Action == auth.ActionSessionsRevoke }); len(ev) != 1 ||
		ev[0].Actor != "alice" || ev[0].Resource != "user:bob" {
		t.Fatalf("audit events = %+v", ev)
	}
	if err := f.svc.EndUserSessions(context.Background(), r, auth.Principal{}, "ghost", ""); !apperr.Is(err, apperr.ENOTFOUND) {
		t.Fatalf("ending a missing user's sessions: %v", err)
	}
}

// TestProviderDown: customs starts without its provider; a login then fails
// quickly with 503, and works once the provider is up.
func TestProviderDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	ln.Close()
	h, err := New(Options{Config: config.OIDC{Issuer: issuer, ClientID: "c", UsernameClaim: "sub", Timeout: config.Duration(2 * time.Second)},
		RedirectURL: "http://127.0.0.1:1" + CallbackPath, Logins: struct{ Logins }{}, StateKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(w, httptest.NewRequest("GET", LoginPath, nil))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "cannot be reached") || time.Since(start) > 5*time.Second {
		t.Fatalf("login with the provider down: %d %q after %s", w.Code, w.Body.String(), time.Since(start))
	}
}

func TestNewOptions(t *testing.T) {
	good := Options{Config: config.OIDC{Issuer: "https://id.example.org", ClientID: "c"}, RedirectURL: "https://r.example.org" + CallbackPath,
		Logins: struct{ Logins }{}, StateKey: make([]byte, 32)}
	if _, err := New(good); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for name, edit := range map[string]func(*Options){
		"no logins":     func(o *Options) { o.Logins = nil },
		"short key":     func(o *Options) { o.StateKey = make([]byte, 16) },
		"relative URL":  func(o *Options) { o.RedirectURL = CallbackPath },
		"missing CA":    func(o *Options) { o.Config.CAFile = filepath.Join(t.TempDir(), "none.pem") },
		"CA is not PEM": func(o *Options) { o.Config.CAFile = "oidc.go" },
	} {
		o := good
		edit(&o)
		if _, err := New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
