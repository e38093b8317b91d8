package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
)

type tokenReply struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	Errors       []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

func doToken(t *testing.T, f *fixture, r *http.Request) (*httptest.ResponseRecorder, tokenReply) {
	t.Helper()
	w := httptest.NewRecorder()
	f.svc.TokenHandler().ServeHTTP(w, r)
	var reply tokenReply
	if err := json.Unmarshal(w.Body.Bytes(), &reply); err != nil {
		t.Fatalf("status %d, body %q is not JSON: %v", w.Code, w.Body.String(), err)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q, want no-store", cc)
	}
	return w, reply
}

// grantedBy verifies an issued access token and returns what it grants.
func grantedBy(t *testing.T, f *fixture, token string) Principal {
	t.Helper()
	p, err := f.svc.Authenticate(newRequest("GET", "/v2/", "Bearer "+token))
	if err != nil {
		t.Fatalf("issued token does not authenticate: %v", err)
	}
	return p
}

func TestTokenGET(t *testing.T) {
	repo := func(name string, acts ...string) Access { return Access{Type: "repository", Name: name, Actions: acts} }
	tests := []struct {
		name        string
		query       string
		auth        string
		wantStatus  int
		wantKind    Kind
		wantName    string
		wantGranted []Access
		wantRefresh bool
		wantErr     string // substring of the error message
	}{
		{"anonymous ping", "service=customs", "", 200, KindAnonymous, "", []Access{}, false, ""},
		{"anonymous public pull", "service=customs&scope=repository:pub/app:pull", "", 200, KindAnonymous, "",
			[]Access{repo("pub/app", "pull")}, false, ""},
		{"anonymous push intersected", "service=customs&scope=repository:pub/app:pull,push", "", 200, KindAnonymous, "",
			[]Access{repo("pub/app", "pull")}, false, ""},
		{"anonymous private gets nothing", "service=customs&scope=repository:priv/app:pull", "", 200, KindAnonymous, "",
			[]Access{}, false, ""},
		{"no service parameter", "scope=repository:pub/app:pull", "", 200, KindAnonymous, "", []Access{repo("pub/app", "pull")}, false, ""},
		{"anonymous offline gets no refresh", "service=customs&offline_token=true", "", 200, KindAnonymous, "", []Access{}, false, ""},
		{"admin everything", "service=customs&scope=repository:priv/app:pull,push,delete&scope=registry:catalog:*", basic("admin", adminPW),
			200, KindUser, "admin", []Access{repo("priv/app", "pull", "push", "delete"), {Type: "registry", Name: "catalog", Actions: []string{"*"}}}, false, ""},
		{"admin star", "service=customs&scope=repository:priv/app:*", basic("admin", adminPW),
			200, KindUser, "admin", []Access{repo("priv/app", "*")}, false, ""},
		{"user intersection", "service=customs&scope=repository:priv/app:pull+repository:pub/app:pull,push&scope=registry:catalog:*",
			basic("alice", alicePW), 200, KindUser, "alice", []Access{repo("pub/app", "pull")}, false, ""},
		{"user star on public gets what she has", "service=customs&scope=repository:pub/app:*", basic("alice", alicePW),
			200, KindUser, "alice", []Access{repo("pub/app", "pull")}, false, ""},
		{"anonymous star on private gets nothing", "service=customs&scope=repository:priv/app:*", "",
			200, KindAnonymous, "", []Access{}, false, ""},
		{"user api scope", "service=customs&scope=api:v1:*", basic("alice", alicePW),
			200, KindUser, "alice", []Access{{Type: "api", Name: "v1", Actions: []string{"*"}}}, false, ""},
		{"anonymous api scope gets nothing", "service=customs&scope=api:v1:*", "", 200, KindAnonymous, "", []Access{}, false, ""},
		{"other api scopes get nothing", "service=customs&scope=api:v2:*+api:v1:pull", basic("alice", alicePW),
			200, KindUser, "alice", []Access{}, false, ""},
		{"account matches", "service=customs&account=alice", basic("alice", alicePW), 200, KindUser, "alice", []Access{}, false, ""},
		{"docker login offline token", "service=customs&account=admin&client_id=docker&offline_token=true", basic("admin", adminPW),
			200, KindUser, "admin", []Access{}, true, ""},

		{"wrong password", "service=customs", basic("alice", "nope"), 401, "", "", nil, false, msgBadLogin},
		{"unknown user", "service=customs", basic("mallory", "x"), 401, "", "", nil, false, msgBadLogin},
		{"disabled user", "service=customs", basic("bob", bobPW), 401, "", "", nil, false, msgBadLogin},
		{"bearer at token endpoint", "service=customs", "Bearer abc", 401, "", "", nil, false, "Basic"},
		{"malformed scope", "service=customs&scope=repository:Pub/App:pull", "", 400, "", "", nil, false, `invalid scope "repository:Pub/App:pull"`},
		{"scope without actions", "service=customs&scope=repository:pub/app", "", 400, "", "", nil, false, "invalid scope"},
		{"unknown resource type", "service=customs&scope=plugin:pub/app:pull", "", 400, "", "", nil, false, "unsupported resource type"},
		{"wrong service", "service=other&scope=repository:pub/app:pull", "", 400, "", "", nil, false, `unknown service "other"`},
		{"account mismatch", "service=customs&account=admin", basic("alice", alicePW), 400, "", "", nil, false, "does not match"},
		{"malformed scope before bad credentials", "scope=x", basic("alice", "nope"), 400, "", "", nil, false, "invalid scope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			w, reply := doToken(t, f, newRequest("GET", "/service/token?"+tc.query, tc.auth))
			if w.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %s", w.Code, tc.wantStatus, w.Body)
			}
			if tc.wantStatus != 200 {
				if len(reply.Errors) != 1 || !strings.Contains(reply.Errors[0].Message, tc.wantErr) || reply.ErrorDescription != reply.Errors[0].Message {
					t.Fatalf("error body %s, want a message containing %q", w.Body, tc.wantErr)
				}
				wantCode := map[int]string{400: "UNSUPPORTED", 401: "UNAUTHORIZED"}[tc.wantStatus]
				if reply.Errors[0].Code != wantCode {
					t.Fatalf("code %q, want %q", reply.Errors[0].Code, wantCode)
				}
				if tc.wantStatus == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic ") {
					t.Fatalf("401 without a Basic challenge: %q", w.Header().Get("WWW-Authenticate"))
				}
				return
			}
			if reply.Token == "" || reply.Token != reply.AccessToken {
				t.Fatalf("token %q and access_token %q must be equal and set", reply.Token, reply.AccessToken)
			}
			if reply.ExpiresIn != 300 {
				t.Fatalf("expires_in %d, want 300", reply.ExpiresIn)
			}
			if at, err := time.Parse(time.RFC3339, reply.IssuedAt); err != nil || !at.Equal(f.clock.Now()) {
				t.Fatalf("issued_at %q, want %v", reply.IssuedAt, f.clock.Now())
			}
			if (reply.RefreshToken != "") != tc.wantRefresh {
				t.Fatalf("refresh_token %q, want present=%v", reply.RefreshToken, tc.wantRefresh)
			}
			p := grantedBy(t, f, reply.Token)
			if p.Kind != tc.wantKind || p.Name != tc.wantName || !p.Token {
				t.Fatalf("principal %+v, want kind %s name %q", p, tc.wantKind, tc.wantName)
			}
			if !reflect.DeepEqual(p.Granted, tc.wantGranted) {
				t.Fatalf("granted %v, want %v", p.Granted, tc.wantGranted)
			}
			// What was granted authorizes; nothing more does.
			for _, g := range p.Granted {
				if err := f.svc.Authorize(context.Background(), p, g); err != nil {
					t.Fatalf("granted %s not authorized: %v", g, err)
				}
			}
			if err := f.svc.Authorize(context.Background(), p, repo("priv/other", "pull")); err == nil {
				t.Fatal("token authorizes a scope it was not granted")
			}
		})
	}
}

