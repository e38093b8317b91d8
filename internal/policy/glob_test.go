package policy

import (
	"strings"
	"testing"
)

func matchRef(t *testing.T, pattern, ref string) bool {
	t.Helper()
	np, err := compileNamePattern(pattern)
	if err != nil {
		t.Fatalf("pattern %q: %v", pattern, err)
	}
	img, err := ParseImage(ref)
	if err != nil {
		t.Fatalf("reference %q: %v", ref, err)
	}
	s := newSubject(&img)
	return np.match(&s)
}

// TestGlobMatches covers what each pattern form matches, and the bypass
// attempts a host-anchored glob must refuse.
func TestGlobMatches(t *testing.T) {
	for _, tc := range []struct {
		name, pattern, ref string
		want               bool
	}{
		// Host only: every repository on the host, any port.
		{"host", "registry.corp.example", "registry.corp.example/a/b:1", true},
		{"host with port in ref", "registry.corp.example", "registry.corp.example:5000/a", true},
		{"host other host", "registry.corp.example", "registry.corp.example.evil.example/a", false},
		{"host as path", "registry.corp.example", "evil.example/registry.corp.example/a", false},
		{"host prefix", "corp.example", "evilcorp.example/a", false},
		{"host subdomain not implied", "corp.example", "a.corp.example/x", false},

		// Wildcard hosts.
		{"wildcard host", "*.corp.example", "registry.corp.example/x", true},
		{"wildcard deeper host", "*.corp.example", "a.b.corp.example/x", true},
		{"wildcard bare domain", "*.corp.example", "corp.example/x", false},
		{"wildcard in path bypass", "*.corp.example", "evil.example/x.corp.example", false},
		{"wildcard suffix bypass", "*.corp.example", "x.corp.example.evil.example/a", false},
		{"wildcard lookalike", "*.corp.example", "evilcorp.example/a", false},
		{"wildcard port", "*.corp.example", "r.corp.example:443/a", true},
		{"everything", "*", "docker.io/library/nginx", true},
		{"case-insensitive host", "*.corp.example", "R.CORP.EXAMPLE/a", true},

		// Ports.
		{"explicit port", "registry.corp.example:5000", "registry.corp.example:5000/a", true},
		{"explicit port mismatch", "registry.corp.example:5000", "registry.corp.example:5001/a", false},
		{"explicit port vs none", "registry.corp.example:5000", "registry.corp.example/a", false},
		{"any port", "registry.corp.example:*", "registry.corp.example:1/a", true},
		{"localhost", "localhost:5000", "localhost:5000/a", true},
		{"ipv4", "10.0.0.1:5000/**", "10.0.0.1:5000/a/b", true},
		{"ipv6", "[::1]:5000", "[::1]:5000/a", true},
		{"ipv6 other port", "[::1]:5000", "[::1]:5001/a", false},

		// Paths.
		{"exact repo", "gcr.io/kuar-demo/kuard-amd64", "gcr.io/kuar-demo/kuard-amd64:blue", true},
		{"exact repo sibling", "gcr.io/kuar-demo/kuard-amd64", "gcr.io/kuar-demo/kuard-amd64-evil", false},
		{"exact repo child", "gcr.io/kuar-demo/kuard-amd64", "gcr.io/kuar-demo/kuard-amd64/x", false},
		{"one segment", "gcr.io/kuar-demo/*", "gcr.io/kuar-demo/kuard", true},
		{"one segment not two", "gcr.io/kuar-demo/*", "gcr.io/kuar-demo/a/b", false},
		{"double star", "gcr.io/kuar-demo/**", "gcr.io/kuar-demo/a/b/c", true},
		{"double star itself", "gcr.io/kuar-demo/**", "gcr.io/kuar-demo", true},
		{"double star sibling", "gcr.io/kuar-demo/**", "gcr.io/kuar-demo-evil/a", false},
		{"double star middle", "gcr.io/**/kuard", "gcr.io/a/b/kuard", true},
		{"double star middle none", "gcr.io/**/kuard", "gcr.io/kuard", true},
		{"double star middle wrong end", "gcr.io/**/kuard", "gcr.io/a/kuard/x", false},
		{"star in segment", "gcr.io/team-*/app", "gcr.io/team-a/app", true},
		{"star in segment no slash", "gcr.io/team-*/app", "gcr.io/team-a/b/app", false},
		{"path on other host", "gcr.io/kuar-demo/**", "evil.example/gcr.io/kuar-demo/a", false},

		// Docker Hub normalisation.
		{"hub official", "docker.io/nginx", "nginx", true},
		{"hub official explicit", "docker.io/library/nginx", "nginx:1.25", true},
		{"hub index alias", "index.docker.io/library/nginx", "docker.io/library/nginx", true},
		{"hub ref alias", "docker.io/library/nginx", "index.docker.io/library/nginx", true},
		{"hub registry-1 alias", "docker.io/library/nginx", "registry-1.docker.io/library/nginx", true},
		{"hub user repo", "docker.io/library/*", "bitnami/nginx", false},
		{"hub star means library", "docker.io/*", "nginx", true},
		{"hub star not user repo", "docker.io/*", "bitnami/nginx", false},
		{"hub all", "docker.io", "bitnami/nginx", true},
		{"hub not other host", "docker.io/**", "quay.io/library/nginx", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := matchRef(t, tc.pattern, tc.ref); got != tc.want {
				t.Errorf("%q matches %q: %v, want %v", tc.pattern, tc.ref, got, tc.want)
			}
		})
	}
}

