package match

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/vulndb/ecosystem"
	"github.com/customs-dev/customs/internal/vulndb/osv"
	"github.com/customs-dev/customs/internal/vulndb/severity"
)

// parseAll parses hand-written OSV records (JSON) through osv.Parse.
func parseAll(t *testing.T, docs ...string) []*osv.Vulnerability {
	t.Helper()
	var out []*osv.Vulnerability
	for i, d := range docs {
		v, err := osv.Parse("record.json", []byte(d))
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		out = append(out, v)
	}
	return out
}

func build(t *testing.T, lk Lookup, docs ...string) *Index {
	t.Helper()
	ix, errs := Build(parseAll(t, docs...), lk)
	for _, err := range errs {
		t.Errorf("Build: %v", err)
	}
	return ix
}

// Debian records in the form osv.dev converts the Debian security tracker
// to (DEBIAN-CVE-…, one affected entry per release, keyed by source
// package, the tracker's urgency in ecosystem_specific). The versions are
// the real bookworm / bullseye openssl and busybox versions.
const (
	debianOpenSSL = `{
	  "id": "DEBIAN-CVE-2023-5678", "modified": "2024-09-01T00:00:00Z", "upstream": ["CVE-2023-5678"],
	  "details": "Generating excessively long X9.42 DH keys or checking excessively long X9.42 DH keys or parameters may be very slow.",
	  "affected": [
	    {"package": {"ecosystem": "Debian:11", "name": "openssl"},
	     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.1w-0+deb11u2"}]}],
	     "ecosystem_specific": {"urgency": "not yet assigned"}},
	    {"package": {"ecosystem": "Debian:12", "name": "openssl"},
	     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.13-1~deb12u1"}]}],
	     "ecosystem_specific": {"urgency": "not yet assigned"}}
	  ],
	  "references": [{"type": "ADVISORY", "url": "https://security-tracker.debian.org/tracker/CVE-2023-5678"}]
	}`
	debianBusybox = `{
	  "id": "DEBIAN-CVE-2018-1000500", "modified": "2024-09-01T00:00:00Z", "upstream": ["CVE-2018-1000500"],
	  "details": "Busybox contains a Missing SSL certificate validation vulnerability in The \"busybox wget\" applet.",
	  "affected": [
	    {"package": {"ecosystem": "Debian:11", "name": "busybox"},
	     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}], "ecosystem_specific": {"urgency": "low"}},
	    {"package": {"ecosystem": "Debian:12", "name": "busybox"},
	     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}], "ecosystem_specific": {"urgency": "unimportant"}}
	  ]
	}`
	ubuntuOpenSSL = `{
	  "id": "UBUNTU-CVE-2023-5678", "modified": "2024-09-01T00:00:00Z", "upstream": ["CVE-2023-5678"],
	  "affected": [
	    {"package": {"ecosystem": "Ubuntu:Pro:18.04:LTS", "name": "openssl"},
	     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.1-1ubuntu2.1~18.04.23+esm2"}]}]},
	    {"package": {"ecosystem": "Ubuntu:Pro:FIPS-updates:18.04:LTS", "name": "openssl"},
	     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.1-1ubuntu2.fips.2.1~18.04.23.3"}]}]},
	    {"package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "openssl"},
	     "severity": [{"type": "Ubuntu", "score": "low"}],
	     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.2-0ubuntu1.13"}]}]}
	  ]
	}`
)

func debian(release string, pkgs ...inventory.Package) *inventory.Inventory {
	return &inventory.Inventory{Distro: &inventory.Distro{ID: "debian", VersionID: release}, Packages: pkgs}
}

