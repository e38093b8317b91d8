package auth

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkAuthenticateAuthorizeBearer measures what the registry does on
// every request of a client holding a token: verify the bearer token and
// check the requested action against it. The first request of a token pays
// the ECDSA verification; later ones hit the verified-token cache.
func BenchmarkAuthenticateAuthorizeBearer(b *testing.B) {
	f := newFixture(b)
	access := Access{Type: "repository", Name: "priv/app", Actions: []string{"pull"}}
	tok, _, err := f.svc.tokens.sign(Claims{RegisteredClaims: registered("admin"), Kind: KindUser, Use: useAccess,
		Access: []Access{{Type: "repository", Name: "priv/app", Actions: []string{"pull", "push"}}}}, 5*time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("HEAD", "/v2/priv/app/manifests/v1", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	ctx := context.Background()
	run := func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p, err := f.svc.Authenticate(r)
			if err != nil {
				b.Fatal(err)
			}
			if err := f.svc.Authorize(ctx, p, access); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("cached", run)
	b.Run("uncached", func(b *testing.B) {
		saved := f.svc.verified
		f.svc.verified = newLRU[[32]byte, verifiedToken](0)
		defer func() { f.svc.verified = saved }()
		run(b)
	})
}

// BenchmarkAuthenticateBasicCached measures a Basic-auth request whose
// credentials were verified recently (no argon2id).
func BenchmarkAuthenticateBasicCached(b *testing.B) {
	f := newFixture(b)
	r := httptest.NewRequest("GET", "/v2/", nil)
	r.Header.Set("Authorization", basic("alice", alicePW))
	if _, err := f.svc.Authenticate(r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.svc.Authenticate(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHashPasswordDefault measures one argon2id hash with the default
// parameters: the cost of a login that misses the credential cache.
func BenchmarkHashPasswordDefault(b *testing.B) {
	p := DefaultPasswordParams()
	for b.Loop() {
		if _, err := HashPassword("password", p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateSession is a JSON API request made with a session
// cookie (in-memory store): "cached" remembers the verified token, as the
// Service does; "uncached" verifies its ECDSA signature each time, as the
// session check did before.
func BenchmarkAuthenticateSession(b *testing.B) {
	f := newFixture(b)
	alice, err := f.st.User(context.Background(), "alice")
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := f.svc.IssueSession(alice, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/api/v1/projects", nil)
	r.Header.Set("Cookie", SessionCookie+"="+tok)
	run := func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.svc.AuthenticateAPI(r); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("cached", run)
	b.Run("uncached", func(b *testing.B) {
		saved := f.svc.sessionsOK
		f.svc.sessionsOK = newLRU[[32]byte, verifiedSession](0)
		defer func() { f.svc.sessionsOK = saved }()
		run(b)
	})
}
