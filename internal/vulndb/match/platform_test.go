package match

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/inventory"
)

// Go records restricted to platforms in ecosystem_specific.imports, in the
// form of the Go vulnerability database (paths, goos, goarch, symbols).
const (
	// A windows-only stdlib advisory (as GO-2023-1568, path/filepath).
	goWindowsOnly = `{
	  "id": "GO-test-windows", "modified": "2024-01-01T00:00:00Z",
	  "affected": [{"package": {"ecosystem": "Go", "name": "stdlib"},
	    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.20.1"}]}],
	    "ecosystem_specific": {"imports": [{"path": "path/filepath", "goos": ["windows"], "symbols": ["Clean"]}]}}]
	}`
	// A GOARCH-only restriction (as GO-2025-3447, crypto/internal/nistec
	// on ppc64le).
	goPPC64LEOnly = `{
	  "id": "GO-test-ppc64le", "modified": "2024-01-01T00:00:00Z",
	  "affected": [{"package": {"ecosystem": "Go", "name": "stdlib"},
	    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.20.2"}]}],
	    "ecosystem_specific": {"imports": [{"path": "crypto/internal/nistec", "goarch": ["ppc64le"]}]}}]
	}`
	// Two imports restricted differently: windows (any arch), or
	// linux/arm64 only.
	goTwoImports = `{
	  "id": "GO-test-two-imports", "modified": "2024-01-01T00:00:00Z",
	  "affected": [{"package": {"ecosystem": "Go", "name": "stdlib"},
	    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.20.3"}]}],
	    "ecosystem_specific": {"imports": [
	      {"path": "os", "goos": ["windows"]},
	      {"path": "syscall", "goos": ["linux", "android"], "goarch": ["arm64"]}]}}]
	}`
	// One restricted import and one that is not: every platform.
	goOneUnrestricted = `{
	  "id": "GO-test-one-unrestricted", "modified": "2024-01-01T00:00:00Z",
	  "affected": [{"package": {"ecosystem": "Go", "name": "stdlib"},
	    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.20.4"}]}],
	    "ecosystem_specific": {"imports": [
	      {"path": "os", "goos": ["windows"]},
	      {"path": "net/http", "symbols": ["Serve"]}]}}]
	}`
	// Imports without platforms, an empty list and a null: every platform.
	goUnrestricted = `{
	  "id": "GO-test-unrestricted", "modified": "2024-01-01T00:00:00Z",
	  "affected": [
	    {"package": {"ecosystem": "Go", "name": "example.com/a"},
	     "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.0.0"}]}],
	     "ecosystem_specific": {"imports": [{"path": "example.com/a/b", "goos": [], "goarch": null}]}},
	    {"package": {"ecosystem": "Go", "name": "example.com/b"},
	     "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.0.0"}]}],
	     "ecosystem_specific": {"imports": []}},
	    {"package": {"ecosystem": "Go", "name": "example.com/c"},
	     "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.0.0"}]}],
	     "ecosystem_specific": null}]
	}`
	// Two entries for one module: a windows-only one fixed in 1.2.0 and
	// one for every platform from 1.1.0, fixed in 1.3.0. On other
	// platforms only the second counts, its fix alone.
	goTwoEntries = `{
	  "id": "GO-test-two-entries", "modified": "2024-01-01T00:00:00Z",
	  "affected": [
	    {"package": {"ecosystem": "Go", "name": "example.com/m"},
	     "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]}],
	     "ecosystem_specific": {"imports": [{"path": "example.com/m/win", "goos": ["windows"]}]}},
	    {"package": {"ecosystem": "Go", "name": "example.com/m"},
	     "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.1.0"}, {"fixed": "1.3.0"}]}]}]
	}`
	// An npm record whose ecosystem_specific happens to look like Go's:
	// only Go entries are platform-restricted.
	npmImports = `{
	  "id": "GHSA-test-imports", "modified": "2024-01-01T00:00:00Z",
	  "affected": [{"package": {"ecosystem": "npm", "name": "left-pad"},
	    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "2.0.0"}]}],
	    "ecosystem_specific": {"imports": [{"path": "x", "goos": ["windows"]}]}}]
	}`
)

