package e2e_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/auth/ldap/ldaptest"
	"github.com/customs-dev/customs/internal/auth/oidc/oidctest"
	"github.com/customs-dev/customs/test/e2e/harness"
)

// ldapCacheTTL is the directory login cache of the LDAP test's server:
// short, so that directory changes show within the test.
const ldapCacheTTL = 2 * time.Second

// TestLDAPLogin runs customs against a real OpenLDAP: directory users log
// in with registry clients (crane, skopeo), a group's project role lets its
// members push, leaving the group takes the role away once the login cache
// expires, bad and hostile logins are refused, and a directory that is down
// gives a clear error quickly.
func TestLDAPLogin(t *testing.T) {
	t.Parallel()
	if os.Getenv(harness.EnvTarget) == harness.KindDistribution {
		t.Skip("directory login is customs'")
	}
	harness.Tool(t, "crane")
	harness.Tool(t, "skopeo")
	dir := ldaptest.Start(t)
	dir.Add(t, ldaptest.User("bob", "bob-pw")+ldaptest.User("carol", "carol-pw")+ldaptest.User("dan", "dan-pw")+
		ldaptest.Group("devs", "bob", "dan")+ldaptest.Group("qa", "carol"))
	srv := harness.StartCustoms(t, harness.Options{Env: []string{
		"CUSTOMS_AUTH_LDAP_URL=" + dir.URL,
		"CUSTOMS_AUTH_LDAP_BIND_DN=" + ldaptest.ServiceDN,
		"CUSTOMS_AUTH_LDAP_BIND_PASSWORD=" + ldaptest.ServicePassword,
		"CUSTOMS_AUTH_LDAP_BASE_DN=" + ldaptest.PeopleDN,
		"CUSTOMS_AUTH_LDAP_GROUP_BASE_DN=" + ldaptest.GroupsDN,
		"CUSTOMS_AUTH_LDAP_CACHE_TTL=" + ldapCacheTTL.String(),
		"CUSTOMS_AUTH_LDAP_TIMEOUT=2s",
	}})
	customs := harness.CustomsBinary(t)
	srv.CreateProject(t, "team", false)
	admin := harness.NewClient(t)
	admin.MustInput(t, srv.Password+"\n", customs, "login", srv.URL(), "-u", srv.Username, "--password-stdin")
	admin.Must(t, customs, "project", "member", "add", "team", "devs", "--role", "developer", "--group")
	admin.Must(t, customs, "project", "member", "add", "team", "qa", "--role", "guest", "--group")
	src := writeImageLayout(t, randomImage(t, 7, 4096), "v1")
	repo := srv.Addr + "/team/app"

	// bob, a member of devs (developer), pushes; carol (qa, guest) pulls
	// but may not push.
	bob := harness.NewClient(t)
	bob.MustInput(t, "bob-pw\n", "skopeo", "login", "--tls-verify=false", "-u", "bob", "--password-stdin", srv.Addr)
	bob.MustInput(t, "bob-pw", "crane", "auth", "login", srv.Addr, "-u", "bob", "--password-stdin")
	bob.Must(t, "crane", "push", "--insecure", src, repo+":v1")
	carol := harness.NewClient(t)
	carol.MustInput(t, "carol-pw", "crane", "auth", "login", srv.Addr, "-u", "carol", "--password-stdin")
	if r := carol.Run(t, "crane", "push", "--insecure", src, repo+":carol"); r.Err == nil || !strings.Contains(strings.ToLower(r.Stderr), "denied") {
		t.Fatalf("carol (not in devs) pushed to team:\n%s", r)
	}
	carol.Must(t, "crane", "digest", "--insecure", repo+":v1")

	// The API takes directory passwords too: customs login keeps a refresh
	// token that lives while the directory has bob.
	bob.MustInput(t, "bob-pw\n", customs, "login", srv.URL(), "-u", "bob", "--password-stdin")
	if out := bob.Must(t, customs, "project", "list"); !strings.Contains(out, "team") {
		t.Fatalf("bob's projects:\n%s", out)
	}

	// CLI secrets are for OIDC users only.
	req, _ := http.NewRequest("POST", srv.URL()+"/api/v1/users/me/cli-secret", nil)
	req.SetBasicAuth("bob", "bob-pw")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else if body, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "log in through OIDC") {
		t.Fatalf("an LDAP user asking for a CLI secret: %d %s", resp.StatusCode, body)
	}

	// The user exists now, of source ldap, with the directory's groups.
	var user struct {
		Name   string   `json:"name"`
		Source string   `json:"source"`
		Groups []string `json:"groups"`
	}
	apiGet(t, srv, "/api/v1/users/bob", &user)
	if user.Source != "ldap" || !slices.Equal(user.Groups, []string{"devs"}) {
		t.Fatalf("GET /api/v1/users/bob = %+v", user)
	}

	t.Run("refused logins", func(t *testing.T) {
		tests := []struct{ name, user, password string }{
			{"wrong password", "bob", "carol-pw"},
			{"empty password", "bob", ""},
			{"unknown user", "mallory", "bob-pw"},
			{"filter injection", "*)(uid=*", "bob-pw"},
			{"wildcard", "b*", "bob-pw"},
			{"service account", "customs", ldaptest.ServicePassword},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				req, _ := http.NewRequest("GET", srv.URL()+"/v2/", nil)
				req.SetBasicAuth(tc.user, tc.password)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("GET /v2/ as %q: %d, want 401", tc.user, resp.StatusCode)
				}
			})
		}
		c := harness.NewClient(t)
		if r := c.RunInput(t, "carol-pw\n", "skopeo", "login", "--tls-verify=false", "-u", "bob", "--password-stdin", srv.Addr); r.Err == nil ||
			!strings.Contains(r.Stderr, "invalid username/password") {
			t.Fatalf("skopeo login with a wrong password:\n%s", r)
		}
	})

	t.Run("leaving the group", func(t *testing.T) {
		dir.Modify(t, "dn: cn=devs,"+ldaptest.GroupsDN+"\nchangetype: modify\ndelete: member\nmember: "+ldaptest.UserDN("bob")+"\n")
		time.Sleep(ldapCacheTTL + 500*time.Millisecond)
		// Without a role in team, bob may not even see the repository.
		if r := bob.Run(t, "crane", "push", "--insecure", src, repo+":v2"); r.Err == nil || !strings.Contains(r.Stderr, "401 Unauthorized") {
			t.Fatalf("bob pushed after leaving devs:\n%s", r)
		}
		if r := bob.Run(t, "crane", "digest", "--insecure", repo+":v1"); r.Err == nil || !strings.Contains(r.Stderr, "bob may not pull from team/app") {
			t.Fatalf("bob pulled after leaving devs:\n%s", r)
		}
		dir.Modify(t, "dn: cn=devs,"+ldaptest.GroupsDN+"\nchangetype: modify\nadd: member\nmember: "+ldaptest.UserDN("bob")+"\n")
		time.Sleep(ldapCacheTTL + 500*time.Millisecond)
		bob.Must(t, "crane", "push", "--insecure", src, repo+":v3")
	})

	t.Run("audit", func(t *testing.T) {
		auditHas(t, admin, customs, "bob", `"action":"user.login"`, `"source":"ldap"`, `"outcome":"success"`, `"outcome":"failure"`)
	})

	t.Run("directory down", func(t *testing.T) {
		dir.Stop()
		time.Sleep(ldapCacheTTL + 500*time.Millisecond)
		start := time.Now()
		r := bob.Run(t, "crane", "ls", "--insecure", repo)
		if r.Err == nil || !strings.Contains(r.Stderr, "LDAP directory") {
			t.Fatalf("crane with the directory down:\n%s", r)
		}
		t.Logf("crane said: %s", strings.TrimSpace(r.Stderr))
		if d := time.Since(start); d > 45*time.Second {
			t.Fatalf("crane took %s to fail with the directory down", d)
		}
		req, _ := http.NewRequest("GET", srv.URL()+"/v2/", nil)
		req.SetBasicAuth("bob", "bob-pw")
		start = time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "LDAP directory") || time.Since(start) > 5*time.Second {
			t.Fatalf("GET /v2/ with the directory down: %d %s after %s", resp.StatusCode, body, time.Since(start))
		}
		// Local accounts are not affected.
		admin.Must(t, customs, "project", "list")
	})
}