func postForm(form url.Values) *http.Request {
	r := httptest.NewRequest("POST", "/service/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func TestTokenPOST(t *testing.T) {
	f := newFixture(t)
	pw := func(user, pass string, extra ...string) url.Values {
		v := url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass}, "service": {"customs"}, "client_id": {"test"}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Add(extra[i], extra[i+1])
		}
		return v
	}

	// Password grant without offline access: no refresh token.
	w, reply := doToken(t, f, postForm(pw("alice", alicePW, "scope", "repository:pub/app:pull,push repository:priv/app:pull")))
	if w.Code != 200 || reply.RefreshToken != "" || reply.AccessToken == "" {
		t.Fatalf("password grant: %d %s", w.Code, w.Body)
	}
	if reply.Scope != "repository:pub/app:pull" {
		t.Fatalf("scope %q, want the granted intersection", reply.Scope)
	}

	// Password grant with access_type=offline: a refresh token.
	w, reply = doToken(t, f, postForm(pw("admin", adminPW, "access_type", "offline", "scope", "repository:priv/app:push")))
	if w.Code != 200 || reply.RefreshToken == "" {
		t.Fatalf("offline password grant: %d %s", w.Code, w.Body)
	}
	refresh := reply.RefreshToken
	if p := grantedBy(t, f, reply.AccessToken); p.Name != "admin" || len(p.Granted) != 1 {
		t.Fatalf("principal %+v", p)
	}
	// A refresh token is not an access token.
	if _, err := f.svc.Authenticate(newRequest("GET", "/v2/", "Bearer "+refresh)); apperr.Code(err) != apperr.EUNAUTHORIZED {
		t.Fatalf("refresh token accepted as bearer: %v", err)
	}

	refreshGrant := func(tok string) url.Values {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}, "service": {"customs"},
			"scope": {"repository:priv/app:pull,push"}, "client_id": {"docker"}}
	}
	w, reply = doToken(t, f, postForm(refreshGrant(refresh)))
	if w.Code != 200 || reply.RefreshToken != "" {
		t.Fatalf("refresh grant: %d %s", w.Code, w.Body)
	}
	if p := grantedBy(t, f, reply.AccessToken); p.Name != "admin" || !reflect.DeepEqual(p.Granted,
		[]Access{{Type: "repository", Name: "priv/app", Actions: []string{"pull", "push"}}}) {
		t.Fatalf("refreshed principal %+v", p)
	}

	// An access token is not a refresh token.
	w, _ = doToken(t, f, postForm(refreshGrant(reply.AccessToken)))
	if w.Code != 401 {
		t.Fatalf("access token redeemed as refresh token: %d", w.Code)
	}

	errs := []struct {
		name   string
		form   url.Values
		status int
		oauth  string
	}{
		{"wrong password", pw("alice", "nope"), 401, "invalid_grant"},
		{"missing username", pw("", alicePW), 400, "invalid_request"},
		{"missing grant type", url.Values{"username": {"alice"}, "password": {alicePW}}, 400, "invalid_request"},
		{"unsupported grant", url.Values{"grant_type": {"client_credentials"}}, 400, "unsupported_grant_type"},
		{"missing refresh token", url.Values{"grant_type": {"refresh_token"}}, 400, "invalid_request"},
		{"garbage refresh token", refreshGrant("a.b.c"), 401, "invalid_grant"},
		{"malformed scope", pw("alice", alicePW, "scope", "repository:pub/app:pull,,push"), 400, "invalid_scope"},
		{"wrong service", url.Values{"grant_type": {"password"}, "service": {"x"}}, 400, "invalid_request"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			w, reply := doToken(t, f, postForm(tc.form))
			if w.Code != tc.status || reply.Error != tc.oauth || len(reply.Errors) != 1 {
				t.Fatalf("status %d error %q, want %d %q; body %s", w.Code, reply.Error, tc.status, tc.oauth, w.Body)
			}
		})
	}

	// Changing the password revokes the refresh token.
	t.Run("refresh after password change", func(t *testing.T) {
		ctx := context.Background()
		u, _ := f.st.User(ctx, "admin")
		saved := u.PasswordHash
		u.PasswordHash, _ = HashPassword("changed", fastParams)
		_ = f.st.UpdateUser(ctx, u)
		defer func() { u.PasswordHash = saved; _ = f.st.UpdateUser(ctx, u) }()
		if w, _ := doToken(t, f, postForm(refreshGrant(refresh))); w.Code != 401 {
			t.Fatalf("status %d, want 401", w.Code)
		}
	})
	t.Run("refresh of disabled user", func(t *testing.T) {
		ctx := context.Background()
		u, _ := f.st.User(ctx, "admin")
		u.Disabled = true
		_ = f.st.UpdateUser(ctx, u)
		defer func() { u.Disabled = false; _ = f.st.UpdateUser(ctx, u) }()
		if w, _ := doToken(t, f, postForm(refreshGrant(refresh))); w.Code != 401 {
			t.Fatalf("status %d, want 401", w.Code)
		}
	})
	t.Run("refresh still valid after 89 days", func(t *testing.T) {
		f.clock.Advance(89 * 24 * time.Hour)
		if w, _ := doToken(t, f, postForm(refreshGrant(refresh))); w.Code != 200 {
			t.Fatalf("status %d, want 200", w.Code)
		}
	})
	t.Run("refresh expired", func(t *testing.T) {
		f.clock.Advance(2 * 24 * time.Hour)
		if w, _ := doToken(t, f, postForm(refreshGrant(refresh))); w.Code != 401 {
			t.Fatalf("status %d, want 401", w.Code)
		}
	})
}

