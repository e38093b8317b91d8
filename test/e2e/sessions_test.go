package e2e_test

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/auth/oidc/oidctest"
	"github.com/customs-dev/customs/internal/store/postgres/pgtest"
	"github.com/customs-dev/customs/test/e2e/harness"
)

// TestOIDCSessionRevocation runs the real customs serve against a real
// OpenID provider: a logout ends the session itself (a copy of the cookie
// is refused), logging out everywhere ends two browser sessions and the
// refresh token customs login kept (the CLI secret keeps working), a user
// cannot end another's sessions, an administrator can (customs user
// revoke-sessions), disabling ends them for good, and each end is audited.
func TestOIDCSessionRevocation(t *testing.T) {
	t.Parallel()
	if os.Getenv(harness.EnvTarget) == harness.KindDistribution {
		t.Skip("OIDC login is customs'")
	}
	op := oidctest.Start(t,
		oidctest.User{Username: "alice", Password: "alice-pw", Groups: []string{"devs"}},
		oidctest.User{Username: "mallory", Password: "mallory-pw"})
	addr, env := oidcLogin(t, op)
	srv := harness.StartCustoms(t, harness.Options{Args: []string{"--addr", addr}, Env: env})
	customs := harness.CustomsBinary(t)
	admin := harness.NewClient(t)
	admin.MustInput(t, srv.Password+"\n", customs, "login", srv.URL(), "-u", srv.Username, "--password-stdin")

	// me asks who a session cookie value is, without a browser's jar.
	me := func(cookie string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL()+"/api/v1/users/me", nil)
		req.AddCookie(&http.Cookie{Name: "customs_session", Value: cookie})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	cookieOf := func(b *http.Client) string {
		t.Helper()
		u, _ := url.Parse(srv.URL())
		for _, c := range b.Jar.Cookies(u) {
			if c.Name == "customs_session" {
				return c.Value
			}
		}
		t.Fatal("the browser has no session cookie")
		return ""
	}
	refused := func(what string, b *http.Client) {
		t.Helper()
		if code := browserDo(t, b, "GET", srv.URL()+"/api/v1/users/me", nil); code != http.StatusUnauthorized {
			t.Fatalf("%s: the session still works (%d)", what, code)
		}
	}

	t.Run("logout ends a copied cookie", func(t *testing.T) {
		b := newBrowser(t)
		browserLogin(t, b, srv, "alice", "alice-pw")
		stolen := cookieOf(b)
		if code, body := me(stolen); code != 200 || !strings.Contains(body, `"alice"`) {
			t.Fatalf("the copied cookie before logout: %d %s", code, body)
		}
		if code := browserDo(t, b, "POST", srv.URL()+"/api/v1/auth/oidc/logout", nil); code != http.StatusNoContent {
			t.Fatalf("logout: %d", code)
		}
		code, body := me(stolen)
		if code != http.StatusUnauthorized || !strings.Contains(body, "this session was logged out; log in again") {
			t.Fatalf("the copied cookie after logout: %d %s", code, body)
		}
	})

	t.Run("log out everywhere", func(t *testing.T) {
		laptop, phone := newBrowser(t), newBrowser(t)
		browserLogin(t, laptop, srv, "alice", "alice-pw")
		browserLogin(t, phone, srv, "alice", "alice-pw")
		secret := createCLISecret(t, laptop, srv)
		cli := harness.NewClient(t)
		cli.MustInput(t, secret+"\n", customs, "login", srv.URL(), "-u", "alice", "--password-stdin")
		cli.Must(t, customs, "user", "whoami")

		// mallory may not end alice's sessions.
		m := newBrowser(t)
		browserLogin(t, m, srv, "mallory", "mallory-pw")
		if code := browserDo(t, m, "DELETE", srv.URL()+"/api/v1/users/alice/sessions", nil); code != http.StatusForbidden {
			t.Fatalf("mallory ending alice's sessions: %d", code)
		}
		if code := browserDo(t, phone, "GET", srv.URL()+"/api/v1/users/me", nil); code != 200 {
			t.Fatalf("alice's phone after mallory's attempt: %d", code)
		}

		if code := browserDo(t, laptop, "DELETE", srv.URL()+"/api/v1/users/me/sessions", nil); code != http.StatusNoContent {
			t.Fatalf("alice logging out everywhere: %d", code)
		}
		refused("laptop", laptop)
		refused("phone", phone)
		if r := cli.Run(t, customs, "user", "whoami"); r.Err == nil || !strings.Contains(r.Stderr, "log in again") {
			t.Fatalf("customs login's refresh token after log out everywhere:\n%s", r)
		}
		// The CLI secret is a credential, not a session: it still logs in.
		cli.MustInput(t, secret+"\n", customs, "login", srv.URL(), "-u", "alice", "--password-stdin")
		cli.Must(t, customs, "user", "whoami")
		if code := browserDo(t, m, "GET", srv.URL()+"/api/v1/users/me", nil); code != 200 {
			t.Fatalf("mallory's session after alice logged out everywhere: %d", code)
		}
	})

	t.Run("administrator and disabling", func(t *testing.T) {
		b := newBrowser(t)
		browserLogin(t, b, srv, "alice", "alice-pw")
		if out := admin.Must(t, customs, "user", "revoke-sessions", "alice"); !strings.Contains(out, "sessions and refresh tokens of alice ended") {
			t.Fatalf("revoke-sessions: %s", out)
		}
		refused("after the administrator's revoke-sessions", b)

		browserLogin(t, b, srv, "alice", "alice-pw")
		admin.Must(t, customs, "user", "disable", "alice")
		refused("alice disabled", b)
		admin.Must(t, customs, "user", "enable", "alice")
		refused("alice enabled again, with the session from before", b)
		browserLogin(t, b, srv, "alice", "alice-pw")
	})

	t.Run("audit", func(t *testing.T) {
		auditHas(t, admin, customs, "alice", `"action":"user.logout"`, `"action":"user.sessions.revoke"`)
		// (auditHas compares without spaces.)
		out := auditHas(t, admin, customs, srv.Username, `"action":"user.sessions.revoke"`, `"reason":"accountdisabled"`,
			`"reason":"accountenabled"`)
		if !strings.Contains(out, `"resource":"user:alice"`) {
			t.Fatalf("the administrator's events:\n%s", out)
		}
		auditHas(t, admin, customs, "mallory", `"action":"user.sessions.revoke"`, `"outcome":"denied"`)
	})
}

