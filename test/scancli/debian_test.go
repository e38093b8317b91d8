package scancli_test

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/test/e2e/harness"
)

// debianImage is the cached Debian bookworm OCI layout (scripts/test-deps.sh).
const debianImage = "debian-bookworm"

// TestScanDebian scans the Debian bookworm image against the hand-written
// Debian 12 advisories of testdata/debian-12: exactly the three that apply
// are found (one through the source package, one by source version, one
// won't-fix), none of those about a newer fix, another release or a
// fixed version.
func TestScanDebian(t *testing.T) {
	t.Parallel()
	dir := harness.Image(t, debianImage)
	c := harness.NewClient(t)
	r := scan(t, c, "--vulndb", repoFile(t, "test/scancli/testdata/debian-12"), "--format", "json", dir+":bookworm")
	wantExit(t, r, 0)
	rep := decodeReport(t, r)
	if rep.Distro == nil || rep.Distro.ID != "debian" || rep.Distro.VersionID != "12" || rep.Packages < 80 {
		t.Fatalf("distro %+v, %d packages", rep.Distro, rep.Packages)
	}
	var got []string
	for _, f := range rep.Findings {
		fixed := "none"
		if len(f.FixedVersions) > 0 {
			fixed = f.FixedVersions[0]
		}
		got = append(got, f.AdvisoryID+" "+f.Package.Name+" -> "+fixed+" ("+string(f.Status)+", "+f.Severity.Level.String()+")")
	}
	want := []string{
		"CUSTOMS-TEST-DEB-0001 zlib1g -> 1:1.2.13.dfsg-99 (fixed, high)",
		"CUSTOMS-TEST-DEB-0002 tar -> none (wont-fix, unknown)",
		"CUSTOMS-TEST-DEB-0005 bash -> 5.2.15-3 (fixed, unknown)",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("findings\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for _, f := range rep.Findings {
		if f.Package.Name == "tar" && f.Fix != "no fix: the distribution will not fix this in this release" {
			t.Errorf("tar fix %q", f.Fix)
		}
		if f.Package.Name == "bash" && !strings.HasPrefix(f.Fix, "upgrade bash from 5.2.15-2+b") {
			t.Errorf("bash fix %q names the installed binary version", f.Fix)
		}
	}

	t.Run("fail-on and ignore-unfixed", func(t *testing.T) {
		wantExit(t, scan(t, c, "--vulndb", repoFile(t, "test/scancli/testdata/debian-12"), "-q", "--fail-on", "high", dir), 1)
		wantExit(t, scan(t, c, "--vulndb", repoFile(t, "test/scancli/testdata/debian-12"), "-q", "--fail-on", "critical", dir), 0)
		r := scan(t, c, "--vulndb", repoFile(t, "test/scancli/testdata/debian-12"), "--ignore-unfixed", "--format", "json", dir)
		wantExit(t, r, 0)
		if rep := decodeReport(t, r); len(rep.Findings) != 2 || rep.Counts != (report.Counts{High: 1, Unknown: 1}) {
			t.Errorf("--ignore-unfixed kept %q, counts %+v", findingKeys(rep), rep.Counts)
		}
	})
}

// TestDebianPackagesMatchSyft: customs' OS packages of the Debian image are
// exactly syft's deb packages (name and version).
func TestDebianPackagesMatchSyft(t *testing.T) {
	t.Parallel()
	syft := harness.Tool(t, "syft")
	dir := harness.Image(t, debianImage)
	c := harness.NewClient(t)
	c.Env("SYFT_CHECK_FOR_APP_UPDATE=false")

	r := scan(t, c, "--vulndb", repoFile(t, "test/scancli/testdata/debian-12"), "--format", "json", "-q", dir)
	wantExit(t, r, 0)
	rep := decodeReport(t, r)
	var ours []string
	for _, p := range rep.Inventory.Packages {
		if p.Ecosystem == inventory.Debian {
			ours = append(ours, p.Name+" "+p.Version)
		}
	}

	sr := c.Run(t, syft, "scan", "oci-dir:"+dir, "-o", "syft-json", "-q")
	if sr.ExitCode != 0 {
		t.Fatalf("syft:\n%s", sr)
	}
	var doc struct {
		Artifacts []struct {
			Name    string `json:"name"`
			Version string `json:"version"`
			Type    string `json:"type"`
		} `json:"artifacts"`
	}
	if err := json.Unmarshal([]byte(sr.Stdout), &doc); err != nil {
		t.Fatalf("syft output: %v", err)
	}
	var theirs []string
	for _, a := range doc.Artifacts {
		if a.Type == "deb" {
			theirs = append(theirs, a.Name+" "+a.Version)
		}
	}
	sort.Strings(ours)
	sort.Strings(theirs)
	if len(ours) < 80 {
		t.Fatalf("customs found only %d Debian packages", len(ours))
	}
	if !slices.Equal(ours, theirs) {
		t.Errorf("OS package sets differ:\n only customs: %q\n only syft: %q", minus(ours, theirs), minus(theirs, ours))
	}
	t.Logf("%d Debian packages, the same in customs and syft", len(ours))
}

// minus is a without the elements of b (both sorted).
func minus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if _, ok := slices.BinarySearch(b, s); !ok {
			out = append(out, s)
		}
	}
	return out
}
