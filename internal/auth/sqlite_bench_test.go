package auth_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/store"
)

// memberService is a Service over SQLite where user "dev" is a developer
// of project priv.
func memberService(b *testing.B, mod ...func(*auth.Options)) *auth.Service {
	b.Helper()
	params := auth.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	svc, db := sqliteService(b, params, mod...)
	ctx := context.Background()
	h, err := auth.HashPassword("dev-pw", params)
	if err != nil {
		b.Fatal(err)
	}
	if err := db.CreateUser(ctx, &store.User{Name: "dev", PasswordHash: h}); err != nil {
		b.Fatal(err)
	}
	if err := db.AddMember(ctx, &store.Member{Project: "priv", Kind: store.MemberUser, Name: "dev", Role: "developer"}); err != nil {
		b.Fatal(err)
	}
	return svc
}

var pushAccess = auth.Access{Type: auth.TypeRepository, Name: "priv/app", Actions: []string{auth.ActionPull, auth.ActionPush}}

// BenchmarkSQLiteBearerMember is a registry request of a project member
// holding a token: what the 50 µs budget is about. Roles were resolved when
// the token was issued, so no store is read.
func BenchmarkSQLiteBearerMember(b *testing.B) {
	svc := memberService(b)
	code, tok := getToken(b, svc, "scope=repository:priv/app:pull,push", "dev", "dev-pw")
	if code != 200 || tok == "" {
		b.Fatalf("token: %d", code)
	}
	r := httptest.NewRequest("PUT", "/v2/priv/app/manifests/v1", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		p, err := svc.Authenticate(r)
		if err != nil {
			b.Fatal(err)
		}
		if err := svc.Authorize(ctx, p, pushAccess); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSQLiteBasicMember is a registry request of a project member
// sending Basic credentials each time (recently verified, so no argon2id):
// the user is read from the store; the role comes from the permission cache
// ("cached") or from the store ("uncached").
func BenchmarkSQLiteBasicMember(b *testing.B) {
	for _, bc := range []struct {
		name string
		ttl  int
	}{{"cached", 0}, {"uncached", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			svc := memberService(b, func(o *auth.Options) {
				if bc.ttl < 0 {
					o.PermissionCacheTTL = -1
				}
			})
			r := httptest.NewRequest("PUT", "/v2/priv/app/manifests/v1", nil)
			r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("dev:dev-pw")))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				p, err := svc.Authenticate(r)
				if err != nil {
					b.Fatal(err)
				}
				if err := svc.Authorize(ctx, p, pushAccess); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSQLiteTokenIssueMember is a token request of a project member
// (credentials recently verified): the store is read for the user, the
// project and the memberships, so that revocation applies to every new token.
func BenchmarkSQLiteTokenIssueMember(b *testing.B) {
	svc := memberService(b)
	h := svc.TokenHandler()
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("dev:dev-pw"))
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("GET", "/service/token?service=customs&scope=repository:priv/app:pull,push", nil)
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// usersOnly hides a store's SessionStore, so that a Service checks sessions
// as it did before they could be revoked (the user read alone).
type usersOnly struct{ store.UserStore }

// BenchmarkSQLiteSessionAPI is the authentication of a JSON API request made
// with the session cookie of an OIDC login: verify the token, then read the
// user — alone ("user only", sessions not revocable) or with the check that
// this session was not logged out, in the same query ("revocable"), with
// an empty table of revoked sessions or one of 10,000.
func BenchmarkSQLiteSessionAPI(b *testing.B) {
	for _, bc := range []struct {
		name      string
		revocable bool
		revoked   int
	}{{"user only", false, 0}, {"revocable", true, 0}, {"revocable, 10000 revoked", true, 10000}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			svc, db := sqliteService(b, auth.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
				func(o *auth.Options) {
					if !bc.revocable {
						o.Users = usersOnly{o.Users}
					}
				})
			u := &store.User{Name: "olga", Source: store.SourceOIDC, ExternalID: "https://id.example olga"}
			if err := db.CreateUser(ctx, u); err != nil {
				b.Fatal(err)
			}
			for i := range bc.revoked {
				if err := db.RevokeSession(ctx, fmt.Sprintf("jti-%d", i), "olga", time.Now().Add(time.Hour)); err != nil {
					b.Fatal(err)
				}
			}
			tok, _, err := svc.IssueSession(u, time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/api/v1/projects", nil)
			r.AddCookie(&http.Cookie{Name: auth.SessionCookie, Value: tok})
			b.ReportAllocs()
			for b.Loop() {
				p, err := svc.AuthenticateAPI(r)
				if err != nil || p.Name != "olga" {
					b.Fatal(p, err)
				}
			}
		})
	}
}

// BenchmarkSQLiteSessionRead is the store read of a session check alone:
// the user ("User", before sessions were revocable) or the user and the
// session's revocation in one query ("UserSession"), with 10,000 revoked
// sessions on record; each twice, alternating.
func BenchmarkSQLiteSessionRead(b *testing.B) {
	ctx := context.Background()
	_, db := sqliteService(b, auth.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err := db.CreateUser(ctx, &store.User{Name: "olga", Source: store.SourceOIDC, ExternalID: "https://id.example olga"}); err != nil {
		b.Fatal(err)
	}
	for i := range 10000 {
		if err := db.RevokeSession(ctx, fmt.Sprintf("jti-%d", i), "olga", time.Now().Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	// Twice each, alternating, so that an effect of the order (the
	// first reads after the inserts) shows as a difference between the two
	// runs of one read.
	for _, read := range []string{"User", "UserSession", "User", "UserSession"} {
		b.Run(read, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if read == "User" {
					if _, err := db.User(ctx, "olga"); err != nil {
						b.Fatal(err)
					}
					continue
				}
				if _, revoked, err := db.UserSession(ctx, "olga", "jti-not-revoked"); err != nil || revoked {
					b.Fatal(revoked, err)
				}
			}
		})
	}
}
