package auth

import (
	"context"
	"crypto/ecdsa"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
)

// distrustingKeys is a KeyStore that can stop trusting every key, as after
// a key's file is removed because it leaked.
type distrustingKeys struct {
	KeyStore
	distrust atomic.Bool
}

func (k *distrustingKeys) PublicKey(kid string) (*ecdsa.PublicKey, error) {
	if k.distrust.Load() {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "no key %s", kid)
	}
	return k.KeyStore.PublicKey(kid)
}

// TestSessionVerifiedCache: a session token is verified once and then
// remembered, but never past its expiry, never once its signing key is
// distrusted, and what ends a session (here: disabling the user) is still
// checked on every request.
func TestSessionVerifiedCache(t *testing.T) {
	var keys *distrustingKeys
	f := newFixture(t, func(o *Options) {
		keys = &distrustingKeys{KeyStore: o.Keys}
		o.Keys = keys
	})
	ctx := context.Background()
	alice, err := f.st.User(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := f.svc.IssueSession(alice, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	check := func() error {
		r := httptest.NewRequest("GET", "/api/v1/projects", nil)
		r.Header.Set("Cookie", SessionCookie+"="+tok)
		p, err := f.svc.AuthenticateAPI(r)
		if err == nil && p.Name != "alice" {
			t.Fatalf("session of %+v", p)
		}
		return err
	}
	if err := check(); err != nil {
		t.Fatal(err)
	}
	if n := f.svc.sessionsOK.len(); n != 1 {
		t.Fatalf("%d verified sessions remembered, want 1", n)
	}
	if err := check(); err != nil {
		t.Fatalf("from the cache: %v", err)
	}

	// Disabling is read from the store on every request, cache or not.
	alice.Disabled = true
	if err := f.st.UpdateUser(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if err := check(); apperr.Code(err) != apperr.EUNAUTHORIZED {
		t.Fatalf("disabled user's cached session: %v", err)
	}
	alice.Disabled = false
	if err := f.st.UpdateUser(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if err := check(); err != nil {
		t.Fatal(err)
	}

	// A distrusted key ends it, although it is remembered.
	keys.distrust.Store(true)
	if err := check(); apperr.Code(err) != apperr.EUNAUTHORIZED {
		t.Fatalf("session signed by a distrusted key: %v", err)
	}
	keys.distrust.Store(false)
	if err := check(); err != nil {
		t.Fatal(err)
	}

	// Past its expiry (and the clock skew allowed), it is forgotten and refused.
	f.clock.Advance(time.Hour + clockSkew + time.Second)
	if err := check(); apperr.Code(err) != apperr.EUNAUTHORIZED {
		t.Fatalf("expired session: %v", err)
	}
}