func TestDebianSourcePackages(t *testing.T) {
	ix := build(t, nil, debianOpenSSL, debianBusybox)
	libssl3 := func(bin, src string) inventory.Package {
		return inventory.Package{Ecosystem: inventory.Debian, Name: "libssl3", Version: bin, SourceName: "openssl", SourceVersion: src}
	}

	got := ix.Match(debian("12", libssl3("3.0.11-1~deb12u2", "3.0.11-1~deb12u2")))
	checkFindings(t, "libssl3 3.0.11-1~deb12u2", got, want{"DEBIAN-CVE-2023-5678", []string{"3.0.13-1~deb12u1"}, StatusFixed})
	if len(got) == 1 {
		f := got[0]
		if f.Package.Name != "libssl3" || !slices.Equal(f.Aliases, []string{"CVE-2023-5678"}) ||
			!strings.HasPrefix(f.Summary, "Generating excessively long") || len(f.References) != 1 {
			t.Errorf("finding = %+v", f)
		}
	}
	// A binNMU: the binary version differs, the source version decides.
	checkFindings(t, "libssl3 binNMU", ix.Match(debian("12", libssl3("3.0.11-1~deb12u2+b1", "3.0.11-1~deb12u2"))),
		want{"DEBIAN-CVE-2023-5678", []string{"3.0.13-1~deb12u1"}, StatusFixed})
	// SourceVersion empty means the binary's version.
	checkFindings(t, "libssl3 source version unset", ix.Match(debian("12", libssl3("3.0.11-1~deb12u2", ""))),
		want{"DEBIAN-CVE-2023-5678", []string{"3.0.13-1~deb12u1"}, StatusFixed})
	checkFindings(t, "libssl3 3.0.13-1~deb12u1", ix.Match(debian("12", libssl3("3.0.13-1~deb12u1", "3.0.13-1~deb12u1"))))
	checkFindings(t, "libssl3 3.0.15-1~deb12u1", ix.Match(debian("12", libssl3("3.0.15-1~deb12u1", "3.0.15-1~deb12u1"))))
	// Without its source name, libssl3 is not a package any advisory names.
	checkFindings(t, "libssl3 without source", ix.Match(debian("12", inventory.Package{Ecosystem: inventory.Debian, Name: "libssl3", Version: "3.0.11-1~deb12u2"})))
	// Bullseye gets the Debian:11 entry only.
	libssl11 := inventory.Package{Ecosystem: inventory.Debian, Name: "libssl1.1", Version: "1.1.1w-0+deb11u1", SourceName: "openssl"}
	checkFindings(t, "libssl1.1 on 11", ix.Match(debian("11", libssl11)), want{"DEBIAN-CVE-2023-5678", []string{"1.1.1w-0+deb11u2"}, StatusFixed})
	// A trixie image gets neither.
	checkFindings(t, "libssl3 on 13", ix.Match(debian("13", libssl3("3.0.11-1~deb12u2", ""))))

	// busybox: no fix in either release; the tracker calls the bookworm
	// issue unimportant (no security update will come), the bullseye one low.
	bb := inventory.Package{Ecosystem: inventory.Debian, Name: "busybox", Version: "1:1.35.0-4+b3", SourceName: "busybox", SourceVersion: "1:1.35.0-4"}
	checkFindings(t, "busybox on 12", ix.Match(debian("12", bb)), want{"DEBIAN-CVE-2018-1000500", nil, StatusWontFix})
	checkFindings(t, "busybox on 11", ix.Match(debian("11", bb)), want{"DEBIAN-CVE-2018-1000500", nil, StatusNoFix})
}

func TestUbuntuReleaseVariants(t *testing.T) {
	ix := build(t, nil, ubuntuOpenSSL)
	ubuntu := func(release, version string) *inventory.Inventory {
		return &inventory.Inventory{
			Distro:   &inventory.Distro{ID: "ubuntu", VersionID: release},
			Packages: []inventory.Package{{Ecosystem: inventory.Ubuntu, Name: "libssl1.1", Version: version, SourceName: "openssl"}},
		}
	}
	// The Pro entry applies to 18.04; the FIPS one does not.
	checkFindings(t, "18.04", ix.Match(ubuntu("18.04", "1.1.1-1ubuntu2.1~18.04.23")),
		want{"UBUNTU-CVE-2023-5678", []string{"1.1.1-1ubuntu2.1~18.04.23+esm2"}, StatusFixed})
	got := ix.Match(ubuntu("22.04", "3.0.2-0ubuntu1.12"))
	checkFindings(t, "22.04", got, want{"UBUNTU-CVE-2023-5678", []string{"3.0.2-0ubuntu1.13"}, StatusFixed})
	if len(got) == 1 && (got[0].Severity.Level != severity.Low || got[0].Severity.Source != severity.SourceDatabaseSpecific) {
		t.Errorf("Ubuntu priority not used: %+v", got[0].Severity)
	}
	checkFindings(t, "20.04", ix.Match(ubuntu("20.04", "1.1.1f-1ubuntu2.20")))
}

