package ecosystem

import (
	"testing"

	"github.com/customs-dev/customs/internal/inventory"
)

var fuzzEcosystems = []string{
	inventory.Debian, inventory.Alpine, inventory.RedHat, inventory.Go, inventory.NPM, inventory.PyPI,
	inventory.Maven, inventory.RubyGems, inventory.NuGet, inventory.Packagist,
}

// FuzzCompare parses two strings as versions of one ecosystem: parsing
// must not panic, and when both parse, Compare must be reflexive and
// antisymmetric.
func FuzzCompare(f *testing.F) {
	seeds := [][2]string{
		{"1:1.0-1", "1.0~rc1"}, {"1.1.20-r4", "1.2_rc1"}, {"1:3.0.7-24.el9", "1.0^git1"},
		{"1.16.0-0", "v0.3.5"}, {"1.0.0-alpha.1", "1.0.0+b"}, {"1!1.0.post1.dev2", "1.0a1"},
		{"1-alpha-1", "1.0.0.RELEASE"}, {"1.0.0.rc1", "1.0"}, {"1.0.0.1-Beta", "1.0"}, {"v1.0.0-RC1", "1.0.0-patch1"},
		{"1.0-sp-1", "1-ga"}, {"1.0--", "1..0"},
	}
	for i, s := range seeds {
		f.Add(uint8(i), s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, which uint8, a, b string) {
		r, err := For(fuzzEcosystems[int(which)%len(fuzzEcosystems)])
		if err != nil {
			t.Fatal(err)
		}
		va, errA := r.Parse(a)
		vb, errB := r.Parse(b)
		if errA != nil || errB != nil {
			return
		}
		if c := va.Compare(va); c != 0 {
			t.Fatalf("%s: Compare(%q, itself) = %d", r.Name(), a, c)
		}
		if ab, ba := va.Compare(vb), vb.Compare(va); ab != -ba {
			t.Fatalf("%s: Compare(%q, %q) = %d but Compare(%q, %q) = %d", r.Name(), a, b, ab, b, a, ba)
		}
	})
}

// FuzzGoVersion checks that any string gives a Go version or an error, and
// that a result is itself a valid Go database version.
func FuzzGoVersion(f *testing.F) {
	for _, s := range []string{"go1.21.3", "go1.21rc1", "go1", "1.20", "devel +abc", "v1.2.3-rc.1", "go1.20.1 X:boringcrypto"} {
		f.Add(s)
	}
	r, err := For(inventory.Go)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := GoVersion(s)
		if err != nil {
			return
		}
		if _, err := r.Parse(v); err != nil {
			t.Fatalf("GoVersion(%q) = %q, which does not parse: %v", s, v, err)
		}
	})
}

// FuzzRelease feeds arbitrary ecosystem strings and os-release values to
// the release functions, which must not panic and must agree: a release
// key is never empty.
func FuzzRelease(f *testing.F) {
	f.Add("Alpine:v3.9", "alpine", "3.9.6")
	f.Add("Ubuntu:Pro:18.04:LTS", "ubuntu", "18.04")
	f.Add("SUSE:Linux Enterprise Server 15 SP5", "sles", "15.5")
	f.Add("Red Hat:enterprise_linux:9::appstream", "rhel", "9.3")
	f.Fuzz(func(t *testing.T, eco, id, version string) {
		e := Split(eco)
		if key, ok := ReleaseKey(e); ok && key == "" {
			t.Fatalf("ReleaseKey(%q) = empty key", eco)
		}
		d := &inventory.Distro{ID: id, VersionID: version}
		if _, key, ok := DistroRelease(d); ok && key == "" {
			t.Fatalf("DistroRelease(%q, %q) = empty key", id, version)
		}
		_ = Applies(eco, e.Base, d)
	})
}