func TestGlobPatternErrors(t *testing.T) {
	for _, tc := range []struct{ pattern, want string }{
		{"", "empty pattern"},
		{"nginx", "must start with a registry host (for Docker Hub write docker.io/nginx)"},
		{"library/nginx", "must start with a registry host (for Docker Hub write docker.io/nginx)"},
		{"gcr.io/", "ends with '/'"},
		{"gcr.io//a", "empty path segment"},
		{"gcr.io/a**", "'**' must be a whole segment"},
		{"gcr.io/../a", `segment ".." is not a repository name component`},
		{"gcr.io/A", "repository names are lower case"},
		{"gcr.io/a b", "holds ' '"},
		{" gcr.io/a", "has leading or trailing spaces"},
		{"gcr.io/a?b", `holds '?'`},
		{"**.corp.example", "'**' is for paths"},
		{"user@registry.example/a", "cannot be in a host"},
		{"registry.example:99999", "not a number from 1 to 65535"},
		{"registry.example:http", "not a number from 1 to 65535"},
		{"registry.example:", "empty port"},
		{"[::1", "unterminated '['"},
		{"[zz]:5000", "not an IPv6 address"},
		{"reg_istry.example", "not allowed in a host name"},
	} {
		t.Run(tc.pattern, func(t *testing.T) {
			_, err := compileNamePattern(tc.pattern)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("compileNamePattern(%q) = %v, want an error containing %q", tc.pattern, err, tc.want)
			}
		})
	}
}

func TestGlobSpecificity(t *testing.T) {
	order := []string{"*", "*.corp.example", "registry.corp.example", "registry.corp.example/kuard/**", "registry.corp.example/kuard/kuard-*", "registry.corp.example/kuard/kuard-amd64"}
	prev := -1
	for _, p := range order {
		np, err := compileNamePattern(p)
		if err != nil {
			t.Fatal(err)
		}
		if np.specificity <= prev {
			t.Errorf("%q has specificity %d, not above the previous pattern's %d", p, np.specificity, prev)
		}
		prev = np.specificity
	}
}

func TestWildMatch(t *testing.T) {
	for _, tc := range []struct {
		pat, s string
		want   bool
	}{
		{"latest", "latest", true},
		{"latest", "latest2", false},
		{"*-dev", "1.0-dev", true},
		{"*-dev", "1.0-dev-x", false},
		{"*", "", true},
		{"a*b*c", "abbbc", true},
		{"a*b*c", "acb", false},
		{"***", "x", true},
	} {
		if got := wildMatch(tc.pat, tc.s); got != tc.want {
			t.Errorf("wildMatch(%q, %q) = %v, want %v", tc.pat, tc.s, got, tc.want)
		}
	}
}

func TestParseImage(t *testing.T) {
	for _, tc := range []struct {
		ref  string
		want Image
	}{
		{"nginx", Image{Registry: "docker.io", Repository: "library/nginx"}},
		{"nginx:1.25", Image{Registry: "docker.io", Repository: "library/nginx", Tag: "1.25"}},
		{"bitnami/nginx", Image{Registry: "docker.io", Repository: "bitnami/nginx"}},
		{"index.docker.io/nginx", Image{Registry: "docker.io", Repository: "library/nginx"}},
		{"Docker.IO/nginx", Image{Registry: "docker.io", Repository: "library/nginx"}},
		{"registry-1.docker.io/library/nginx", Image{Registry: "docker.io", Repository: "library/nginx"}},
		{"gcr.io/kuar-demo/kuard-amd64:blue", Image{Registry: "gcr.io", Repository: "kuar-demo/kuard-amd64", Tag: "blue"}},
		{"Registry.Corp.Example:5000/a/b", Image{Registry: "registry.corp.example:5000", Repository: "a/b"}},
		{"localhost/a", Image{Registry: "localhost", Repository: "a"}},
		{"[::1]:5000/a:t", Image{Registry: "[::1]:5000", Repository: "a", Tag: "t"}},
		{"nginx:1@sha256:" + strings.Repeat("a", 64), Image{Registry: "docker.io", Repository: "library/nginx", Tag: "1", Digest: "sha256:" + strings.Repeat("a", 64)}},
	} {
		got, err := ParseImage(tc.ref)
		if err != nil {
			t.Errorf("ParseImage(%q): %v", tc.ref, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseImage(%q) = %+v, want %+v", tc.ref, got, tc.want)
		}
	}
	for _, bad := range []string{"", "UPPER/case", "a/../b", "a//b", "nginx:", "nginx@sha256:short", "evil.example/x y", strings.Repeat("a", 64)} {
		if img, err := ParseImage(bad); err == nil {
			t.Errorf("ParseImage(%q) = %+v, want an error", bad, img)
		}
	}
	img, _ := ParseImage("nginx")
	if img.EffectiveTag() != "latest" || img.String() != "docker.io/library/nginx" {
		t.Errorf("nginx: effective tag %q, string %q", img.EffectiveTag(), img.String())
	}
}
