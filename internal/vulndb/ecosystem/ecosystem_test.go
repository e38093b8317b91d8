package ecosystem

import (
	"errors"
	"testing"

	"github.com/customs-dev/customs/internal/inventory"
)

// ordered lists versions that must sort strictly ascending, each from the
// ecosystem's own published ordering rules; equal lists pairs that must
// compare equal.
var orderingTests = []struct {
	eco     string
	rule    string
	ordered []string
	equal   [][2]string
}{
	{
		eco:  inventory.Debian,
		rule: "deb-version(7): epoch first, ~ sorts before everything (even the end), letters before non-letters, numbers numerically",
		ordered: []string{
			"1.0~~", "1.0~~a", "1.0~", "1.0~rc1", "1.0", "1.0a", "1.0+b1", "1.0.1", "1.2", "1.10",
			"1.10-1~bpo1", "1.10-1", "1.10-1+deb12u1", "1.10-1.1", "1.10-2", "1:0.9", "2:0.1",
		},
		equal: [][2]string{{"0:1.0", "1.0"}, {"1.0-0", "1.0"}, {"1.01", "1.1"}},
	},
	{
		eco:  inventory.Debian,
		rule: "real bookworm openssl versions: stable-security updates sort below the unstable upload they backport",
		ordered: []string{
			"3.0.9-1", "3.0.11-1~deb12u1", "3.0.11-1~deb12u2", "3.0.13-1~deb12u1", "3.0.14-1~deb12u2", "3.0.15-1~deb12u1", "3.0.15-1",
		},
	},
	{
		eco:     inventory.Ubuntu,
		rule:    "dpkg rules on Ubuntu revisions",
		ordered: []string{"2.31-0ubuntu9", "2.31-0ubuntu9.9", "2.31-0ubuntu9.10", "2.31-0ubuntu10", "1:1.0-1"},
		equal:   [][2]string{{"1.1.1f-1ubuntu2.20", "0:1.1.1f-1ubuntu2.20"}},
	},
	{
		eco: inventory.Alpine,
		// A bare "_cvs" (no number) compares equal to no suffix in
		// osv-scalibr v0.5.3 (its no-suffix weight is cvs's); apk-tools puts it
		// above. "_cvs1" shows the rule without that upstream bug.
		rule: "apk version.c: pre-release suffixes (_alpha < _beta < _pre < _rc) before the release, post suffixes (_cvs _svn _git _hg _p) after, then the letter, then -rN",
		ordered: []string{
			"1.2_alpha", "1.2_alpha2", "1.2_beta", "1.2_pre1", "1.2_rc1", "1.2", "1.2-r1", "1.2-r9", "1.2-r10",
			"1.2_cvs1", "1.2_svn", "1.2_git20200101", "1.2_hg", "1.2_p1", "1.2_p2", "1.2a", "1.2b", "1.2.1", "1.10",
		},
		equal: [][2]string{{"1.2-r0", "1.2"}},
	},
	{
		eco:     inventory.Alpine,
		rule:    "real musl versions of Alpine v3.9",
		ordered: []string{"1.1.19-r10", "1.1.20-r3", "1.1.20-r4", "1.1.20-r5", "1.1.20-r6", "1.1.24-r2"},
	},
	{
		eco:  inventory.RedHat,
		rule: "rpmvercmp: epoch first, ~ before everything, ^ after the version it extends but before anything longer, a numeric segment beats an alphabetic one",
		ordered: []string{
			"1.0~rc1", "1.0", "1.0^git1", "1.0^git2", "1.0a", "1.0.1", "1.1", "1.10",
			"1:0.5",
		},
		equal: [][2]string{{"0:1.0-1", "1.0-1"}},
	},
	{
		eco:     inventory.RedHat,
		rule:    "real RHEL 9 openssl releases",
		ordered: []string{"1:3.0.7-6.el9_2", "1:3.0.7-24.el9", "1:3.0.7-25.el9_3", "1:3.0.7-27.el9"},
	},
	{
		eco:     inventory.Rocky,
		rule:    "rpm ordering for Rocky Linux",
		ordered: []string{"2.34-60.el9", "2.34-60.el9_2.7", "2.34-83.el9.7"},
	},
	{
		eco:     inventory.SUSE,
		rule:    "rpm ordering for SUSE",
		ordered: []string{"1.1.1l-150400.7.28.1", "1.1.1l-150400.7.60.2", "3.0.8-150500.5.8.1"},
	},
	{
		eco:  inventory.NPM,
		rule: "semver.org §11: pre-releases sort below the release; identifiers numerically or in ASCII order, numeric below alphanumeric, more fields above fewer",
		ordered: []string{
			"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
			"1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0", "10.0.0",
		},
		equal: [][2]string{{"1.0.0+build.1", "1.0.0"}, {"1.0.0+a", "1.0.0+b"}},
	},
	{
		eco:     inventory.CratesIO,
		rule:    "semver ordering for crates",
		ordered: []string{"0.1.0-alpha.1", "0.1.0", "0.1.1", "0.10.0", "1.0.0-rc.1", "1.0.0"},
	},
	{
		eco:  inventory.Go,
		rule: "Go module versions: semver, v prefix optional (the Go database writes none), pseudo-versions below the next release, +incompatible is build metadata",
		ordered: []string{
			"0.0.0-20190101000000-abcdefabcdef", "v0.0.0-20210101000000-abcdefabcdef", "0.1.0", "v0.3.5", "0.3.7",
			"v1.16.0-0", "1.16.0-beta.1", "1.16.0-rc.1", "1.16.0",
		},
		equal: [][2]string{{"v2.0.0+incompatible", "2.0.0"}, {"v0.3.5", "0.3.5"}},
	},
	{
		eco:  inventory.PyPI,
		rule: "PEP 440 'Summary of permitted suffixes and relative ordering' (its example list), and epochs",
		ordered: []string{
			"1.dev0", "1.0.dev456", "1.0a1", "1.0a2.dev456", "1.0a12.dev456", "1.0a12", "1.0b1.dev456", "1.0b2",
			"1.0b2.post345.dev456", "1.0b2.post345", "1.0rc1.dev456", "1.0rc1", "1.0", "1.0+abc.5", "1.0+abc.7",
			"1.0+5", "1.0.post456.dev34", "1.0.post456", "1.0.15", "1.1.dev1", "2.0", "1!0.1",
		},
		equal: [][2]string{
			{"1.0", "1.0.0"}, {"1.0-1", "1.0.post1"}, {"1.0c1", "1.0rc1"}, {"1.0ALPHA1", "1.0a1"},
			{"1.0-rc-1", "1.0rc1"}, {"1.0.preview2", "1.0rc2"}, {"v1.0", "1.0"}, {"1.0a", "1.0a0"}, {"1.0-r2", "1.0.post2"},
		},
	},
	{
		eco:  inventory.Maven,
		rule: "Maven ComparableVersion: alpha < beta < milestone < rc = cr < snapshot < release (= ga = final = empty) < sp; trailing zeros dropped",
		ordered: []string{
			"1-alpha-1", "1-alpha-2", "1-beta-1", "1-milestone-1", "1-rc-1", "1-snapshot", "1", "1-sp-1",
			"1.0.1", "1.1", "1.1.1", "2.0.0-M1", "2.0.0-RC1", "2.0.0", "2.0.0.1",
		},
		equal: [][2]string{{"1", "1.0.0"}, {"1-ga", "1"}, {"1-final", "1.0"}, {"1-cr-1", "1-rc-1"}, {"1.0.0.RELEASE", "1.0.0"}},
	},
	{
		eco:  inventory.RubyGems,
		rule: "Gem::Version: a segment with a letter makes a prerelease, which sorts below the release; segments compare numerically",
		ordered: []string{
			"1.0.0.a", "1.0.0.a1", "1.0.0.b", "1.0.0.pre", "1.0.0.rc1", "1.0.0", "1.0.1", "1.9", "1.10",
		},
		equal: [][2]string{{"1.0", "1"}, {"1.0.0", "1"}},
	},
	{
		eco:     inventory.NuGet,
		rule:    "NuGet SemVer 2.0 with a fourth (revision) part; pre-release labels compare case-insensitively; metadata ignored",
		ordered: []string{"1.0.0-alpha", "1.0.0-alpha.2", "1.0.0-beta", "1.0.0", "1.0.0.1", "1.0.1", "1.2.0"},
		equal:   [][2]string{{"1.0", "1.0.0"}, {"1.0.0.0", "1.0.0"}, {"1.0.0+meta", "1.0.0"}, {"1.0.0-Beta", "1.0.0-beta"}},
	},
	{
		eco:     inventory.Packagist,
		rule:    "Composer: dev < alpha < beta < RC < stable < patch; a leading v is ignored",
		ordered: []string{"1.0.0-dev", "1.0.0-alpha1", "1.0.0-beta1", "1.0.0-beta2", "1.0.0-RC1", "1.0.0", "1.0.0-patch1", "1.0.1", "1.10.0"},
		equal:   [][2]string{{"v1.2.3", "1.2.3"}},
	},
}

