package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/customs-dev/customs/internal/apperr"
)

func mustB64URL(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTokenRoundTrip(t *testing.T) {
	f := newFixture(t)
	access := []Access{{Type: "repository", Name: "pub/app", Actions: []string{"pull"}}}
	tok, issued, err := f.svc.tokens.sign(Claims{RegisteredClaims: registered("alice"), Kind: KindUser, Access: access, Use: useAccess}, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !issued.Equal(f.clock.Now()) {
		t.Fatalf("issued %v, want %v", issued, f.clock.Now())
	}

	// The header names ES256 and the signing key.
	parts := strings.Split(tok, ".")
	var hdr map[string]any
	if err := json.Unmarshal(mustB64URL(t, parts[0]), &hdr); err != nil {
		t.Fatal(err)
	}
	sk, _ := f.keys.SigningKey()
	if hdr["alg"] != "ES256" || hdr["kid"] != sk.ID || hdr["typ"] != "JWT" {
		t.Fatalf("header %v", hdr)
	}
	// The payload carries the registered claims the spec asks for.
	var raw map[string]any
	if err := json.Unmarshal(mustB64URL(t, parts[1]), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access", "kind"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("claim %q missing from %v", k, raw)
		}
	}

	c, kid, err := f.svc.tokens.verify(tok, useAccess)
	if err != nil {
		t.Fatal(err)
	}
	if kid != sk.ID || c.Subject != "alice" || c.Kind != KindUser || c.Issuer != "customs-test" ||
		!reflect.DeepEqual([]string(c.Audience), []string{"customs"}) || !reflect.DeepEqual(c.Access, access) {
		t.Fatalf("claims %+v kid %s", c, kid)
	}
	if got := c.ExpiresAt.Sub(c.IssuedAt.Time); got != 5*time.Minute {
		t.Fatalf("lifetime %v, want 5m", got)
	}
	if c.ID == "" {
		t.Fatal("no jti")
	}
	tok2, _, _ := f.svc.tokens.sign(Claims{RegisteredClaims: registered("alice"), Kind: KindUser, Use: useAccess}, time.Minute)
	if c2, _, _ := f.svc.tokens.verify(tok2, useAccess); c2 == nil || c2.ID == c.ID {
		t.Fatal("two tokens share a jti")
	}
}

// forge signs arbitrary claims with the given method, key and kid.
func forge(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenVerifyRejects(t *testing.T) {
	f := newFixture(t)
	sk, _ := f.keys.SigningKey()
	now := f.clock.Now()
	base := func() jwt.MapClaims {
		return jwt.MapClaims{
			"iss": "customs-test", "sub": "alice", "aud": "customs",
			"exp": now.Add(time.Minute).Unix(), "nbf": now.Unix(), "iat": now.Unix(), "jti": "x",
			"kind": "user", "token_use": "access",
			"access": []Access{{Type: "repository", Name: "priv/app", Actions: []string{"*"}}},
		}
	}
	with := func(k string, v any) jwt.MapClaims {
		c := base()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&sk.Key.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	strangerID, _ := KeyID(&stranger.PublicKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	valid := forge(t, jwt.SigningMethodES256, sk.Key, sk.ID, base())
	vparts := strings.Split(valid, ".")
	tamperedClaims, _ := json.Marshal(with("sub", "admin"))

	tests := []struct {
		name  string
		token string
	}{
		{"alg none", forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, sk.ID, base())},
		{"HS256 keyed with the PEM public key", forge(t, jwt.SigningMethodHS256, pubPEM, sk.ID, base())},
		{"HS256 keyed with the DER public key", forge(t, jwt.SigningMethodHS256, pubDER, sk.ID, base())},
		{"ES384", forge(t, jwt.SigningMethodES384, p384, sk.ID, base())},
		{"unknown kid", forge(t, jwt.SigningMethodES256, sk.Key, "no-such-key", base())},
		{"missing kid", forge(t, jwt.SigningMethodES256, sk.Key, "", base())},
		{"unknown key", forge(t, jwt.SigningMethodES256, stranger, strangerID, base())},
		{"unknown key claiming a known kid", forge(t, jwt.SigningMethodES256, stranger, sk.ID, base())},
		{"expired", forge(t, jwt.SigningMethodES256, sk.Key, sk.ID, with("exp", now.Add(-clockSkew-time.Second).Unix()))},
		{"not yet valid", forge(t, jwt.SigningMethodES256, sk.Key, sk.ID, with("nbf", now.Add(time.Hour).Unix()))},
		{"issued in the future", forge(t, jwt.SigningMethodES256, sk.Key, sk.ID, with("iat", now.Add(time.Hour).Unix()))},
		{"missing exp", forge(t, jwt.SigningMethodES256, sk.Key, sk.ID, with("exp", nil))},
		{"wrong audience", forge(t, jwt.SigningMethodES256, sk.Key, sk.ID, with("aud", "other-registry"))},
		{"missing audience", forge(t, jwt.SigningMethodES256, sk.Key, sk.ID, with("aud", nil))},
		{"wrong issuer", forge(t, jwt.SigningMethodES256, sk.Key, sk.ID, with("iss", "evil"))},
		{"missing issuer", forge(t, jwt.SigningMethodES256, sk.Key, sk.ID, with("iss", nil))},
		{"refresh token as access token", forge(t, jwt.SigningMethodES256, sk.Key, sk.ID, with("token_use", "refresh"))},
		{"missing token_use", forge(t, jwt.SigningMethodES256, sk.Key, sk.ID, with("token_use", nil))},
		{"unknown kind", forge(t, jwt.SigningMethodES256, sk.Key, sk.ID, with("kind", "god"))},
		{"anonymous with subject", forge(t, jwt.SigningMethodES256, sk.Key, sk.ID, with("kind", "anonymous"))},
		{"user without subject", forge(t, jwt.SigningMethodES256, sk.Key, sk.ID, with("sub", nil))},
		{"tampered payload", vparts[0] + "." + base64.RawURLEncoding.EncodeToString(tamperedClaims) + "." + vparts[2]},
		{"signature stripped", vparts[0] + "." + vparts[1] + "."},
		{"padded segments", vparts[0] + "=." + vparts[1] + "." + vparts[2]},
		{"empty", ""},
		{"not a JWT", "hello"},
		{"two segments", vparts[0] + "." + vparts[1]},
		{"too long", valid + strings.Repeat("A", maxTokenLen)},
	}
	if _, _, err := f.svc.tokens.verify(valid, useAccess); err != nil {
		t.Fatalf("the unmodified forged token must verify: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := f.svc.tokens.verify(tc.token, useAccess)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if apperr.Code(err) != apperr.EUNAUTHORIZED {
				t.Fatalf("error %v, want EUNAUTHORIZED", err)
			}
			// Through the Guard too.
			r := newRequest("GET", "/v2/", "Bearer "+tc.token)
			if tc.token == "" {
				r.Header.Set("Authorization", "Bearer")
			}
			if p, err := f.svc.Authenticate(r); apperr.Code(err) != apperr.EUNAUTHORIZED {
				t.Fatalf("Authenticate = %+v, %v; want EUNAUTHORIZED", p, err)
			}
		})
	}
}

func TestTokenClockSkew(t *testing.T) {
	f := newFixture(t)
	tok, _, err := f.svc.tokens.sign(Claims{RegisteredClaims: registered("alice"), Kind: KindUser, Use: useAccess}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute + clockSkew/2)
	if _, _, err := f.svc.tokens.verify(tok, useAccess); err != nil {
		t.Fatalf("token expired within the clock skew rejected: %v", err)
	}
	f.clock.Advance(clockSkew)
	if _, _, err := f.svc.tokens.verify(tok, useAccess); err == nil {
		t.Fatal("token expired beyond the clock skew accepted")
	}
}

func TestTokenSignedByRotatedOutKeyStillVerifies(t *testing.T) {
	f := newFixture(t)
	old, _, err := f.svc.tokens.sign(Claims{RegisteredClaims: registered("alice"), Kind: KindUser, Use: useAccess}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	newKid, err := f.keys.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.tokens.verify(old, useAccess); err != nil {
		t.Fatalf("token of the previous key rejected after rotation: %v", err)
	}
	fresh, _, _ := f.svc.tokens.sign(Claims{RegisteredClaims: registered("alice"), Kind: KindUser, Use: useAccess}, time.Minute)
	if _, kid, err := f.svc.tokens.verify(fresh, useAccess); err != nil || kid != newKid {
		t.Fatalf("new token: kid %s, err %v; want kid %s", kid, err, newKid)
	}
}

func FuzzVerifyToken(f *testing.F) {
	fx := newFixture(f)
	good, _, _ := fx.svc.tokens.sign(Claims{RegisteredClaims: registered("alice"), Kind: KindUser, Use: useAccess}, time.Minute)
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, s string) {
		c, _, err := fx.svc.tokens.verify(s, useAccess)
		if err == nil && s != good {
			t.Fatalf("accepted a token the service did not issue: %q (%+v)", s, c)
		}
		if err != nil && apperr.Code(err) != apperr.EUNAUTHORIZED {
			t.Fatalf("error code %s, want EUNAUTHORIZED", apperr.Code(err))
		}
	})
}
