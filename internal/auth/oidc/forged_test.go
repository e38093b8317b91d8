package oidc

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/auth"
)

// noRedirects is a browser that stops at each redirect, to tamper with the
// flow between steps.
func noRedirects(t *testing.T) *http.Client {
	c := browser(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// TestForgedCallbacks: a callback succeeds only in the browser that started
// the login, once, with the state and nonce of that login.
func TestForgedCallbacks(t *testing.T) {
	f := newFixture(t)
	// start begins a login in c and returns the state and the provider URL.
	start := func(t *testing.T, c *http.Client) (state string, authURL *url.URL) {
		resp, err := c.Get(f.url + LoginPath)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("login start: %d", resp.StatusCode)
		}
		authURL, _ = url.Parse(resp.Header.Get("Location"))
		q := authURL.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" {
			t.Fatalf("authorization request lacks PKCE, nonce or state: %s", authURL)
		}
		return q.Get("state"), authURL
	}
	// authorize completes the provider's side with a fresh browser and
	// returns customs' callback URL (with code and state).
	authorize := func(t *testing.T, authURL *url.URL) string {
		b := noRedirects(t)
		next := authURL.String()
		for range 10 {
			resp, err := b.Get(next)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				m := loginFormRe(body)
				if m == "" {
					t.Fatalf("no login form: %s", body)
				}
				form := url.Values{"id": {m}, "username": {"bob"}, "password": {"bob-pw"}}
				resp, err = b.PostForm(f.op.Issuer+"/login/username", form)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if err != nil || resp.Header.Get("Location") == "" {
				t.Fatalf("provider stopped at %s: %d", resp.Request.URL, resp.StatusCode)
			}
			if strings.HasPrefix(loc.String(), f.url+CallbackPath) {
				return loc.String()
			}
			next = loc.String()
		}
		t.Fatal("too many redirects at the provider")
		return ""
	}
	get := func(t *testing.T, c *http.Client, u string) (int, string) {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	t.Run("the callback in another browser", func(t *testing.T) {
		_, authURL := start(t, noRedirects(t))
		cb := authorize(t, authURL)
		if code, body := get(t, noRedirects(t), cb); code != http.StatusUnauthorized || !strings.Contains(body, "not started in this browser") {
			t.Fatalf("callback without the state cookie: %d %s", code, body)
		}
	})
	t.Run("a state swapped for another login's", func(t *testing.T) {
		victim := noRedirects(t)
		start(t, victim)
		_, authURL := start(t, noRedirects(t))
		cb := authorize(t, authURL)
		if code, _ := get(t, victim, cb); code != http.StatusUnauthorized {
			t.Fatalf("callback with another login's state: %d", code)
		}
	})
	t.Run("replayed", func(t *testing.T) {
		c := noRedirects(t)
		_, authURL := start(t, c)
		cb := authorize(t, authURL)
		resp, err := c.Get(cb)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != DefaultNext {
			t.Fatalf("callback: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		var session *http.Cookie
		for _, ck := range resp.Cookies() {
			if ck.Name == auth.SessionCookie {
				session = ck
			}
		}
		if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" || session.Expires.IsZero() {
			t.Fatalf("session cookie = %+v, want HttpOnly, SameSite=Lax, Path=/, with an expiry", session)
		}
		// The state cookie is gone; with a copy of it, the code is spent.
		if code, _ := get(t, c, cb); code != http.StatusUnauthorized {
			t.Fatalf("replayed callback: %d", code)
		}
	})
	t.Run("code spent", func(t *testing.T) {
		c := noRedirects(t)
		state, authURL := start(t, c)
		u, _ := url.Parse(f.url)
		saved := c.Jar.Cookies(&url.URL{Scheme: "http", Host: u.Host, Path: cookiePath})
		cb := authorize(t, authURL)
		if code, _ := get(t, c, cb); code != http.StatusFound {
			t.Fatalf("callback: %d", code)
		}
		c.Jar.SetCookies(&url.URL{Scheme: "http", Host: u.Host, Path: cookiePath}, saved)
		if code, body := get(t, c, cb); code != http.StatusUnauthorized || !strings.Contains(body, "refused the code") {
			t.Fatalf("replayed code with the state cookie (state %s): %d %s", state, code, body)
		}
	})
	t.Run("nonce of another login", func(t *testing.T) {
		c := noRedirects(t)
		state, authURL := start(t, c)
		// A cookie signed with customs' key (as a second login would
		// produce) whose nonce is not the one the provider puts in the
		// ID token.
		u, _ := url.Parse(f.url)
		jarURL := &url.URL{Scheme: "http", Host: u.Host, Path: cookiePath}
		var st loginState
		for _, ck := range c.Jar.Cookies(jarURL) {
			if ck.Name == cookieName(state) {
				var err error
				if st, err = openState(f.stateKy, ck.Value, f.clock()); err != nil {
					t.Fatal(err)
				}
			}
		}
		st.Nonce = "another-nonce"
		sealed, err := sealState(f.stateKy, st)
		if err != nil {
			t.Fatal(err)
		}
		c.Jar.SetCookies(jarURL, []*http.Cookie{{Name: cookieName(state), Value: sealed, Path: cookiePath}})
		cb := authorize(t, authURL)
		if code, body := get(t, c, cb); code != http.StatusUnauthorized || !strings.Contains(body, "nonce") {
			t.Fatalf("callback with another nonce: %d %s", code, body)
		}
	})
	t.Run("tampered state cookie", func(t *testing.T) {
		c := noRedirects(t)
		state, authURL := start(t, c)
		u, _ := url.Parse(f.url)
		jarURL := &url.URL{Scheme: "http", Host: u.Host, Path: cookiePath}
		st := loginState{State: state, Nonce: "n", Verifier: "v", Expires: f.clock().Add(time.Hour)}
		forged, _ := sealState([]byte("another key, 32 bytes long......"), st)
		c.Jar.SetCookies(jarURL, []*http.Cookie{{Name: cookieName(state), Value: forged, Path: cookiePath}})
		cb := authorize(t, authURL)
		if code, _ := get(t, c, cb); code != http.StatusUnauthorized {
			t.Fatalf("callback with a forged cookie: %d", code)
		}
	})
	t.Run("expired state", func(t *testing.T) {
		c := noRedirects(t)
		_, authURL := start(t, c)
		cb := authorize(t, authURL)
		f.advance(stateTTL + time.Second)
		defer f.advance(-stateTTL - time.Second)
		if code, _ := get(t, c, cb); code != http.StatusUnauthorized {
			t.Fatalf("callback after the state expired: %d", code)
		}
	})
	t.Run("provider error", func(t *testing.T) {
		code, body := get(t, noRedirects(t), f.url+CallbackPath+"?error=access_denied&error_description=no+thanks")
		if code != http.StatusUnauthorized || !strings.Contains(body, "access_denied (no thanks)") {
			t.Fatalf("callback with an error: %d %s", code, body)
		}
	})
}

// loginFormRe extracts the auth request id of the provider's login page.
func loginFormRe(body []byte) string {
	const marker = `name="id" value="`
	s := string(body)
	i := strings.Index(s, marker)
	if i < 0 {
		return ""
	}
	s = s[i+len(marker):]
	return s[:strings.IndexByte(s, '"')]
}