func TestTokenGETOfflineRefreshWorksWithPOST(t *testing.T) {
	// docker login: GET with Basic and offline_token=true; docker then keeps
	// the refresh token as its identity token and uses the POST flow.
	f := newFixture(t)
	_, reply := doToken(t, f, newRequest("GET", "/service/token?service=customs&offline_token=true&client_id=docker", basic("admin", adminPW)))
	if reply.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	w, reply := doToken(t, f, postForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {reply.RefreshToken},
		"service": {"customs"}, "scope": {"repository:priv/app:pull"}}))
	if w.Code != 200 || grantedBy(t, f, reply.AccessToken).Name != "admin" {
		t.Fatalf("identity token flow: %d %s", w.Code, w.Body)
	}
}

func TestTokenEndpointMethodAndBody(t *testing.T) {
	f := newFixture(t)
	w, _ := doToken(t, f, httptest.NewRequest("PUT", "/service/token", nil))
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, POST" {
		t.Fatalf("PUT: %d, Allow %q", w.Code, w.Header().Get("Allow"))
	}
	big := postForm(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {strings.Repeat("x", maxTokenForm)}})
	if w, _ := doToken(t, f, big); w.Code != http.StatusBadRequest {
		t.Fatalf("oversized form: %d, want 400", w.Code)
	}
}