// TestOIDCLogin runs customs against a real OpenID provider: a browser
// (an http.Client with a cookie jar) logs in through the authorization
// code flow, the user is created with the provider's groups, creates a CLI
// secret, and pulls with crane and skopeo from a project where their group
// is a member; a wrong or revoked secret is refused.
func TestOIDCLogin(t *testing.T) {
	t.Parallel()
	if os.Getenv(harness.EnvTarget) == harness.KindDistribution {
		t.Skip("OIDC login is customs'")
	}
	harness.Tool(t, "crane")
	harness.Tool(t, "skopeo")
	op := oidctest.Start(t,
		oidctest.User{Username: "alice", Password: "alice-pw", Groups: []string{"devs", "staff"}},
		oidctest.User{Username: "mallory", Password: "mallory-pw", Groups: []string{"staff"}})
	addr, env := oidcLogin(t, op)
	srv := harness.StartCustoms(t, harness.Options{Args: []string{"--addr", addr}, Env: env})
	customs := harness.CustomsBinary(t)
	srv.CreateProject(t, "team", false)
	admin := harness.NewClient(t)
	admin.MustInput(t, srv.Password+"\n", customs, "login", srv.URL(), "-u", srv.Username, "--password-stdin")
	admin.Must(t, customs, "project", "member", "add", "team", "devs", "--role", "guest", "--group")
	src := writeImageLayout(t, randomImage(t, 8, 4096), "v1")
	srcDigest, _ := layoutManifest(t, src)
	ref := srv.Addr + "/team/app:v1"
	admin.MustInput(t, srv.Password, "crane", "auth", "login", srv.Addr, "-u", srv.Username, "--password-stdin")
	admin.Must(t, "crane", "push", "--insecure", src, ref)

	// alice logs in with her browser.
	alice := newBrowser(t)
	me := browserLogin(t, alice, srv, "alice", "alice-pw")
	if me.Name != "alice" || me.User == nil || me.User.Source != "oidc" || !slices.Equal(me.User.Groups, []string{"devs", "staff"}) {
		t.Fatalf("after logging in alice is %+v", me)
	}
	secret := createCLISecret(t, alice, srv)
	if strings.Contains(srv.Logs(), secret) {
		t.Fatal("the CLI secret is in the server's log")
	}

	// customs login takes it as alice's password.
	cli := harness.NewClient(t)
	cli.MustInput(t, secret+"\n", customs, "login", srv.URL(), "-u", "alice", "--password-stdin")
	if out := cli.Must(t, customs, "project", "list"); !strings.Contains(out, "team") {
		t.Fatalf("alice's projects:\n%s", out)
	}

	// Registry clients take the CLI secret as alice's password.
	c := harness.NewClient(t)
	c.MustInput(t, secret, "crane", "auth", "login", srv.Addr, "-u", "alice", "--password-stdin")
	if got := strings.TrimSpace(c.Must(t, "crane", "digest", "--insecure", ref)); got != srcDigest {
		t.Fatalf("alice pulled %s, want %s", got, srcDigest)
	}
	c.Must(t, "crane", "pull", "--insecure", "--format=oci", ref, t.TempDir()+"/pulled")
	c.MustInput(t, secret+"\n", "skopeo", "login", "--tls-verify=false", "-u", "alice", "--password-stdin", srv.Addr)
	c.Must(t, "skopeo", "inspect", "--tls-verify=false", "docker://"+ref)
	// A guest (through devs) may pull, not push.
	if r := c.Run(t, "crane", "push", "--insecure", src, srv.Addr+"/team/app:alice"); r.Err == nil || !strings.Contains(strings.ToLower(r.Stderr), "denied") {
		t.Fatalf("alice (guest through devs) pushed:\n%s", r)
	}

	// (Each refused login counts towards alice's lockout, five failures in
	// a row; a successful one clears the count.)
	t.Run("wrong secret", func(t *testing.T) {
		w := harness.NewClient(t)
		if r := w.RunInput(t, "not-the-secret\n", "skopeo", "login", "--tls-verify=false", "-u", "alice", "--password-stdin", srv.Addr); r.Err == nil ||
			!strings.Contains(r.Stderr, "invalid username/password") {
			t.Fatalf("skopeo login with a wrong secret:\n%s", r)
		}
		w.MustInput(t, "not-the-secret", "crane", "auth", "login", srv.Addr, "-u", "alice", "--password-stdin")
		if r := w.Run(t, "crane", "digest", "--insecure", ref); r.Err == nil || !strings.Contains(strings.ToLower(r.Stderr), "unauthorized") {
			t.Fatalf("crane with a wrong secret:\n%s", r)
		}
		c.Must(t, "crane", "digest", "--insecure", ref)
	})

	t.Run("no group, no pull", func(t *testing.T) {
		m := newBrowser(t)
		browserLogin(t, m, srv, "mallory", "mallory-pw")
		ms := createCLISecret(t, m, srv)
		mc := harness.NewClient(t)
		mc.MustInput(t, ms, "crane", "auth", "login", srv.Addr, "-u", "mallory", "--password-stdin")
		if r := mc.Run(t, "crane", "digest", "--insecure", ref); r.Err == nil || !strings.Contains(r.Stderr, "mallory may not pull") {
			t.Fatalf("mallory (not in devs) pulled from team:\n%s", r)
		}
		// Only administrators revoke other users' secrets.
		if code := browserDo(t, alice, "DELETE", srv.URL()+"/api/v1/users/mallory/cli-secret", nil); code != http.StatusForbidden {
			t.Fatalf("alice revoking mallory's secret: %d", code)
		}
		req, _ := http.NewRequest("DELETE", srv.URL()+"/api/v1/users/mallory/cli-secret", nil)
		req.SetBasicAuth(srv.Username, srv.Password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var state struct {
			Set bool `json:"set"`
		}
		if resp.StatusCode != http.StatusNoContent || browserDo(t, m, "GET", srv.URL()+"/api/v1/users/me/cli-secret", &state) != 200 || state.Set {
			t.Fatalf("the administrator revoking mallory's secret: %d, then set=%v", resp.StatusCode, state.Set)
		}
		if r := mc.Run(t, "crane", "digest", "--insecure", ref); r.Err == nil || !strings.Contains(r.Stderr, "UNAUTHORIZED") {
			t.Fatalf("mallory's revoked secret:\n%s", r)
		}
	})

	t.Run("regenerated and revoked", func(t *testing.T) {
		second := createCLISecret(t, alice, srv)
		if r := c.Run(t, "crane", "digest", "--insecure", ref); r.Err == nil {
			t.Fatalf("the replaced secret still works:\n%s", r)
		}
		// The refresh token customs login kept died with the old secret.
		if r := cli.Run(t, customs, "project", "list"); r.Err == nil || !strings.Contains(r.Stderr, "log in again") {
			t.Fatalf("customs with a refresh token of the replaced secret:\n%s", r)
		}
		c.MustInput(t, second, "crane", "auth", "login", srv.Addr, "-u", "alice", "--password-stdin")
		c.Must(t, "crane", "digest", "--insecure", ref)
		if code := browserDo(t, alice, "DELETE", srv.URL()+"/api/v1/users/me/cli-secret", nil); code != http.StatusNoContent {
			t.Fatalf("revoking: %d", code)
		}
		if r := c.Run(t, "crane", "digest", "--insecure", ref); r.Err == nil {
			t.Fatalf("the revoked secret still works:\n%s", r)
		}
	})

	t.Run("audit", func(t *testing.T) {
		out := auditHas(t, admin, customs, "alice", `"source":"oidc"`, `"action":"user.cli_secret.create"`,
			`"action":"user.cli_secret.revoke"`, `"action":"artifact.pull"`)
		if strings.Contains(out, secret) {
			t.Error("a CLI secret is in the audit trail")
		}
	})
	if strings.Contains(srv.Logs(), secret) {
		t.Error("a CLI secret is in the server's log")
	}
}

// oidcLogin prepares a customs serve that logs users in at op: it returns
// the address customs must listen on (a free loopback port: customs must
// know its callback URL before it starts, and op must allow it) and the
// environment configuring OIDC, groups scope included.
func oidcLogin(t *testing.T, op *oidctest.Provider) (addr string, env []string) {
	t.Helper()
	addr = freeLoopbackAddr(t)
	callback := "http://" + addr + "/api/v1/auth/oidc/callback"
	op.AllowRedirect(callback)
	return addr, []string{
		"CUSTOMS_AUTH_OIDC_ISSUER=" + op.Issuer,
		"CUSTOMS_AUTH_OIDC_CLIENT_ID=" + op.ClientID,
		"CUSTOMS_AUTH_OIDC_CLIENT_SECRET=" + op.ClientSecret,
		"CUSTOMS_AUTH_OIDC_REDIRECT_URL=" + callback,
		"CUSTOMS_AUTH_OIDC_SCOPES=openid,profile," + oidctest.GroupsScope,
	}
}

// freeLoopbackAddr returns a 127.0.0.1 address whose port was free.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: time.Minute}
}