func TestOrdering(t *testing.T) {
	for _, tc := range orderingTests {
		t.Run(tc.eco+"/"+tc.rule, func(t *testing.T) {
			r, err := For(tc.eco)
			if err != nil {
				t.Fatal(err)
			}
			parsed := make([]Version, len(tc.ordered))
			for i, s := range tc.ordered {
				if parsed[i], err = r.Parse(s); err != nil {
					t.Fatalf("Parse(%q): %v", s, err)
				}
			}
			// Every pair, not just neighbours: the order must be total.
			for i := range parsed {
				for j := range parsed {
					want := 0
					switch {
					case i < j:
						want = -1
					case i > j:
						want = 1
					}
					if got := parsed[i].Compare(parsed[j]); got != want {
						t.Errorf("Compare(%q, %q) = %d, want %d", tc.ordered[i], tc.ordered[j], got, want)
					}
				}
			}
			for _, p := range tc.equal {
				a, err := r.Parse(p[0])
				if err != nil {
					t.Fatalf("Parse(%q): %v", p[0], err)
				}
				b, err := r.Parse(p[1])
				if err != nil {
					t.Fatalf("Parse(%q): %v", p[1], err)
				}
				if c := a.Compare(b); c != 0 {
					t.Errorf("Compare(%q, %q) = %d, want 0", p[0], p[1], c)
				}
			}
		})
	}
}