// Range semantics on hand-written npm and Go records.
const (
	npmRanges = `{
	  "id": "GHSA-test-limit", "modified": "2024-01-01T00:00:00Z", "summary": "ranges with limit and last_affected",
	  "affected": [{"package": {"ecosystem": "npm", "name": "left-pad"}, "ranges": [
	    {"type": "SEMVER", "events": [{"introduced": "1.0.0"}, {"limit": "2.0.0"}]},
	    {"type": "SEMVER", "events": [{"introduced": "3.0.0"}, {"fixed": "3.1.0"}]},
	    {"type": "SEMVER", "events": [{"introduced": "4.0.0"}, {"last_affected": "4.2.0"}]},
	    {"type": "SEMVER", "events": [{"fixed": "5.0.1"}, {"introduced": "5.0.0"}, {"limit": "*"}]}
	  ]}]
	}`
	gitAndVersions = `{
	  "id": "OSV-test-git", "modified": "2024-01-01T00:00:00Z",
	  "affected": [{"package": {"ecosystem": "PyPI", "name": "somepkg"},
	    "ranges": [{"type": "GIT", "repo": "https://example.org/somepkg", "events": [{"introduced": "0"}, {"fixed": "abc123"}]}],
	    "versions": ["1.0.0", "1.0.1"]}]
	}`
	goNoRanges = `{
	  "id": "GO-test-all", "modified": "2024-01-01T00:00:00Z",
	  "affected": [{"package": {"ecosystem": "Go", "name": "example.com/all"}}]
	}`
)

func TestRangeSemantics(t *testing.T) {
	ix := build(t, nil, npmRanges, gitAndVersions, goNoRanges)
	npm := func(v string) inventory.Package {
		return inventory.Package{Ecosystem: inventory.NPM, Name: "left-pad", Version: v}
	}
	tests := []struct {
		version string
		fixed   []string
		status  Status
		hit     bool
	}{
		{"0.9.0", nil, "", false},
		{"1.0.0", []string{"3.1.0", "5.0.1"}, StatusFixed, true},
		{"1.9.9", []string{"3.1.0", "5.0.1"}, StatusFixed, true},
		{"2.0.0", nil, "", false}, // limit: not below it
		{"2.5.0", nil, "", false},
		{"3.0.0", []string{"3.1.0", "5.0.1"}, StatusFixed, true},
		{"3.1.0", nil, "", false},
		{"4.2.0", []string{"5.0.1"}, StatusFixed, true}, // last_affected includes itself
		{"4.2.1", nil, "", false},
		{"5.0.0", []string{"5.0.1"}, StatusFixed, true}, // events out of order are sorted
		{"5.0.1", nil, "", false},
	}
	for _, tc := range tests {
		got := ix.MatchPackage(nil, npm(tc.version))
		if !tc.hit {
			checkFindings(t, "left-pad "+tc.version, got)
			continue
		}
		checkFindings(t, "left-pad "+tc.version, got, want{"GHSA-test-limit", tc.fixed, tc.status})
	}

	py := func(v string) inventory.Package {
		return inventory.Package{Ecosystem: inventory.PyPI, Name: "SomePkg", Version: v}
	}
	checkFindings(t, "somepkg 1.0.1 (versions list)", ix.MatchPackage(nil, py("1.0.1")), want{"OSV-test-git", nil, StatusNoFix})
	checkFindings(t, "somepkg 1.0.2 (GIT ranges not evaluated)", ix.MatchPackage(nil, py("1.0.2")))
	checkFindings(t, "somepkg 1.0 (exact strings)", ix.MatchPackage(nil, py("1.0")))

	all := inventory.Package{Ecosystem: inventory.Go, Name: "example.com/all", Version: "v9.9.9"}
	checkFindings(t, "Go entry without ranges", ix.MatchPackage(nil, all), want{"GO-test-all", nil, StatusNoFix})

	// Unknown ecosystems and unknown packages find nothing.
	checkFindings(t, "Hex package", ix.MatchPackage(nil, inventory.Package{Ecosystem: "Hex", Name: "left-pad", Version: "1.0.0"}))
	checkFindings(t, "other npm package", ix.MatchPackage(nil, inventory.Package{Ecosystem: inventory.NPM, Name: "right-pad", Version: "1.0.0"}))
}

