package oidc

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"
)

// loginState is what a login started in a browser must find again at the
// callback: kept in a cookie of that browser, signed so that it cannot be
// forged or edited.
type loginState struct {
	State    string    `json:"s"`
	Nonce    string    `json:"n"`
	Verifier string    `json:"v"` // PKCE code verifier
	Next     string    `json:"r"` // local path to return to
	Expires  time.Time `json:"e"`
}

// stateCookiePrefix starts the name of a login's state cookie; the rest is
// derived from the state, so logins started in two tabs do not collide.
const stateCookiePrefix = "customs_oidc_"

// stateTTL bounds the time between starting a login and its callback.
const stateTTL = 10 * time.Minute

// minStateKey is the least length of the key signing state cookies.
const minStateKey = 32

// maxStateCookie bounds a state cookie read from a request.
const maxStateCookie = 4096

// cookieName returns the name of the state cookie of state.
func cookieName(state string) string {
	sum := sha256.Sum256([]byte(state))
	return stateCookiePrefix + base64.RawURLEncoding.EncodeToString(sum[:9])
}

// randomToken returns 32 random bytes, base64url-encoded.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// sealState encodes st as payload.signature.
func sealState(key []byte, st loginState) (string, error) {
	raw, err := json.Marshal(st)
	if err != nil {
		return "", err
	}
	payload := base64.RawURLEncoding.EncodeToString(raw)
	return payload + "." + base64.RawURLEncoding.EncodeToString(stateMAC(key, payload)), nil
}

// openState verifies a sealed state and that it has not expired at now.
func openState(key []byte, sealed string, now time.Time) (loginState, error) {
	var st loginState
	if len(sealed) > maxStateCookie {
		return st, errors.New("state cookie too long")
	}
	payload, sig, ok := strings.Cut(sealed, ".")
	if !ok {
		return st, errors.New("state cookie malformed")
	}
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(mac, stateMAC(key, payload)) {
		return st, errors.New("state cookie signature invalid")
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return st, errors.New("state cookie malformed")
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, errors.New("state cookie malformed")
	}
	if !now.Before(st.Expires) {
		return st, errors.New("state cookie expired")
	}
	return st, nil
}

func stateMAC(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("customs oidc login state\x00"))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// localPath returns next if it is a path on this server ("/..."), else "".
// It refuses what browsers would take for another host: "//host",
// "/\host", schemes, and control characters.
func localPath(next string) string {
	if next == "" || len(next) > 2048 || next[0] != '/' || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return ""
	}
	for i := 0; i < len(next); i++ {
		if next[i] < 0x20 || next[i] == 0x7f || next[i] == '\\' {
			return ""
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return ""
	}
	return next
}
