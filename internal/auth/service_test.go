package auth

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

func newRequest(method, target, authorization string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	return r
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestNewServiceValidates(t *testing.T) {
	f := newFixture(t)
	ok := Options{Users: f.st, Projects: f.st, Keys: f.keys}
	tests := []struct {
		name string
		mod  func(*Options)
	}{
		{"no users", func(o *Options) { o.Users = nil }},
		{"no keys", func(o *Options) { o.Keys = nil }},
		{"no projects nor authorizer", func(o *Options) { o.Projects = nil }},
		{"token ttl under a minute", func(o *Options) { o.TokenTTL = 30 * time.Second }},
		{"refresh shorter than access", func(o *Options) { o.TokenTTL = time.Hour; o.RefreshTTL = time.Minute }},
		{"external url without scheme", func(o *Options) { o.ExternalURL = "registry.example.com" }},
		{"external url ftp", func(o *Options) { o.ExternalURL = "ftp://registry.example.com" }},
		{"bad password params", func(o *Options) { o.PasswordParams = PasswordParams{Memory: 1} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.mod(&o)
			if _, err := NewService(o); apperr.Code(err) != apperr.EINVALID {
				t.Fatalf("NewService = %v, want EINVALID", err)
			}
		})
	}
	if _, err := NewService(ok); err != nil {
		t.Fatalf("valid options rejected: %v", err)
	}
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t)
	tok, _, err := f.svc.tokens.sign(Claims{RegisteredClaims: registered("alice"), Kind: KindUser, Use: useAccess,
		Access: []Access{{Type: "repository", Name: "priv/app", Actions: []string{"pull"}}}}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	anonTok, _, _ := f.svc.tokens.sign(Claims{Kind: KindAnonymous, Use: useAccess}, time.Minute)
	tests := []struct {
		name    string
		header  string
		want    Principal
		wantErr string
	}{
		{"no credentials", "", Anonymous, ""},
		{"basic admin", basic("admin", adminPW), Principal{Kind: KindUser, Name: "admin", Admin: true}, ""},
		{"basic user", basic("alice", alicePW), Principal{Kind: KindUser, Name: "alice"}, ""},
		{"lowercase scheme", "basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+alicePW)), Principal{Kind: KindUser, Name: "alice"}, ""},
		{"bearer", "Bearer " + tok, Principal{Kind: KindUser, Name: "alice", Token: true,
			Granted: []Access{{Type: "repository", Name: "priv/app", Actions: []string{"pull"}}}}, ""},
		{"anonymous bearer", "Bearer " + anonTok, Principal{Kind: KindAnonymous, Token: true, Granted: []Access{}}, ""},
		{"wrong password", basic("alice", "nope"), Principal{}, apperr.EUNAUTHORIZED},
		{"unknown user", basic("mallory", alicePW), Principal{}, apperr.EUNAUTHORIZED},
		{"disabled user", basic("bob", bobPW), Principal{}, apperr.EUNAUTHORIZED},
		{"empty password", basic("alice", ""), Principal{}, apperr.EUNAUTHORIZED},
		{"empty user", basic("", alicePW), Principal{}, apperr.EUNAUTHORIZED},
		{"no colon", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice")), Principal{}, apperr.EUNAUTHORIZED},
		{"bad base64", "Basic !!!", Principal{}, apperr.EUNAUTHORIZED},
		{"empty bearer", "Bearer ", Principal{}, apperr.EUNAUTHORIZED},
		{"garbage bearer", "Bearer abc.def.ghi", Principal{}, apperr.EUNAUTHORIZED},
		{"other scheme", "Digest username=alice", Principal{}, apperr.EUNAUTHORIZED},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := f.svc.Authenticate(newRequest("GET", "/v2/", tc.header))
			if tc.wantErr != "" {
				if apperr.Code(err) != tc.wantErr {
					t.Fatalf("Authenticate = %+v, %v; want %s", p, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p, tc.want) {
				t.Fatalf("principal %+v, want %+v", p, tc.want)
			}
		})
	}
}

func TestAuthenticateSameMessageForEveryLoginFailure(t *testing.T) {
	f := newFixture(t)
	for _, h := range []string{basic("alice", "nope"), basic("mallory", "x"), basic("bob", bobPW)} {
		_, err := f.svc.Authenticate(newRequest("GET", "/v2/", h))
		if apperr.Message(err) != msgBadLogin {
			t.Fatalf("message %q, want %q", apperr.Message(err), msgBadLogin)
		}
	}
}

func TestAuthenticateStoreDown(t *testing.T) {
	f := newFixture(t)
	f.st.fail = errors.New("connection refused")
	_, err := f.svc.Authenticate(newRequest("GET", "/v2/", basic("alice", alicePW)))
	if apperr.Code(err) != apperr.EUNAVAILABLE {
		t.Fatalf("error %v, want EUNAVAILABLE", err)
	}
}

func TestAuthorize(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	user := Principal{Kind: KindUser, Name: "alice"}
	admin := Principal{Kind: KindUser, Name: "admin", Admin: true}
	tokenUser := Principal{Kind: KindUser, Name: "alice", Token: true,
		Granted: []Access{{Type: "repository", Name: "priv/app", Actions: []string{"pull", "push"}}}}
	tokenAdminNoScope := Principal{Kind: KindUser, Name: "admin", Admin: true, Token: true}
	tokenAnon := Principal{Kind: KindAnonymous, Token: true,
		Granted: []Access{{Type: "repository", Name: "pub/app", Actions: []string{"pull"}}}}
	repo := func(name string, acts ...string) Access { return Access{Type: "repository", Name: name, Actions: acts} }
	catalog := Access{Type: "registry", Name: "catalog", Actions: []string{"*"}}

	tests := []struct {
		name       string
		p          Principal
		a          Access
		wantCode   string
		wantDetail string
		wantMsg    string
	}{
		{"anonymous pulls public", Anonymous, repo("pub/app", "pull"), "", "", ""},
		{"anonymous pulls public nested", Anonymous, repo("pub/a/b/c", "pull"), "", "", ""},
		{"anonymous pushes public", Anonymous, repo("pub/app", "push"), apperr.EUNAUTHORIZED, "", msgAuthRequired},
		{"anonymous pulls private", Anonymous, repo("priv/app", "pull"), apperr.EUNAUTHORIZED, "", msgAuthRequired},
		{"anonymous pulls missing project", Anonymous, repo("nope/app", "pull"), apperr.EUNAUTHORIZED, "", msgAuthRequired},
		{"anonymous catalog", Anonymous, catalog, apperr.EUNAUTHORIZED, "", msgAuthRequired},
		{"user pulls public", user, repo("pub/app", "pull"), "", "", ""},
		{"user pulls private", user, repo("priv/app", "pull"), apperr.EDENIED, "", msgDenied},
		{"user pushes public", user, repo("pub/app", "pull", "push"), apperr.EDENIED, "", msgDenied},
		{"user catalog", user, catalog, apperr.EDENIED, "", msgDenied},
		{"admin pushes anywhere", admin, repo("priv/app", "pull", "push"), "", "", ""},
		{"admin deletes in missing project", admin, repo("nope/app", "delete"), "", "", ""},
		{"admin star", admin, repo("priv/app", "*"), "", "", ""},
		{"admin catalog", admin, catalog, "", "", ""},
		{"token grants pull", tokenUser, repo("priv/app", "pull"), "", "", ""},
		{"token grants pull and push", tokenUser, repo("priv/app", "push", "pull"), "", "", ""},
		{"token lacks delete", tokenUser, repo("priv/app", "delete"), apperr.EUNAUTHORIZED, "DENIED", msgDenied},
		{"token lacks other repo even public", tokenUser, repo("pub/app", "pull"), apperr.EUNAUTHORIZED, "DENIED", msgDenied},
		{"admin token limited to its scope", tokenAdminNoScope, repo("priv/app", "pull"), apperr.EUNAUTHORIZED, "DENIED", msgDenied},
		{"anonymous token grants pull", tokenAnon, repo("pub/app", "pull"), "", "", ""},
		{"anonymous token lacks push", tokenAnon, repo("pub/app", "push"), apperr.EUNAUTHORIZED, "", msgAuthRequired},
		{"no actions", admin, repo("priv/app"), apperr.EINTERNAL, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := f.svc.Authorize(ctx, tc.p, tc.a)
			if apperr.Code(err) != tc.wantCode {
				t.Fatalf("Authorize = %v, want code %q", err, tc.wantCode)
			}
			if err == nil {
				return
			}
			if apperr.Detail(err) != tc.wantDetail {
				t.Fatalf("detail %q, want %q", apperr.Detail(err), tc.wantDetail)
			}
			if tc.wantMsg != "" && !strings.HasPrefix(apperr.Message(err), tc.wantMsg) {
				t.Fatalf("message %q, want %q", apperr.Message(err), tc.wantMsg)
			}
		})
	}
}

func TestAuthorizeStoreDown(t *testing.T) {
	f := newFixture(t)
	f.st.fail = errors.New("connection refused")
	err := f.svc.Authorize(context.Background(), Anonymous, Access{Type: "repository", Name: "pub/app", Actions: []string{"pull"}})
	if apperr.Code(err) != apperr.EUNAVAILABLE {
		t.Fatalf("error %v, want EUNAVAILABLE", err)
	}
}

func TestEntitled(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		p      Principal
		repo   string
		action string
		want   bool
	}{
		{"anonymous public pull", Anonymous, "pub/app", "pull", true},
		{"anonymous private pull", Anonymous, "priv/app", "pull", false},
		{"user token beyond its scope", Principal{Kind: KindUser, Name: "alice", Token: true}, "pub/app", "pull", true},
		{"admin token without scope", Principal{Kind: KindUser, Name: "admin", Token: true}, "priv/app", "push", true},
		{"admin flag in a token is not trusted", Principal{Kind: KindUser, Name: "alice", Admin: true, Token: true}, "priv/app", "push", false},
		{"disabled user's token", Principal{Kind: KindUser, Name: "bob", Token: true}, "pub/app", "pull", false},
		{"deleted user's token", Principal{Kind: KindUser, Name: "gone", Token: true}, "pub/app", "pull", false},
		{"basic admin", Principal{Kind: KindUser, Name: "admin", Admin: true}, "priv/app", "delete", true},
		{"basic user private", Principal{Kind: KindUser, Name: "alice"}, "priv/app", "pull", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := f.svc.Entitled(ctx, tc.p, tc.repo, tc.action); got != tc.want {
				t.Fatalf("Entitled = %v, want %v", got, tc.want)
			}
		})
	}
	// An admin demoted since the token was issued is no longer entitled:
	// at once when the change went through this replica (the API calls
	// ForgetPermissions), otherwise once PermissionCacheTTL has passed.
	admin := Principal{Kind: KindUser, Name: "admin", Token: true}
	demote := func(name string) {
		u, _ := f.st.User(ctx, name)
		u.Admin = false
		_ = f.st.UpdateUser(ctx, u)
	}
	demote("admin")
	if !f.svc.Entitled(ctx, admin, "priv/app", "push") {
		t.Fatal("identity not remembered within PermissionCacheTTL")
	}
	f.clock.Advance(5 * time.Second)
	if f.svc.Entitled(ctx, admin, "priv/app", "push") {
		t.Fatal("demoted admin still entitled after PermissionCacheTTL")
	}
	u, _ := f.st.User(ctx, "admin")
	u.Admin = true
	_ = f.st.UpdateUser(ctx, u)
	f.svc.ForgetPermissions()
	if !f.svc.Entitled(ctx, admin, "priv/app", "push") {
		t.Fatal("admin not entitled")
	}
	demote("admin")
	f.svc.ForgetPermissions()
	if f.svc.Entitled(ctx, admin, "priv/app", "push") {
		t.Fatal("demoted admin still entitled after ForgetPermissions")
	}
}