func TestBuildErrors(t *testing.T) {
	docs := []string{
		// Validate fails: a range without an introduced event.
		`{"id": "BAD-range", "modified": "2024-01-01T00:00:00Z", "affected": [{"package": {"ecosystem": "npm", "name": "a"},
		  "ranges": [{"type": "SEMVER", "events": [{"fixed": "1.0.0"}]}]}]}`,
		// A version that is not one of its ecosystem.
		`{"id": "BAD-version", "modified": "2024-01-01T00:00:00Z", "affected": [{"package": {"ecosystem": "Go", "name": "example.com/a"},
		  "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "v1.2"}]}]}]}`,
		// One entry of an unknown ecosystem, one good entry.
		`{"id": "MIXED-eco", "modified": "2024-01-01T00:00:00Z", "affected": [
		  {"package": {"ecosystem": "Hex", "name": "plug"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]},
		  {"package": {"ecosystem": "npm", "name": "a"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "2.0.0"}]}]}]}`,
		// Withdrawn: left out without error.
		`{"id": "GONE-1", "modified": "2024-01-01T00:00:00Z", "withdrawn": "2024-02-01T00:00:00Z",
		  "affected": [{"package": {"ecosystem": "npm", "name": "a"}}]}`,
		`{"id": "GOOD-1", "modified": "2024-01-01T00:00:00Z", "affected": [{"package": {"ecosystem": "npm", "name": "a"},
		  "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "3.0.0"}]}]}]}`,
	}
	ix, errs := Build(parseAll(t, docs...), nil)
	if len(errs) != 3 {
		t.Fatalf("errors = %v, want 3", errs)
	}
	checks := []struct {
		id, eco, field, text string
		dropped              bool
	}{
		{"BAD-range", "", "", "BAD-range: affected[0].ranges[0] has no introduced event (record left out)", true},
		{"BAD-version", "Go", "affected[0].ranges[0].events[1].fixed", `BAD-version (Go): affected[0].ranges[0].events[1].fixed: Go: "v1.2" is not a valid Go version (record left out)`, true},
		{"MIXED-eco", "Hex", "affected[0].package.ecosystem", `MIXED-eco (Hex): affected[0].package.ecosystem: unknown ecosystem "Hex" (entry ignored)`, false},
	}
	for i, c := range checks {
		var re *RecordError
		if !errors.As(errs[i], &re) {
			t.Fatalf("error %d %v is not a *RecordError", i, errs[i])
		}
		if re.ID != c.id || re.Ecosystem != c.eco || re.Field != c.field || re.Dropped != c.dropped || re.Error() != c.text {
			t.Errorf("error %d = %+v %q, want %+v", i, re, re.Error(), c)
		}
	}
	var ue *ecosystem.UnknownError
	if !errors.As(errs[2], &ue) {
		t.Errorf("unknown ecosystem error does not unwrap to *ecosystem.UnknownError")
	}
	if ix.Len() != 2 {
		t.Errorf("Len() = %d, want 2 (MIXED-eco, GOOD-1)", ix.Len())
	}
	for _, id := range []string{"BAD-range", "BAD-version", "GONE-1"} {
		if _, ok := ix.Advisory(id); ok {
			t.Errorf("%s is in the index", id)
		}
	}
	checkFindings(t, "a 1.0.0", ix.MatchPackage(nil, inventory.Package{Ecosystem: inventory.NPM, Name: "a", Version: "1.0.0"}),
		want{"GOOD-1", []string{"3.0.0"}, StatusFixed}, want{"MIXED-eco", []string{"2.0.0"}, StatusFixed})
	if got := ix.Keys("MIXED-eco"); !slices.Equal(got, []PackageKey{{inventory.NPM, "a"}}) {
		t.Errorf("Keys(MIXED-eco) = %v", got)
	}
}