func TestPlatformFilter(t *testing.T) {
	ix := build(t, nil, goWindowsOnly, goPPC64LEOnly, goTwoImports, goOneUnrestricted, goUnrestricted, goTwoEntries, npmImports)
	stdlib := func(platform string) inventory.Package {
		return inventory.Package{Ecosystem: inventory.Go, Name: "stdlib", Version: "go1.20", Platform: platform}
	}
	ids := func(fs []Finding) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.AdvisoryID)
		}
		slices.Sort(out)
		return out
	}
	const (
		win   = "GO-test-windows"
		ppc   = "GO-test-ppc64le"
		two   = "GO-test-two-imports"
		unres = "GO-test-one-unrestricted"
	)
	for _, tc := range []struct {
		platform string
		want     []string
	}{
		// No platform: every entry (the superset, as before platforms).
		{"", []string{unres, two, ppc, win}},
		{"linux/amd64", []string{unres}},
		{"windows/amd64", []string{unres, two, win}},
		{"linux/ppc64le", []string{unres, ppc}},
		{"linux/arm64", []string{unres, two}},
		{"android/arm64", []string{unres, two}},
		{"darwin/arm64", []string{unres}},
		// A part the binary does not record matches every list.
		{"linux/", []string{unres, two, ppc}},
		{"/amd64", []string{unres, two, win}},
		{"/", []string{unres, two, ppc, win}},
		// A variant after GOARCH is not part of it.
		{"linux/arm64/v8", []string{unres, two}},
		// Values are compared exactly, as govulncheck does.
		{"Windows/amd64", []string{unres}},
	} {
		got := ids(ix.MatchPackage(nil, stdlib(tc.platform)))
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("stdlib go1.20 on %q: findings %v, want %v", tc.platform, got, want)
		}
	}

	// Imports without goos and goarch restrict nothing.
	for _, name := range []string{"example.com/a", "example.com/b", "example.com/c"} {
		p := inventory.Package{Ecosystem: inventory.Go, Name: name, Version: "v0.9.0", Platform: "linux/amd64"}
		checkFindings(t, name+" on linux/amd64", ix.MatchPackage(nil, p), want{"GO-test-unrestricted", []string{"1.0.0"}, StatusFixed})
	}

	// Per entry: a platform the windows entry does not affect gets the
	// other entry's fix only, and nothing below that entry's range.
	m := func(version, platform string) inventory.Package {
		return inventory.Package{Ecosystem: inventory.Go, Name: "example.com/m", Version: version, Platform: platform}
	}
	checkFindings(t, "m 1.0.0 windows", ix.MatchPackage(nil, m("v1.0.0", "windows/amd64")),
		want{"GO-test-two-entries", []string{"1.2.0", "1.3.0"}, StatusFixed})
	checkFindings(t, "m 1.0.0 linux", ix.MatchPackage(nil, m("v1.0.0", "linux/amd64")))
	checkFindings(t, "m 1.1.0 windows", ix.MatchPackage(nil, m("v1.1.0", "windows/amd64")),
		want{"GO-test-two-entries", []string{"1.2.0", "1.3.0"}, StatusFixed})
	checkFindings(t, "m 1.1.0 linux", ix.MatchPackage(nil, m("v1.1.0", "linux/amd64")),
		want{"GO-test-two-entries", []string{"1.3.0"}, StatusFixed})
	checkFindings(t, "m 1.1.0 unknown platform", ix.MatchPackage(nil, m("v1.1.0", "")),
		want{"GO-test-two-entries", []string{"1.2.0", "1.3.0"}, StatusFixed})

	// Other ecosystems are never platform-restricted.
	checkFindings(t, "npm with a platform", ix.MatchPackage(nil,
		inventory.Package{Ecosystem: inventory.NPM, Name: "left-pad", Version: "1.0.0", Platform: "linux/amd64"}),
		want{"GHSA-test-imports", []string{"2.0.0"}, StatusFixed})
}

