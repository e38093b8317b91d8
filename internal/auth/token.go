package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/customs-dev/customs/internal/apperr"
)

// Token uses, in the "token_use" claim: an access token is presented to the
// registry; a refresh token (docker's "identity token") is only exchanged at
// the token endpoint for access tokens. Neither is accepted as the other.
const (
	useAccess  = "access"
	useRefresh = "refresh"
)

// clockSkew is the leeway allowed between the clocks of the replica that
// issued a token and the one verifying it.
const clockSkew = 30 * time.Second

// maxTokenLen bounds a bearer token or refresh token read from a request.
const maxTokenLen = 64 << 10

// Claims are the claims of a token issued by customs: the registered JWT
// claims (iss, sub, aud, exp, nbf, iat, jti), the principal kind, what the
// token grants, and its use.
type Claims struct {
	jwt.RegisteredClaims
	// Kind is the kind of principal the token was issued to.
	Kind Kind `json:"kind"`
	// Access is what an access token grants, per the Docker token spec.
	Access []Access `json:"access"`
	// Use is "access" or "refresh".
	Use string `json:"token_use"`
	// Cred fingerprints the credential a refresh token was issued against
	// (a hash of the user's password hash), so changing the password revokes
	// every refresh token issued before.
	Cred string `json:"cred,omitempty"`
}

// tokens signs and verifies customs tokens.
type tokens struct {
	keys    KeyStore
	service string
	issuer  string
	clock   func() time.Time
	parser  *jwt.Parser
}

func newTokens(keys KeyStore, service, issuer string, clock func() time.Time) *tokens {
	return &tokens{
		keys: keys, service: service, issuer: issuer, clock: clock,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithAudience(service),
			jwt.WithIssuer(issuer),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(clockSkew),
			jwt.WithTimeFunc(clock),
			jwt.WithStrictDecoding(),
		),
	}
}

// sign fills in c's registered claims (issuer, audience, times, id), signs
// it with the current signing key and returns the token and its issue time.
func (t *tokens) sign(c Claims, ttl time.Duration) (token string, issued time.Time, err error) {
	key, err := t.keys.SigningKey()
	if err != nil {
		return "", time.Time{}, err
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", time.Time{}, apperr.Wrap(err, apperr.EINTERNAL, "cannot issue token")
	}
	issued = t.clock().Truncate(time.Second)
	c.Issuer = t.issuer
	c.Audience = jwt.ClaimStrings{t.service}
	c.IssuedAt = jwt.NewNumericDate(issued)
	c.NotBefore = jwt.NewNumericDate(issued)
	c.ExpiresAt = jwt.NewNumericDate(issued.Add(ttl))
	c.ID = base64.RawURLEncoding.EncodeToString(jti)
	if c.Access == nil {
		c.Access = []Access{}
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = key.ID
	s, err := tok.SignedString(key.Key)
	if err != nil {
		return "", time.Time{}, apperr.Wrap(err, apperr.EINTERNAL, "cannot sign token")
	}
	return s, issued, nil
}

// verify checks a token's signature (ES256 only, by a known key id), its
// issuer, audience, expiry, not-before and issued-at times, its use and kind,
// and returns its claims and key id. Every failure is EUNAUTHORIZED.
func (t *tokens) verify(token, use string) (*Claims, string, error) {
	if len(token) > maxTokenLen {
		return nil, "", apperr.Errorf(apperr.EUNAUTHORIZED, "token too long")
	}
	var kid string
	c := new(Claims)
	_, err := t.parser.ParseWithClaims(token, c, func(tok *jwt.Token) (any, error) {
		if tok.Method != jwt.SigningMethodES256 {
			return nil, fmt.Errorf("unexpected signing method %v", tok.Header["alg"])
		}
		k, ok := tok.Header["kid"].(string)
		if !ok || k == "" {
			return nil, errors.New("token has no key id")
		}
		pub, err := t.keys.PublicKey(k)
		if err != nil {
			return nil, err
		}
		kid = k
		return pub, nil
	})
	if err != nil {
		return nil, "", apperr.Wrap(err, apperr.EUNAUTHORIZED, "invalid or expired token")
	}
	if c.Use != use {
		return nil, "", apperr.Errorf(apperr.EUNAUTHORIZED, "token is not an %s token", use)
	}
	switch c.Kind {
	case KindAnonymous:
		if c.Subject != "" {
			return nil, "", apperr.Errorf(apperr.EUNAUTHORIZED, "invalid token subject")
		}
	case KindUser, KindRobot, KindSystem:
		if c.Subject == "" {
			return nil, "", apperr.Errorf(apperr.EUNAUTHORIZED, "invalid token subject")
		}
	default:
		return nil, "", apperr.Errorf(apperr.EUNAUTHORIZED, "invalid token principal kind")
	}
	return c, kid, nil
}

// credFingerprint returns the value of a refresh token's "cred" claim for a
// stored password hash.
func credFingerprint(passwordHash string) string {
	sum := sha256.Sum256([]byte("customs refresh token\x00" + passwordHash))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// registered returns the registered claims for a subject; sign fills in the rest.
func registered(sub string) jwt.RegisteredClaims {
	return jwt.RegisteredClaims{Subject: sub}
}