// meAnswer is GET /api/v1/users/me.
type meAnswer struct {
	Name string `json:"name"`
	User *struct {
		Source string   `json:"source"`
		Groups []string `json:"groups"`
	} `json:"user"`
}

// browserLogin logs in through customs' OIDC login and returns who the API
// says the browser is then.
func browserLogin(t *testing.T, b *http.Client, srv *harness.Server, user, password string) meAnswer {
	t.Helper()
	resp, err := oidctest.Browser(context.Background(), b, srv.URL()+"/api/v1/auth/oidc/login", user, password)
	if err != nil {
		t.Fatalf("OIDC login as %s: %v", user, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var me meAnswer
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/api/v1/users/me" || json.Unmarshal(body, &me) != nil {
		t.Fatalf("OIDC login as %s ended at %s with %d: %s", user, resp.Request.URL, resp.StatusCode, body)
	}
	return me
}

// createCLISecret creates (or replaces) the browser's user's CLI secret.
func createCLISecret(t *testing.T, b *http.Client, srv *harness.Server) string {
	t.Helper()
	var out struct {
		Secret string `json:"secret"`
	}
	if code := browserDo(t, b, "POST", srv.URL()+"/api/v1/users/me/cli-secret", &out); code != http.StatusCreated || out.Secret == "" {
		t.Fatalf("creating a CLI secret: %d %+v", code, out)
	}
	return out.Secret
}

// browserDo sends a request with the browser's session (and the CSRF
// header a page of customs' UI sends) and decodes a JSON answer into out.
func browserDo(t *testing.T, b *http.Client, method, u string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Customs-CSRF", "1")
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, u, err, body)
		}
	}
	return resp.StatusCode
}

// apiGet GETs an API path as the administrator and decodes the answer.
func apiGet(t *testing.T, srv *harness.Server, path string, out any) {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(srv.Username, srv.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

// auditHas waits (the audit trail is written in batches) until the audit
// events of actor, as `customs audit query --output json` prints them
// without spaces, contain every one of wants, and returns them.
func auditHas(t *testing.T, admin *harness.Client, customs, actor string, wants ...string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out := strings.Join(strings.Fields(admin.Must(t, customs, "audit", "query", "--actor", actor, "-n", "1000", "--output", "json")), "")
		missing := ""
		for _, w := range wants {
			if !strings.Contains(out, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("the audit events of %s lack %s:\n%s", actor, missing, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