func TestMergeSameID(t *testing.T) {
	older := `{"id": "ALPINE-CVE-2099-1", "modified": "2020-01-01T00:00:00Z", "upstream": ["CVE-2099-1"], "aliases": ["X-1"],
	  "affected": [{"package": {"ecosystem": "Alpine:v3.9", "name": "musl"},
	    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.20-r5"}]}]}]}`
	newer := `{"id": "ALPINE-CVE-2099-1", "modified": "2021-01-01T00:00:00Z", "upstream": ["CVE-2099-1"], "aliases": ["X-2"],
	  "affected": [{"package": {"ecosystem": "Alpine:v3.9", "name": "musl"},
	    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.20-r6"}]}]}]}`
	v310 := `{"id": "ALPINE-CVE-2099-1", "modified": "2020-01-01T00:00:00Z", "upstream": ["CVE-2099-1"],
	  "affected": [{"package": {"ecosystem": "Alpine:v3.10", "name": "musl"},
	    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.22-r3"}]}]}]}`
	bad := `{"id": "ALPINE-CVE-2099-1", "modified": "2022-01-01T00:00:00Z",
	  "affected": [{"package": {"ecosystem": "Alpine:v3.11", "name": "musl"},
	    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.23.-r2"}]}]}]}`
	for _, order := range [][]string{{older, newer, v310, bad}, {bad, v310, newer, older}} {
		ix, errs := Build(parseAll(t, order...), nil)
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), "ALPINE-CVE-2099-1 (Alpine:v3.11)") {
			t.Errorf("errors = %v, want the v3.11 copy's", errs)
		}
		musl := inventory.Package{Ecosystem: inventory.Alpine, Name: "musl", Version: "1.1.20-r5"}
		got := ix.Match(alpine("3.9.6", musl))
		checkFindings(t, "3.9: the newer copy wins", got, want{"ALPINE-CVE-2099-1", []string{"1.1.20-r6"}, StatusFixed})
		if len(got) == 1 && !slices.Equal(got[0].Aliases, []string{"X-2", "X-1", "CVE-2099-1"}) {
			t.Errorf("aliases = %v, want those of every copy", got[0].Aliases)
		}
		checkFindings(t, "3.10: its own copy", ix.Match(alpine("3.10.5", musl)), want{"ALPINE-CVE-2099-1", []string{"1.1.22-r3"}, StatusFixed})
		checkFindings(t, "3.11: the bad copy is left out", ix.Match(alpine("3.11.6", musl)))
		if ix.Len() != 1 {
			t.Errorf("Len() = %d, want 1", ix.Len())
		}
	}
}

// fakeLookup answers from maps keyed by id and records what it was asked.
type fakeLookup struct {
	overrides map[string]severity.Rating
	feed      map[string]severity.Rating
	asked     [][]string
}

func (f *fakeLookup) Override(ids []string) (severity.Rating, bool) {
	f.asked = append(f.asked, slices.Clone(ids))
	for _, id := range ids {
		if r, ok := f.overrides[id]; ok {
			return r, true
		}
	}
	return severity.Rating{}, false
}

