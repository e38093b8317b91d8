package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/rbac"
)

// token fetches an access token for scopes as a, straight from the token
// endpoint, and returns it with what it grants (decoded from its payload).
func (e *rbacEnv) token(t *testing.T, a actor, scopes ...string) (string, []auth.Access) {
	t.Helper()
	q := url.Values{"service": {"customs"}, "scope": scopes}
	req, _ := http.NewRequest("GET", e.url()+"/service/token?"+q.Encode(), nil)
	if a.name != "" {
		req.SetBasicAuth(a.name, a.secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 || body.Token == "" {
		t.Fatalf("token for %v as %s: %d, %v", scopes, a, resp.StatusCode, err)
	}
	return body.Token, grants(t, body.Token)
}

// grants decodes (without verifying) what a token grants.
func grants(t *testing.T, token string) []auth.Access {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Access []auth.Access }
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c.Access
}

// raw sends method path (sent as is, not cleaned) with an Authorization
// header, following no redirect, and returns the status and body.
func (e *rbacEnv) raw(t *testing.T, method, path, authorization string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.url()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = path // the request line carries path byte for byte
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func basicAuth(a actor) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(a.name+":"+a.secret))
}

func actorOf(t *testing.T, e *rbacEnv, role rbac.Role) actor {
	t.Helper()
	a := actor{name: role.String(), secret: "pw-attack-" + role.String()}
	e.secrets.Store(a.secret, "password of "+a.name)
	if err := e.admin.ChangePassword(context.Background(), a.name, "", a.secret); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestAttackTokenForAnotherProject: a token granted for project proj does
// not open project other, nor a repository or action it does not name.
func TestAttackTokenForAnotherProject(t *testing.T) {
	e := newRBACEnv(t, nil)
	dev := actorOf(t, e, rbac.RoleDeveloper)
	tok, granted := e.token(t, dev, "repository:proj/app:pull,push")
	if len(granted) != 1 || !slices.Equal(granted[0].Actions, []string{"pull", "push"}) {
		t.Fatalf("developer granted %v", granted)
	}
	if code, _ := e.raw(t, "GET", "/v2/proj/app/manifests/v1", "Bearer "+tok); code != 200 {
		t.Fatalf("the token does not work where granted: %d", code)
	}
	for _, path := range []string{
		"/v2/other/app/manifests/v1",
		"/v2/other/app/tags/list",
		"/v2/pub/app/manifests/v1", // even public: the token grants what it names
		"/v2/proj/app2/manifests/v1",
	} {
		code, body := e.raw(t, "GET", path, "Bearer "+tok)
		if code != 401 || !strings.Contains(body, "requested access to the resource is denied") {
			t.Errorf("GET %s with a token for proj/app: %d %s", path, code, body)
		}
	}
	// The catalog lists what the identity may pull (the registry filters it
	// by entitlement, whatever the token names): never the other project.
	if code, body := e.raw(t, "GET", "/v2/_catalog", "Bearer "+tok); code == 200 && strings.Contains(body, "other/") {
		t.Errorf("the catalog shows the other project: %s", body)
	}
	if code, _ := e.raw(t, "DELETE", "/v2/proj/app/manifests/v1", "Bearer "+tok); code != 401 {
		t.Errorf("DELETE with a pull,push token: %d", code)
	}
	// Asking for another project grants nothing there.
	_, granted = e.token(t, dev, "repository:other/app:pull,push", "repository:proj/app:pull")
	if len(granted) != 1 || granted[0].Name != "proj/app" {
		t.Errorf("developer of proj asking for other got %v", granted)
	}
	// A registry token is no key to the API.
	req, _ := http.NewRequest("GET", e.url()+"/api/v1/projects/proj/members", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("API with a registry token: %d", resp.StatusCode)
	}
}

// TestAttackScopeEscalation: a token request for more than the identity
// may do is granted less, never more; malformed or tricky scopes are
// refused.
func TestAttackScopeEscalation(t *testing.T) {
	e := newRBACEnv(t, nil)
	guest := actorOf(t, e, rbac.RoleGuest)
	cases := []struct {
		name   string
		scopes []string
		want   string // FormatScopes of the grant
	}{
		{"all actions", []string{"repository:proj/app:pull,push,delete,*"}, "repository:proj/app:pull"},
		{"star", []string{"repository:proj/app:*"}, "repository:proj/app:pull"},
		{"catalog", []string{"registry:catalog:*"}, ""},
		{"unknown action", []string{"repository:proj/app:pull,admin"}, "repository:proj/app:pull"},
		{"other project", []string{"repository:other/app:pull"}, ""},
		{"repeated scope merged", []string{"repository:proj/app:pull", "repository:proj/app:push"}, "repository:proj/app:pull"},
		{"nested repository", []string{"repository:proj/a/b/c:pull,push"}, "repository:proj/a/b/c:pull"},
		{"plugin class dropped", []string{"repository(plugin):proj/app:push,pull"}, "repository:proj/app:pull"},
		{"other api scope", []string{"api:v2:*"}, ""},
		{"the project as a repository", []string{"repository:proj:pull,push"}, ""},
		{"a public project as a repository", []string{"repository:pub:pull"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, granted := e.token(t, guest, tc.scopes...)
			if got := auth.FormatScopes(granted); got != tc.want {
				t.Fatalf("granted %q, want %q", got, tc.want)
			}
		})
	}
	for _, bad := range []string{
		"repository:proj/../other/app:pull",
		"repository:PROJ/app:pull",
		"repository:proj//app:pull",
		"repository:proj%2Fapp:pull",
		"repository:/other/app:pull",
		"repository:proj/app",
		"registry:../catalog:*",
	} {
		q := url.Values{"service": {"customs"}, "scope": {bad}}
		req, _ := http.NewRequest("GET", e.url()+"/service/token?"+q.Encode(), nil)
		req.SetBasicAuth(guest.name, guest.secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("scope %q: %d, want 400", bad, resp.StatusCode)
		}
	}
	// Claiming another account in the request is refused.
	req, _ := http.NewRequest("GET", e.url()+"/service/token?service=customs&account=admin&scope=repository:proj/app:push", nil)
	req.SetBasicAuth(guest.name, guest.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("account=admin with the guest's credentials: %d", resp.StatusCode)
	}
}

// TestAttackForgedTokens: tokens not issued by this server, expired,
// tampered with, unsigned (alg none) or signed with the public key as an
// HMAC secret (algorithm confusion) are refused by the registry and the API.
func TestAttackForgedTokens(t *testing.T) {
	e := newRBACEnv(t, nil)
	keys, err := auth.OpenKeyDir(filepath.Join(e.srv.cfg.DataDir, "keys"), auth.KeyDirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	real, err := keys.SigningKey()
	if err != nil {
		t.Fatal(err)
	}
	guest := actorOf(t, e, rbac.RoleGuest)
	good, _ := e.token(t, guest, "repository:proj/app:pull", "api:v1:*")

	now := time.Now()
	claims := func(exp time.Time) jwt.MapClaims {
		return jwt.MapClaims{
			"iss": "customs", "aud": "customs", "sub": "admin", "kind": "user", "token_use": "access",
			"iat": now.Add(-time.Hour).Unix(), "nbf": now.Add(-time.Hour).Unix(), "exp": exp.Unix(), "jti": "x",
			"access": []map[string]any{
				{"type": "repository", "name": "proj/app", "actions": []string{"pull", "push", "delete"}},
				{"type": "api", "name": "v1", "actions": []string{"*"}},
			},
		}
	}
	sign := func(method jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(method, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pubDER, _ := x509.MarshalPKIXPublicKey(&real.Key.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	parts := strings.Split(good, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	escalated := strings.Replace(string(payload), `"actions":["pull"]`, `"actions":["pull","push","delete"]`, 1)
	if escalated == string(payload) {
		t.Fatalf("cannot find the grant in %s", payload)
	}
	unsigned, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(now.Add(time.Hour))).SignedString(jwt.UnsafeAllowNoneSignatureType)

	// The real key with a valid expiry works: the forgeries below differ in
	// one thing each.
	control := sign(jwt.SigningMethodES256, real.Key, real.ID, claims(now.Add(time.Hour)))
	if code, _ := e.raw(t, "DELETE", "/v2/proj/app/manifests/sha256:"+strings.Repeat("0", 64), "Bearer "+control); code == 401 {
		t.Fatal("the control token is refused: the test forges wrongly")
	}
	forged := map[string]string{
		"expired":            sign(jwt.SigningMethodES256, real.Key, real.ID, claims(now.Add(-2*time.Minute))),
		"unknown key":        sign(jwt.SigningMethodES256, other, real.ID, claims(now.Add(time.Hour))),
		"alg none":           unsigned,
		"alg none with kid":  strings.Replace(unsigned, parts[0], base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"`+real.ID+`","typ":"JWT"}`)), 1),
		"HS256 with pubkey":  sign(jwt.SigningMethodHS256, pubPEM, real.ID, claims(now.Add(time.Hour))),
		"tampered payload":   parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(escalated)) + "." + parts[2],
		"signature stripped": parts[0] + "." + parts[1] + ".",
		"other issuer":       sign(jwt.SigningMethodES256, real.Key, real.ID, func() jwt.MapClaims { c := claims(now.Add(time.Hour)); c["iss"] = "evil"; return c }()),
		"other audience":     sign(jwt.SigningMethodES256, real.Key, real.ID, func() jwt.MapClaims { c := claims(now.Add(time.Hour)); c["aud"] = "other"; return c }()),
		"refresh as access":  sign(jwt.SigningMethodES256, real.Key, real.ID, func() jwt.MapClaims { c := claims(now.Add(time.Hour)); c["token_use"] = "refresh"; return c }()),
		"garbage":            "not-a-token",
		"empty":              "",
	}
	for name, tok := range forged {
		t.Run(name, func(t *testing.T) {
			code, body := e.raw(t, "GET", "/v2/proj/app/manifests/v1", "Bearer "+tok)
			if code != 401 {
				t.Errorf("registry: %d %s", code, body)
			}
			// The catalog lists what the identity may pull (the registry filters it
			// by entitlement, whatever the token names): never the other project.
			if code, body := e.raw(t, "GET", "/v2/_catalog", "Bearer "+tok); code == 200 && strings.Contains(body, "other/") {
				t.Errorf("the catalog shows the other project: %s", body)
			}
			if code, _ := e.raw(t, "DELETE", "/v2/proj/app/manifests/v1", "Bearer "+tok); code != 401 {
				t.Errorf("registry delete: %d", code)
			}
			if code, _ := e.raw(t, "GET", "/api/v1/users", "Bearer "+tok); code != 401 {
				t.Errorf("API: %d", code)
			}
		})
	}
}

// TestAttackRepositoryNames: names that try path traversal, case or
// encoding tricks never reach another project's content.
func TestAttackRepositoryNames(t *testing.T) {
	e := newRBACEnv(t, nil)
	dev := actorOf(t, e, rbac.RoleDeveloper)
	tok, _ := e.token(t, dev, "repository:proj/app:pull,push")
	for _, path := range []string{
		"/v2/proj/../other/app/manifests/v1",
		"/v2/proj/%2e%2e/other/app/manifests/v1",
		"/v2/proj%2F..%2Fother%2Fapp/manifests/v1",
		"/v2/proj/..%2Fother/app/manifests/v1",
		"/v2/other%2Fapp/manifests/v1",
		"/v2/%6Fther/app/manifests/v1",
		"/v2/OTHER/app/manifests/v1",
		"/v2/Other/app/manifests/v1",
		"/v2/proj//other/app/manifests/v1",
		"/v2//other/app/manifests/v1",
		"/v2/./other/app/manifests/v1",
		"/v2/proj/./../other/app/manifests/v1",
		"/v2/other/app/manifests/v1%00",
		"/v2/other\\app/manifests/v1",
	} {
		for _, authz := range []string{basicAuth(dev), "Bearer " + tok} {
			code, body, final := e.follow(t, path, authz)
			t.Logf("%s -> %d at %s", path, code, final)
			switch code {
			case 400, 401, 403, 404:
			default:
				t.Errorf("GET %s (%s, ending at %s): %d %s", path, strings.Fields(authz)[0], final, code, body)
			}
		}
	}
	// Upper-case projects cannot be created, so PROJ never aliases proj.
	if _, err := e.admin.CreateProject(context.Background(), "PROJ", false); err == nil {
		t.Error("created project PROJ")
	}
	// Pushing into the other project by a traversal is refused too.
	if _, err := e.push(dev, "proj/../other/evil:v1"); err == nil {
		t.Error("pushed through proj/../other")
	}
	if repos, _ := e.admin.Projects(context.Background()); len(repos) != 3 {
		t.Errorf("projects now %v", repos)
	}
}

// follow GETs path as raw does and, if the answer is a redirect (a path
// cleaner's), follows it on the same server with the same credentials; it
// returns the final status, body and path.
func (e *rbacEnv) follow(t *testing.T, path, authz string) (int, string, string) {
	t.Helper()
	for range 5 {
		code, body, loc := e.rawLoc(t, path, authz)
		if code/100 != 3 {
			return code, body, path
		}
		u, err := url.Parse(loc)
		if err != nil || (u.Host != "" && u.Host != e.addr) {
			t.Fatalf("redirect of %s to %q", path, loc)
		}
		path = u.EscapedPath()
	}
	t.Fatalf("redirect loop at %s", path)
	return 0, "", ""
}

// rawLoc is raw returning the Location header too.
func (e *rbacEnv) rawLoc(t *testing.T, path, authorization string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest("GET", e.url()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = path
	req.Header.Set("Authorization", authorization)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Location")
}

// TestAttackLoginBruteForce: password guessing is throttled per user and
// address (429 with Retry-After, even for the right password), on the
// token endpoint, the registry and the API alike, and every attempt is in
// the audit log.
func TestAttackLoginBruteForce(t *testing.T) {
	e := newRBACEnv(t, nil)
	dev := actorOf(t, e, rbac.RoleDeveloper)
	guest := actorOf(t, e, rbac.RoleGuest)
	tokenStatus := func(a actor) (int, string) {
		req, _ := http.NewRequest("GET", e.url()+"/service/token?service=customs&scope=repository:proj/app:pull", nil)
		req.SetBasicAuth(a.name, a.secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	for i := range 5 {
		wrong := actor{dev.name, fmt.Sprintf("guess-%d", i)}
		if code, _ := tokenStatus(wrong); code != 401 {
			t.Fatalf("guess %d: %d", i, code)
		}
	}
	code, retry := tokenStatus(dev)
	if code != 429 || retry == "" || retry == "0" {
		t.Fatalf("the right password after 5 failures: %d, Retry-After %q", code, retry)
	}
	if code, body := e.raw(t, "GET", "/v2/proj/app/manifests/v1", basicAuth(dev)); code != 429 || !strings.Contains(body, "TOOMANYREQUESTS") {
		t.Errorf("registry Basic auth while locked out: %d %s", code, body)
	}
	if _, err := (&apiclient.Client{BaseURL: e.url(), Username: dev.name, Password: dev.secret}).Me(context.Background()); err == nil ||
		!strings.Contains(err.Error(), "too many failed logins") {
		t.Errorf("API while locked out: %v", err)
	}
	// Another user from the same address is not locked out.
	if code, _ := tokenStatus(guest); code != 200 {
		t.Errorf("another user: %d", code)
	}

	// Every attempt is audited: 5 failures, then refusals.
	deadline := time.Now().Add(10 * time.Second)
	for {
		page, err := e.admin.AuditEvents(context.Background(), apiclient.AuditQuery{Actor: dev.name, Action: auth.ActionLogin, N: 100})
		if err != nil {
			t.Fatal(err)
		}
		var failed, refused int
		for _, ev := range page.Events {
			switch ev.Outcome {
			case audit.Failure:
				failed++
				if ev.ClientIP == "" || !strings.HasPrefix(ev.ClientIP, "127.0.0.1") {
					t.Errorf("failure event without the client address: %+v", ev)
				}
			case audit.Denied:
				refused++
			}
		}
		if failed == 5 && refused >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit has %d failed and %d refused logins of %s, want 5 and 3", failed, refused, dev.name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