func TestChallenge(t *testing.T) {
	scopes := []Access{{Type: "repository", Name: "p/r", Actions: []string{"pull", "push"}}}
	two := append(scopes, Access{Type: "repository", Name: "q/s", Actions: []string{"pull"}})
	tests := []struct {
		name   string
		mod    func(*Options)
		req    func() *http.Request
		scopes []Access
		want   string
	}{
		{"from host", nil, func() *http.Request { return httptest.NewRequest("GET", "http://reg.local:5000/v2/", nil) }, scopes,
			`Bearer realm="http://reg.local:5000/service/token",service="customs",scope="repository:p/r:pull,push"`},
		{"no scope", nil, func() *http.Request { return httptest.NewRequest("GET", "http://reg.local:5000/v2/", nil) }, nil,
			`Bearer realm="http://reg.local:5000/service/token",service="customs"`},
		{"two scopes", nil, func() *http.Request { return httptest.NewRequest("GET", "http://reg.local/v2/", nil) }, two,
			`Bearer realm="http://reg.local/service/token",service="customs",scope="repository:p/r:pull,push repository:q/s:pull"`},
		{"tls", nil, func() *http.Request {
			r := httptest.NewRequest("GET", "https://reg.local/v2/", nil)
			r.TLS = &tls.ConnectionState{}
			return r
		}, nil, `Bearer realm="https://reg.local/service/token",service="customs"`},
		{"forwarded headers ignored by default", nil, func() *http.Request {
			r := httptest.NewRequest("GET", "http://reg.local/v2/", nil)
			r.Header.Set("X-Forwarded-Proto", "https")
			r.Header.Set("X-Forwarded-Host", "evil.example")
			return r
		}, nil, `Bearer realm="http://reg.local/service/token",service="customs"`},
		{"forwarded headers trusted", func(o *Options) { o.TrustProxyHeaders = true }, func() *http.Request {
			r := httptest.NewRequest("GET", "http://10.0.0.5/v2/", nil)
			r.Header.Set("X-Forwarded-Proto", "https, http")
			r.Header.Set("X-Forwarded-Host", "registry.example.com")
			return r
		}, nil, `Bearer realm="https://registry.example.com/service/token",service="customs"`},
		{"external url wins", func(o *Options) { o.ExternalURL = "https://registry.example.com/"; o.Service = "reg" }, func() *http.Request {
			return httptest.NewRequest("GET", "http://10.0.0.5/v2/", nil)
		}, scopes, `Bearer realm="https://registry.example.com/service/token",service="reg",scope="repository:p/r:pull,push"`},
		{"hostile host", nil, func() *http.Request {
			r := httptest.NewRequest("GET", "http://reg.local/v2/", nil)
			r.Host = `evil",service="x`
			return r
		}, nil, `Bearer realm="http://localhost/service/token",service="customs"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mods []func(*Options)
			if tc.mod != nil {
				mods = append(mods, tc.mod)
			}
			f := newFixture(t, mods...)
			if got := f.svc.Challenge(tc.req(), tc.scopes...); got != tc.want {
				t.Fatalf("Challenge =\n %s\nwant\n %s", got, tc.want)
			}
		})
	}
}

func TestCredentialCache(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	auth := func(pw string) error {
		_, err := f.svc.Authenticate(newRequest("GET", "/v2/", basic("alice", pw)))
		return err
	}
	if err := auth(alicePW); err != nil {
		t.Fatal(err)
	}
	if f.svc.creds.len() != 1 {
		t.Fatalf("cache holds %d entries after a login, want 1", f.svc.creds.len())
	}
	// A wrong password after a cached success is still refused, repeatedly.
	for i := 0; i < 3; i++ {
		for _, pw := range []string{"nope", alicePW + "x", alicePW[:len(alicePW)-1], ""} {
			if err := auth(pw); apperr.Code(err) != apperr.EUNAUTHORIZED {
				t.Fatalf("wrong password %q accepted with a cached right one: %v", pw, err)
			}
		}
	}
	// Another user with alice's password does not hit alice's entry.
	if _, err := f.svc.Authenticate(newRequest("GET", "/v2/", basic("admin", alicePW))); err == nil {
		t.Fatal("admin accepted with alice's password")
	}

	// The entry is keyed by the stored hash: after a password change the
	// old password misses the cache and fails.
	newHash, _ := HashPassword("new-password", fastParams)
	u, _ := f.st.User(ctx, "alice")
	u.PasswordHash = newHash
	_ = f.st.UpdateUser(ctx, u)
	if err := auth(alicePW); apperr.Code(err) != apperr.EUNAUTHORIZED {
		t.Fatalf("old password accepted from the cache after the hash changed: %v", err)
	}
	if err := auth("new-password"); err != nil {
		t.Fatalf("new password refused: %v", err)
	}

	// Disabling the user is seen at once, cache or not.
	u, _ = f.st.User(ctx, "alice")
	u.Disabled = true
	_ = f.st.UpdateUser(ctx, u)
	if err := auth("new-password"); apperr.Code(err) != apperr.EUNAUTHORIZED {
		t.Fatalf("disabled user accepted from the cache: %v", err)
	}
}

func TestCredentialCacheSkipsArgon2(t *testing.T) {
	// With a stored hash whose parameters make argon2id take long, a cache
	// hit must answer without hashing: the second login's duration is far
	// below the first's.
	slow := PasswordParams{Memory: 64 * 1024, Time: 3, Threads: 1, SaltLen: 16, KeyLen: 32}
	f := newFixture(t, func(o *Options) { o.PasswordParams = slow })
	ctx := context.Background()
	h, _ := HashPassword("pw", slow)
	u, _ := f.st.User(ctx, "alice")
	u.PasswordHash = h
	_ = f.st.UpdateUser(ctx, u)
	r := newRequest("GET", "/v2/", basic("alice", "pw"))
	t0 := time.Now()
	if _, err := f.svc.Authenticate(r); err != nil {
		t.Fatal(err)
	}
	first := time.Since(t0)
	t0 = time.Now()
	if _, err := f.svc.Authenticate(r); err != nil {
		t.Fatal(err)
	}
	if second := time.Since(t0); second*5 > first {
		t.Fatalf("cached login took %v, uncached %v: the cache did not skip argon2id", second, first)
	}
}

func TestCredentialCacheExpires(t *testing.T) {
	f := newFixture(t)
	if _, err := f.svc.Authenticate(newRequest("GET", "/v2/", basic("alice", alicePW))); err != nil {
		t.Fatal(err)
	}
	key := f.svc.credKey("alice", alicePW, mustUser(t, f, "alice").PasswordHash)
	if _, ok := f.svc.creds.get(key, f.clock.Now()); !ok {
		t.Fatal("verified credentials not cached")
	}
	f.clock.Advance(time.Minute)
	if _, ok := f.svc.creds.get(key, f.clock.Now()); ok {
		t.Fatal("cache entry outlived CredentialCacheTTL")
	}
}

func TestPasswordHashUpgradedAtLogin(t *testing.T) {
	stronger := PasswordParams{Memory: 128, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
	f := newFixture(t, func(o *Options) { o.PasswordParams = stronger })
	before := mustUser(t, f, "alice").PasswordHash
	if _, err := f.svc.Authenticate(newRequest("GET", "/v2/", basic("alice", alicePW))); err != nil {
		t.Fatal(err)
	}
	after := mustUser(t, f, "alice").PasswordHash
	if after == before {
		t.Fatal("hash with old parameters not upgraded")
	}
	if ok, re, err := VerifyPassword(after, alicePW, stronger); !ok || re || err != nil {
		t.Fatalf("upgraded hash: ok=%v rehash=%v err=%v", ok, re, err)
	}
	if _, err := f.svc.Authenticate(newRequest("GET", "/v2/", basic("alice", alicePW))); err != nil {
		t.Fatalf("login after upgrade: %v", err)
	}
}

type recordingLimiter struct {
	block    bool
	outcomes []bool
}

func (l *recordingLimiter) Allow(context.Context, string, string) error {
	if l.block {
		return apperr.Errorf(apperr.EUNAUTHORIZED, "too many failed logins")
	}
	return nil
}

func (l *recordingLimiter) Done(_ context.Context, _, _ string, ok bool) {
	l.outcomes = append(l.outcomes, ok)
}

func TestLoginLimiter(t *testing.T) {
	l := &recordingLimiter{}
	f := newFixture(t, func(o *Options) { o.Limiter = l })
	_, _ = f.svc.Authenticate(newRequest("GET", "/v2/", basic("alice", "nope")))
	_, _ = f.svc.Authenticate(newRequest("GET", "/v2/", basic("alice", alicePW)))
	if !reflect.DeepEqual(l.outcomes, []bool{false, true}) {
		t.Fatalf("outcomes %v, want [false true]", l.outcomes)
	}
	l.block = true
	_, err := f.svc.Authenticate(newRequest("GET", "/v2/", basic("alice", alicePW)))
	if apperr.Message(err) != "too many failed logins" {
		t.Fatalf("blocked login: %v", err)
	}
}

func mustUser(t *testing.T, f *fixture, name string) *store.User {
	t.Helper()
	u, err := f.st.User(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{basic("alice", "pw"), "Bearer abc", "basic", "Basic =", "Basic YTo=", "  BASIC   YWxpY2U6cHc=  "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		scheme, rest := parseAuthorization(h)
		if scheme != "basic" {
			return
		}
		user, pass, err := parseBasic(rest)
		if err != nil {
			if apperr.Code(err) != apperr.EUNAUTHORIZED {
				t.Fatalf("error code %s", apperr.Code(err))
			}
			return
		}
		if user == "" {
			t.Fatal("empty user accepted")
		}
		// Decoding is canonical: one credential, one header value (line
		// breaks, which base64 skips, cannot occur in a header).
		if got := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass)); got != rest && !strings.ContainsAny(rest, "\r\n") {
			t.Fatalf("decoded %q:%q does not re-encode to %q", user, pass, rest)
		}
	})
}
