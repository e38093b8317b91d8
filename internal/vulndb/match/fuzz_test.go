package match

import (
	"slices"
	"testing"

	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/vulndb/osv"
)

// FuzzBuildMatch parses a record, builds an index of it and matches one
// package against it: nothing may panic; a record Build reports no
// problem with is in the index; every finding is for that record, with a
// status and fixed versions consistent with each other; a package with a
// platform gets no finding the same package without one does not, and no
// fixed version it does not list.
func FuzzBuildMatch(f *testing.F) {
	f.Add([]byte(`{"id":"A-1","modified":"2020-06-08T00:00:00Z","upstream":["CVE-1"],"affected":[{"package":{"ecosystem":"Alpine:v3.9","name":"musl"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.1.20-r5"}]}]}]}`),
		"Alpine", "musl", "1.1.20-r4", "alpine", "3.9.6", "")
	f.Add([]byte(`{"id":"G-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Go","name":"stdlib"},"ranges":[{"type":"SEMVER","events":[{"introduced":"1.16.0-0"},{"fixed":"1.16.1"},{"introduced":"1.17.0-0"},{"last_affected":"1.17.2"},{"limit":"1.18.0"}]}]}]}`),
		"Go", "stdlib", "go1.16rc1", "", "", "linux/amd64")
	f.Add([]byte(`{"id":"G-2","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Go","name":"stdlib"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.20.1"}]}],"ecosystem_specific":{"imports":[{"path":"os","goos":["windows"]},{"path":"syscall","goarch":["arm64"]}]}},{"package":{"ecosystem":"Go","name":"stdlib"},"ranges":[{"type":"SEMVER","events":[{"introduced":"1.19.0"},{"fixed":"1.20.2"}]}]}]}`),
		"Go", "stdlib", "go1.20", "", "", "windows/amd64")
	f.Add([]byte(`{"id":"D-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}],"ecosystem_specific":{"urgency":"unimportant"}}]}`),
		"Debian", "openssl", "3.0.11-1~deb12u2", "debian", "12", "")
	f.Add([]byte(`{"id":"P-1","modified":"2024-01-01T00:00:00Z","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],"affected":[{"package":{"ecosystem":"PyPI","name":"Py_Pkg"},"versions":["1.0"],"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1.0a1"},{"fixed":"1.0.post1"}]}]}]}`),
		"PyPI", "py-pkg", "1.0", "", "", "/")
	f.Fuzz(func(t *testing.T, record []byte, eco, name, version, distroID, distroVersion, platform string) {
		v, err := osv.Parse("fuzz.json", record)
		if err != nil {
			return
		}
		ix, errs := Build([]*osv.Vulnerability{v}, nil)
		if len(errs) == 0 && !v.IsWithdrawn() {
			if _, ok := ix.Advisory(v.ID); !ok {
				t.Fatalf("%s built without error but is not in the index", v.ID)
			}
		}
		d := &inventory.Distro{ID: distroID, VersionID: distroVersion}
		p := inventory.Package{Ecosystem: eco, Name: name, Version: version, SourceName: name, Platform: platform}
		got := ix.Match(&inventory.Inventory{Distro: d, Packages: []inventory.Package{p, p}})
		if len(got) > 1 {
			t.Fatalf("%d findings for one record", len(got))
		}
		for _, f := range got {
			if f.AdvisoryID != v.ID {
				t.Fatalf("finding for %q, record is %q", f.AdvisoryID, v.ID)
			}
			switch f.Status {
			case StatusFixed:
				if len(f.Fixed) == 0 {
					t.Fatal("status fixed without fixed versions")
				}
			case StatusNoFix, StatusWontFix:
				if len(f.Fixed) != 0 {
					t.Fatalf("status %s with fixed versions %v", f.Status, f.Fixed)
				}
			default:
				t.Fatalf("status %q", f.Status)
			}
			if slices.Contains(f.Fixed, "") {
				t.Fatal("empty fixed version")
			}
		}
		if pf := ix.MatchPackage(d, p); len(pf) != len(got) {
			t.Fatalf("MatchPackage gives %d findings, Match %d", len(pf), len(got))
		}
		anyPlatform := p
		anyPlatform.Platform = ""
		all := ix.MatchPackage(d, anyPlatform)
		for _, f := range got {
			if len(all) != 1 {
				t.Fatalf("a finding on platform %q, %d without a platform", platform, len(all))
			}
			for _, fx := range f.Fixed {
				if !slices.Contains(all[0].Fixed, fx) {
					t.Fatalf("fixed %v on platform %q, %v without a platform", f.Fixed, platform, all[0].Fixed)
				}
			}
		}
	})
}