// TestPlatformMerge: one module at one version in Go binaries of two
// platforms gives one finding per advisory; it lists the locations of the
// binaries the advisory affects, and keeps a platform only when they are
// all of one.
func TestPlatformMerge(t *testing.T) {
	ix := build(t, nil, goWindowsOnly, goOneUnrestricted)
	pkg := func(platform, loc string) inventory.Package {
		return inventory.Package{Ecosystem: inventory.Go, Name: "stdlib", Version: "go1.20", Platform: platform, Locations: []string{loc}}
	}
	got := ix.Match(&inventory.Inventory{Packages: []inventory.Package{
		pkg("linux/amd64", "/usr/bin/app"), pkg("windows/amd64", "/opt/app.exe"), pkg("linux/amd64", "/usr/bin/tool"),
	}})
	byID := map[string]inventory.Package{}
	for _, f := range got {
		if _, dup := byID[f.AdvisoryID]; dup {
			t.Errorf("two findings of %s", f.AdvisoryID)
		}
		byID[f.AdvisoryID] = f.Package
	}
	if p, ok := byID["GO-test-one-unrestricted"]; !ok || p.Platform != "" ||
		!slices.Equal(p.Locations, []string{"/usr/bin/app", "/opt/app.exe", "/usr/bin/tool"}) {
		t.Errorf("GO-test-one-unrestricted: %+v, want every location and no platform", p)
	}
	if p, ok := byID["GO-test-windows"]; !ok || p.Platform != "windows/amd64" || !slices.Equal(p.Locations, []string{"/opt/app.exe"}) {
		t.Errorf("GO-test-windows: %+v, want the windows binary only", p)
	}
	if len(byID) != 2 {
		t.Errorf("findings %v, want 2", byID)
	}
}

// TestPlatformBuildErrors: ecosystem_specific of a Go entry that is not of
// the Go database's form leaves the record out, naming the entry, as
// govulncheck cannot read it either; other ecosystems' ecosystem_specific
// is not read.
func TestPlatformBuildErrors(t *testing.T) {
	rec := func(id, eco, es string) string {
		return `{"id": "` + id + `", "modified": "2024-01-01T00:00:00Z", "affected": [
		  {"package": {"ecosystem": "Go", "name": "example.com/ok"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]},
		  {"package": {"ecosystem": "` + eco + `", "name": "example.com/x"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}],
		   "ecosystem_specific": ` + es + `}]}`
	}
	for name, tc := range map[string]struct {
		doc     string
		wantErr string
	}{
		"goos is a string":    {rec("GO-bad-1", "Go", `{"imports": [{"path": "p", "goos": "windows"}]}`), "goos"},
		"imports is a string": {rec("GO-bad-2", "Go", `{"imports": "p"}`), "imports"},
		"not an object":       {rec("GO-bad-3", "Go", `["imports"]`), "cannot unmarshal array"},
		"goarch of numbers":   {rec("GO-bad-4", "Go", `{"imports": [{"path": "p", "goarch": [64]}]}`), "goarch"},
		"npm, any form":       {rec("GHSA-ok-1", "npm", `{"imports": "p"}`), ""},
		"Go, unknown keys":    {rec("GO-ok-2", "Go", `{"imports": [{"path": "p", "goos": ["linux"], "extra": 1}], "other": true}`), ""},
	} {
		t.Run(name, func(t *testing.T) {
			recs := parseAll(t, tc.doc)
			id := recs[0].ID
			ix, errs := Build(recs, nil)
			if tc.wantErr == "" {
				if len(errs) != 0 {
					t.Fatalf("errors %v, want none", errs)
				}
				if _, ok := ix.Advisory(id); !ok {
					t.Fatalf("%s is not in the index", id)
				}
				return
			}
			if len(errs) != 1 {
				t.Fatalf("errors %v, want 1", errs)
			}
			var re *RecordError
			if !errors.As(errs[0], &re) || re.ID != id || re.Ecosystem != "Go" || re.Field != "affected[1].ecosystem_specific" ||
				!re.Dropped || !strings.Contains(re.Error(), tc.wantErr) || !strings.HasSuffix(re.Error(), "(record left out)") {
				t.Errorf("error = %#v %q; want a dropping *RecordError on affected[1].ecosystem_specific mentioning %q", errs[0], errs[0], tc.wantErr)
			}
			if _, ok := ix.Advisory(id); ok {
				t.Errorf("%s is in the index", id)
			}
		})
	}
}