func (f *fakeLookup) Feed(ids []string) (severity.Rating, bool) {
	for _, id := range ids {
		if r, ok := f.feed[id]; ok {
			return r, true
		}
	}
	return severity.Rating{}, false
}

// TestSeverityThroughLookup rates advisories from a real-shaped NVD feed
// through their upstream CVE, and from an operator override by alias.
func TestSeverityThroughLookup(t *testing.T) {
	data, err := os.ReadFile("../severity/testdata/nvd-2.0-sample.json")
	if err != nil {
		t.Fatal(err)
	}
	ratings, err := severity.ParseNVD("nvd-2.0-sample.json", data)
	if err != nil {
		t.Fatal(err)
	}
	lk := &fakeLookup{feed: map[string]severity.Rating{}, overrides: map[string]severity.Rating{
		"GHSA-test-override": {Level: severity.Low, Detail: "accepted: not reachable"},
	}}
	for _, r := range ratings {
		lk.feed[r.ID] = r.Rating
	}
	musl := `{"id": "ALPINE-CVE-2019-14697", "modified": "2020-06-08T00:00:00Z", "upstream": ["CVE-2019-14697"],
	  "affected": [{"package": {"ecosystem": "Alpine:v3.9", "name": "musl"},
	    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.20-r5"}]}]}]}`
	xz := `{"id": "OSV-test-xz", "modified": "2024-03-29T00:00:00Z", "aliases": ["CVE-2024-3094", "GHSA-test-override"],
	  "affected": [{"package": {"ecosystem": "Alpine:v3.9", "name": "xz"},
	    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "5.6.0-r0"}, {"fixed": "5.6.1-r2"}]}]}]}`
	unrated := `{"id": "OSV-test-unrated", "modified": "2024-03-29T00:00:00Z", "aliases": ["CVE-2000-0001"],
	  "affected": [{"package": {"ecosystem": "Alpine:v3.9", "name": "xz"},
	    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}`
	ix := build(t, lk, musl, xz, unrated)

	got := ix.Match(alpine("3.9.6",
		inventory.Package{Ecosystem: inventory.Alpine, Name: "xz", Version: "5.6.0-r0"},
		inventory.Package{Ecosystem: inventory.Alpine, Name: "musl", Version: "1.1.20-r4"},
	))
	// Sorted by severity: critical (feed), low (override), unknown.
	checkFindings(t, "rated", got,
		want{"ALPINE-CVE-2019-14697", []string{"1.1.20-r5"}, StatusFixed},
		want{"OSV-test-xz", []string{"5.6.1-r2"}, StatusFixed},
		want{"OSV-test-unrated", nil, StatusNoFix},
	)
	if len(got) != 3 {
		return
	}
	if r := got[0].Severity; r.Level != severity.Critical || r.Score != 9.8 || r.Source != severity.SourceCVEFeed ||
		r.Vector != "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" {
		t.Errorf("musl severity = %+v, want NVD's 9.8 through upstream CVE-2019-14697", r)
	}
	if r := got[1].Severity; r.Level != severity.Low || r.Source != severity.SourceOverride || r.Detail != "accepted: not reachable" {
		t.Errorf("xz severity = %+v, want the override (above the feed's critical)", r)
	}
	if r := got[2].Severity; r.Level != severity.Unknown || r.Source != severity.SourceUnknown {
		t.Errorf("unrated severity = %+v, want unknown", r)
	}
	// The lookup is asked with id, aliases, upstream ids; once per advisory.
	wantAsked := [][]string{
		{"ALPINE-CVE-2019-14697", "CVE-2019-14697"},
		{"OSV-test-xz", "CVE-2024-3094", "GHSA-test-override"},
		{"OSV-test-unrated", "CVE-2000-0001"},
	}
	if len(lk.asked) != len(wantAsked) {
		t.Fatalf("Override asked %v", lk.asked)
	}
	for i := range wantAsked {
		if !slices.Equal(lk.asked[i], wantAsked[i]) {
			t.Errorf("Override ask %d = %v, want %v", i, lk.asked[i], wantAsked[i])
		}
	}
}

