package auth_test

import (
	"context"
	"encoding/base64"
	"net/http/httptest"
	"testing"

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
