package oidc

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/ui":                "/ui",
		"/a/b?c=d#e":         "/a/b?c=d#e",
		"":                   "",
		"ui":                 "",
		"//evil.example":     "",
		"/\\evil.example":    "",
		"/a\\b":              "",
		"https://evil/":      "",
		"/a\r\nSet-Cookie:x": "",
		"/%zz":               "",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzOpenState(f *testing.F) {
	key := []byte("0123456789abcdef0123456789abcdef")
	good, _ := sealState(key, loginState{State: "s", Nonce: "n", Verifier: "v", Expires: time.Unix(2e9, 0)})
	f.Add(good)
	f.Add("x.y")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		// Only what was sealed with the key opens: the one good value.
		if _, err := openState(key, s, time.Unix(1e9, 0)); err == nil && s != good {
			t.Fatalf("opened %q", s)
		}
	})
}

func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"/ui", "//x", "/\\x", "https://x", "/a?b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := localPath(s)
		if p == "" {
			return
		}
		u, err := url.Parse(p)
		if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
			t.Fatalf("localPath(%q) = %q leaves the server", s, p)
		}
		// As a browser resolves it against the server's URL.
		base, _ := url.Parse("https://customs.example/api/v1/auth/oidc/callback")
		if r := base.ResolveReference(u); r.Host != "customs.example" {
			t.Fatalf("localPath(%q) = %q resolves to host %q", s, p, r.Host)
		}
	})
}