func TestMatchDeduplicatesAndSorts(t *testing.T) {
	ix := build(t, nil, npmRanges,
		`{"id": "GHSA-aaaa", "modified": "2024-01-01T00:00:00Z", "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"}],
		  "affected": [{"package": {"ecosystem": "npm", "name": "left-pad"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "9.0.0"}]}]},
		               {"package": {"ecosystem": "npm", "name": "left-pad"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.0.0"}, {"fixed": "1.5.0"}]}]}]}`,
		`{"id": "GHSA-bbbb", "modified": "2024-01-01T00:00:00Z", "database_specific": {"severity": "HIGH"},
		  "affected": [{"package": {"ecosystem": "npm", "name": "left-pad"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]}`,
	)
	p := inventory.Package{Ecosystem: inventory.NPM, Name: "left-pad", Version: "1.2.0", Locations: []string{"/app/node_modules/left-pad"}}
	q := p
	q.Locations = []string{"/srv/node_modules/left-pad", "/app/node_modules/left-pad"}
	inv := &inventory.Inventory{Packages: []inventory.Package{p, q}}
	got := ix.Match(inv)
	// GHSA-bbbb high, GHSA-aaaa medium 6.1 (both its entries match: one
	// finding, fixes of both), GHSA-test-limit unknown.
	checkFindings(t, "left-pad 1.2.0 twice", got,
		want{"GHSA-bbbb", nil, StatusNoFix},
		want{"GHSA-aaaa", []string{"1.5.0", "9.0.0"}, StatusFixed},
		want{"GHSA-test-limit", []string{"3.1.0", "5.0.1"}, StatusFixed},
	)
	for _, f := range got {
		if !slices.Equal(f.Package.Locations, []string{"/app/node_modules/left-pad", "/srv/node_modules/left-pad"}) {
			t.Errorf("%s locations = %v", f.AdvisoryID, f.Package.Locations)
		}
	}
	if !slices.Equal(inv.Packages[0].Locations, []string{"/app/node_modules/left-pad"}) {
		t.Errorf("Match modified the inventory: %v", inv.Packages[0].Locations)
	}
	if ix.Match(nil) != nil {
		t.Error("Match(nil) != nil")
	}
}

func TestKeyOf(t *testing.T) {
	tests := []struct {
		p       inventory.Package
		key     PackageKey
		version string
		ok      bool
	}{
		{inventory.Package{Ecosystem: inventory.Debian, Name: "libssl3", Version: "3.0.11-1~deb12u2+b1", SourceName: "openssl", SourceVersion: "3.0.11-1~deb12u2"},
			PackageKey{inventory.Debian, "openssl"}, "3.0.11-1~deb12u2", true},
		{inventory.Package{Ecosystem: inventory.Alpine, Name: "musl-utils", Version: "1.1.20-r4", SourceName: "musl"},
			PackageKey{inventory.Alpine, "musl"}, "1.1.20-r4", true},
		// RPM advisories name binary packages.
		{inventory.Package{Ecosystem: inventory.RedHat, Name: "openssl-libs", Version: "1:3.0.7-24.el9", SourceName: "openssl"},
			PackageKey{inventory.RedHat, "openssl-libs"}, "1:3.0.7-24.el9", true},
		{inventory.Package{Ecosystem: inventory.PyPI, Name: "Django_Rest", Version: "1.0"},
			PackageKey{inventory.PyPI, "django-rest"}, "1.0", true},
		{inventory.Package{Ecosystem: "Hex", Name: "plug", Version: "1.0.0"}, PackageKey{}, "", false},
	}
	for _, tc := range tests {
		key, version, ok := KeyOf(tc.p)
		if key != tc.key || version != tc.version || ok != tc.ok {
			t.Errorf("KeyOf(%+v) = %v %q %v, want %v %q %v", tc.p, key, version, ok, tc.key, tc.version, tc.ok)
		}
	}
}