// TestOIDCSessionRevocationAcrossReplicas: two replicas of the real customs
// serve share a data directory and a PostgreSQL database. A session
// checked on replica B (so B has verified and remembered its token) and
// logged out on replica A is refused by B at once; "log out everywhere"
// asked of B ends the sessions on A at once. No delay, no cache to wait
// for.
func TestOIDCSessionRevocationAcrossReplicas(t *testing.T) {
	t.Parallel()
	if os.Getenv(harness.EnvTarget) == harness.KindDistribution {
		t.Skip("OIDC login is customs'")
	}
	dsn := pgtest.Schema(t, "e2e_")
	op := oidctest.Start(t, oidctest.User{Username: "alice", Password: "alice-pw"})
	addrA, env := oidcLogin(t, op)
	opts := harness.Options{DataDir: t.TempDir(), Password: "replicas-admin-pw",
		Args: []string{"--db-driver", "postgres", "--db-dsn", dsn}, Env: env}
	optsA := opts
	optsA.Args = append([]string{"--addr", addrA}, opts.Args...)
	a := harness.StartCustoms(t, optsA)
	b := harness.StartCustoms(t, opts)

	// on asks replica srv who a session cookie value is (method GET), or
	// sends method with it and the CSRF header.
	on := func(srv *harness.Server, method, path, cookie string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL()+path, nil)
		req.AddCookie(&http.Cookie{Name: "customs_session", Value: cookie})
		req.Header.Set("X-Customs-CSRF", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	login := func() string {
		t.Helper()
		br := newBrowser(t)
		browserLogin(t, br, a, "alice", "alice-pw")
		u, _ := url.Parse(a.URL())
		for _, c := range br.Jar.Cookies(u) {
			if c.Name == "customs_session" {
				return c.Value
			}
		}
		t.Fatal("no session cookie after the login")
		return ""
	}

	s := login()
	for i := 0; i < 2; i++ { // twice: the second answer of B comes from its verified-token cache
		if code, body := on(b, "GET", "/api/v1/users/me", s); code != 200 || !strings.Contains(body, `"alice"`) {
			t.Fatalf("the session on replica B: %d %s", code, body)
		}
	}
	if code, body := on(a, "POST", "/api/v1/auth/oidc/logout", s); code != http.StatusNoContent {
		t.Fatalf("logout on replica A: %d %s", code, body)
	}
	if code, body := on(b, "GET", "/api/v1/users/me", s); code != http.StatusUnauthorized || !strings.Contains(body, "logged out") {
		t.Fatalf("the logged-out session on replica B, right after: %d %s", code, body)
	}

	s1, s2 := login(), login()
	for _, s := range []string{s1, s2} {
		if code, _ := on(a, "GET", "/api/v1/users/me", s); code != 200 {
			t.Fatalf("a new session on replica A: %d", code)
		}
	}
	if code, body := on(b, "DELETE", "/api/v1/users/me/sessions", s1); code != http.StatusNoContent {
		t.Fatalf("log out everywhere on replica B: %d %s", code, body)
	}
	for _, s := range []string{s1, s2} {
		if code, body := on(a, "GET", "/api/v1/users/me", s); code != http.StatusUnauthorized {
			t.Fatalf("a session on replica A right after log out everywhere on B: %d %s", code, body)
		}
	}
}