func TestTokenEndpointStoreDown(t *testing.T) {
	f := newFixture(t)
	f.st.fail = context.DeadlineExceeded
	w, reply := doToken(t, f, newRequest("GET", "/service/token?scope=repository:pub/app:pull", ""))
	if w.Code != http.StatusServiceUnavailable || reply.Errors[0].Code != "UNAVAILABLE" {
		t.Fatalf("status %d body %s, want 503", w.Code, w.Body)
	}
}

// FuzzTokenRequest sends arbitrary anonymous token requests: the answer is
// 200 or 400, never a server error, and a token never grants more than was
// asked nor more than anonymous may do.
func FuzzTokenRequest(f *testing.F) {
	fx := newFixture(f)
	for _, q := range []string{"service=customs&scope=repository:pub/app:pull,push", "scope=registry:catalog:*",
		"scope=repository:priv/app:*&scope=repository:pub/x:pull+repository:pub/x:delete", "scope=%00", "service=x"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, query string) {
		r := httptest.NewRequest("GET", "/service/token", nil)
		r.URL.RawQuery = query
		w := httptest.NewRecorder()
		fx.svc.TokenHandler().ServeHTTP(w, r)
		switch w.Code {
		case 400:
			return
		case 200:
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		var reply tokenReply
		if err := json.Unmarshal(w.Body.Bytes(), &reply); err != nil {
			t.Fatal(err)
		}
		p := grantedBy(t, fx, reply.Token)
		asked, err := ParseScopes(r.URL.Query()["scope"])
		if err != nil {
			t.Fatalf("200 for scopes that do not parse: %v", err)
		}
		for _, g := range p.Granted {
			if g.Type != TypeRepository || !strings.HasPrefix(g.Name, "pub/") || !reflect.DeepEqual(g.Actions, []string{ActionPull}) {
				t.Fatalf("anonymous granted %s", g)
			}
			if !allows(asked, g.Type, g.Name, ActionPull) {
				t.Fatalf("granted %s that was not asked", g)
			}
		}
	})
}