// TestSyntax checks that strings which are not versions of an ecosystem
// (by its published grammar) are rejected with an error naming them.
func TestSyntax(t *testing.T) {
	tests := []struct {
		eco   string
		good  []string
		wrong []string
	}{
		{inventory.Debian,
			[]string{"1.0", "1:2.3-4", "3.0.11-1~deb12u2", "1.2.3+dfsg-1", "2.36-9+deb12u4", "1.0-1-2"},
			[]string{"", "abc", "1.0 beta", "a:1.0", "1.0-", "-1", "1.0_1"}},
		{inventory.Alpine,
			[]string{"1.1.20-r5", "1.2_rc1", "1.2a", "1.2_p1-r0", "1.2_git20200101~abc123-r3", "2.0"},
			// Typos of the real Alpine secdb (apk-tools' apk_version_validate rejects them too).
			[]string{"", "4.8.0.-r1", "4.10-1-r1", "6.6.2p1-r0", "1.2_foo", "1.2-1", "v1.2"}},
		{inventory.RedHat,
			[]string{"1:3.0.7-24.el9", "1.0^git1", "1.0~rc1-1", "2.34-83.el9.7"},
			[]string{"", "1.0 1", "1:2:3", "1.0-1-1", "1.0/1"}},
		{inventory.Go,
			[]string{"0.3.7", "v0.3.5", "1.16.0-0", "0.0.0-20210101000000-abcdefabcdef", "2.0.0+incompatible"},
			[]string{"", "0", "1.2", "01.2.3", "1.2.3-", "1.2.3-01", "go1.21.3"}},
		{inventory.NPM,
			[]string{"1.0.0", "1.0.0-beta.1"},
			[]string{"1.0", "^1.0.0", "1.0.0.0"}},
		{inventory.PyPI,
			[]string{"1.0", "1!2.0", "1.0.post1", "1.0.dev3", "0.1.2-1", "0.1.7a", "3.9.0c2", "3.8-rc", "1.8c1", "1.0+local.7"},
			// Two of these are in the real PyPA data (see match's tests).
			[]string{"", "2019-09-12", "0.2.0-n653", "1.0+", "latest"}},
		{inventory.RubyGems,
			[]string{"1.0.0", "1.0.0.rc1", "1.0.0-x"},
			[]string{"", "a1", "1..0"}},
		{inventory.NuGet,
			[]string{"1.0", "1.0.0.1", "1.0.0-beta+meta"},
			[]string{"", "1.0.0.0.0", "beta"}},
		{inventory.Maven,
			[]string{"1.0", "2.0.0.RELEASE", "1.0-SNAPSHOT"},
			[]string{"", "1.0 final"}},
	}
	for _, tc := range tests {
		t.Run(tc.eco, func(t *testing.T) {
			r, err := For(tc.eco)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.good {
				if _, err := r.Parse(s); err != nil {
					t.Errorf("Parse(%q): %v", s, err)
				}
			}
			for _, s := range tc.wrong {
				if v, err := r.Parse(s); err == nil {
					t.Errorf("Parse(%q) = %v, want an error", s, v)
				}
			}
		})
	}
}

func TestUnknownEcosystem(t *testing.T) {
	for _, name := range []string{"", "Hex", "Alpine:v3.9", "debian", "cargo"} {
		_, err := For(name)
		var ue *UnknownError
		if !errors.As(err, &ue) || ue.Ecosystem != name {
			t.Errorf("For(%q) error = %v, want *UnknownError naming it", name, err)
		}
		if Known(name) {
			t.Errorf("Known(%q) = true", name)
		}
	}
}

func TestNormalizeName(t *testing.T) {
	tests := []struct{ eco, in, want string }{
		{inventory.PyPI, "Django_REST.framework", "django-rest-framework"},
		{inventory.PyPI, "zope.interface", "zope-interface"},
		{inventory.NuGet, "Newtonsoft.Json", "newtonsoft.json"},
		{inventory.Packagist, "Symfony/HTTP-Kernel", "symfony/http-kernel"},
		{inventory.Go, "github.com/BurntSushi/toml", "github.com/BurntSushi/toml"},
		{inventory.Maven, "org.Apache:Foo", "org.Apache:Foo"},
	}
	for _, tc := range tests {
		r, err := For(tc.eco)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.NormalizeName(tc.in); got != tc.want {
			t.Errorf("%s NormalizeName(%q) = %q, want %q", tc.eco, tc.in, got, tc.want)
		}
	}
}
