package report

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"

	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/vulndb/match"
	"github.com/customs-dev/customs/internal/vulndb/severity"
)

// TestCycloneDXContent decodes the BOM with the CycloneDX library and
// checks what it must say: every package a component with its purl,
// unique refs, one vulnerability per advisory whose affects point at the
// vulnerable components with installed and fixed versions.
func TestCycloneDXContent(t *testing.T) {
	r := fixtureReport()
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(encode(t, r, FormatCycloneDX, fixtureOptions())), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	if bom.SpecVersion != cdx.SpecVersion1_6 || !strings.HasPrefix(bom.SerialNumber, "urn:uuid:") {
		t.Errorf("spec %v serial %q", bom.SpecVersion, bom.SerialNumber)
	}
	if m := bom.Metadata; m.Component.Name != "registry.example.com/shop/app:1.4" || m.Component.Version != r.Digest ||
		m.Timestamp != "2026-09-01T12:00:00Z" || m.Component.Type != cdx.ComponentTypeContainer {
		t.Errorf("metadata %+v %+v", m, m.Component)
	}
	refs := map[string]cdx.Component{}
	for _, c := range *bom.Components {
		if _, dup := refs[c.BOMRef]; dup {
			t.Errorf("bom-ref %q used twice", c.BOMRef)
		}
		refs[c.BOMRef] = c
	}
	// 8 packages (the duplicate busybox included) and the OS.
	if len(refs) != 9 {
		t.Errorf("%d components, want 9", len(refs))
	}
	if c := refs["os:alpine@3.9.6"]; c.Type != cdx.ComponentTypeOS || c.Version != "3.9.6" {
		t.Errorf("OS component %+v", c)
	}
	if len(*bom.Dependencies) != 1 || len(*(*bom.Dependencies)[0].Dependencies) != 9 {
		t.Errorf("dependencies %+v", *bom.Dependencies)
	}
	vulns := map[string]cdx.Vulnerability{}
	for _, v := range *bom.Vulnerabilities {
		vulns[v.ID] = v
	}
	if len(vulns) != 4 {
		t.Fatalf("%d vulnerabilities, want one per advisory (4)", len(vulns))
	}
	musl := vulns["ALPINE-CVE-2019-14697"]
	if musl.Affects == nil || len(*musl.Affects) != 2 {
		t.Fatalf("musl affects %+v", musl.Affects)
	}
	var names []string
	for _, a := range *musl.Affects {
		c, ok := refs[a.Ref]
		if !ok {
			t.Fatalf("affects ref %q names no component", a.Ref)
		}
		names = append(names, c.Name)
		want := []cdx.AffectedVersions{{Version: "1.1.20-r4", Status: cdx.VulnerabilityStatusAffected}, {Version: "1.1.20-r5", Status: cdx.VulnerabilityStatusNotAffected}}
		if !slices.Equal(*a.Range, want) {
			t.Errorf("%s versions %+v", c.Name, *a.Range)
		}
		if !strings.HasPrefix(c.PackageURL, "pkg:apk/alpine/"+c.Name+"@1.1.20-r4") {
			t.Errorf("%s purl %q", c.Name, c.PackageURL)
		}
	}
	if !slices.Equal(names, []string{"musl", "musl-utils"}) {
		t.Errorf("musl advisory affects %v", names)
	}
	rt := (*musl.Ratings)[0]
	if rt.Severity != cdx.SeverityCritical || *rt.Score != 9.8 || rt.Method != cdx.ScoringMethodCVSSv31 || rt.Source.Name != "cve-feed" {
		t.Errorf("musl rating %+v", rt)
	}
	if !strings.Contains(musl.Recommendation, "upgrade musl from 1.1.20-r4 to 1.1.20-r5 or later") {
		t.Errorf("recommendation %q", musl.Recommendation)
	}
	if ref := (*musl.References)[0]; ref.ID != "CVE-2019-14697" || ref.Source.Name != "NVD" {
		t.Errorf("reference %+v", ref)
	}
	if rt := (*vulns["GO-2022-1144"].Ratings)[0]; rt.Severity != cdx.SeverityUnknown || rt.Score != nil {
		t.Errorf("unrated advisory rated %+v", rt)
	}
	if rt := (*vulns["PYSEC-2020-176"].Ratings)[0]; rt.Method != cdx.ScoringMethodCVSSv2 {
		t.Errorf("CVSS v2 rating %+v", rt)
	}
	if got := vulns["PYSEC-2020-176"].Recommendation; got != "pyyaml 5.3: no fix available yet" {
		t.Errorf("no-fix recommendation %q", got)
	}
}

// TestSPDXContent reads the document back with the SPDX library.
func TestSPDXContent(t *testing.T) {
	r := fixtureReport()
	doc, err := spdxjson.Read(bytes.NewReader(encode(t, r, FormatSPDX, fixtureOptions())))
	if err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.CreationInfo.Created != "2026-09-01T12:00:00Z" ||
		!strings.HasPrefix(doc.DocumentNamespace, spdxNamespaceBase+"registry.example.com%2Fshop%2Fapp:1.4-") {
		t.Errorf("document %q %q %q", doc.SPDXVersion, doc.CreationInfo.Created, doc.DocumentNamespace)
	}
	ids := map[string]bool{}
	purls := map[string]string{}
	for _, p := range doc.Packages {
		id := string(p.PackageSPDXIdentifier)
		if ids[id] {
			t.Errorf("SPDXID %s used twice", id)
		}
		ids[id] = true
		for _, ref := range p.PackageExternalReferences {
			if ref.Category == "PACKAGE-MANAGER" && ref.RefType == "purl" {
				purls[p.PackageName] = ref.Locator
			}
		}
	}
	if len(doc.Packages) != 10 { // image, OS, 8 packages
		t.Errorf("%d packages, want 10", len(doc.Packages))
	}
	if purls["musl"] != "pkg:apk/alpine/musl@1.1.20-r4?arch=x86_64&distro=3.9.6" || purls["golang.org/x/net"] == "" {
		t.Errorf("purls %v", purls)
	}
	if _, ok := purls["left-pad"]; ok {
		t.Error("a package without purl got a purl reference")
	}
	var describes, contains int
	for _, rel := range doc.Relationships {
		switch rel.Relationship {
		case "DESCRIBES":
			describes++
			if rel.RefB.ElementRefID != "Image" {
				t.Errorf("document describes %v", rel.RefB)
			}
		case "CONTAINS":
			contains++
			if rel.RefA.ElementRefID != "Image" || !ids[string(rel.RefB.ElementRefID)] {
				t.Errorf("bad CONTAINS %v -> %v", rel.RefA, rel.RefB)
			}
		}
	}
	if describes != 1 || contains != 9 {
		t.Errorf("%d DESCRIBES, %d CONTAINS; want 1 and 9", describes, contains)
	}
}

// TestSARIFContent checks rules, result levels and indexes.
func TestSARIFContent(t *testing.T) {
	var log sarifLog
	if err := json.Unmarshal(encode(t, fixtureReport(), FormatSARIF, fixtureOptions()), &log); err != nil {
		t.Fatal(err)
	}
	run := log.Runs[0]
	if len(run.Tool.Driver.Rules) != 4 || len(run.Results) != 5 {
		t.Fatalf("%d rules, %d results; want 4 and 5", len(run.Tool.Driver.Rules), len(run.Results))
	}
	levels := map[string]string{}
	for _, res := range run.Results {
		if rule := run.Tool.Driver.Rules[res.RuleIndex]; rule.ID != res.RuleID {
			t.Errorf("result %s points at rule %d (%s)", res.RuleID, res.RuleIndex, rule.ID)
		}
		levels[res.RuleID] = res.Level
	}
	want := map[string]string{"ALPINE-CVE-2019-14697": "error", "PYSEC-2020-176": "error", "GO-2023-1621": "warning", "GO-2022-1144": "warning"}
	for id, l := range want {
		if levels[id] != l {
			t.Errorf("%s level %q, want %q", id, levels[id], l)
		}
	}
	if got := run.Tool.Driver.Rules[0].Properties["security-severity"]; got != "9.8" {
		t.Errorf("security-severity %v", got)
	}
	for _, rule := range run.Tool.Driver.Rules {
		if _, ok := rule.Properties["security-severity"]; rule.ID == "GO-2022-1144" && ok {
			t.Error("an unrated advisory has a security-severity")
		}
	}
	if loc := run.Results[0].Locations[0].PhysicalLocation.ArtifactLocation.URI; loc != "lib/apk/db/installed" {
		t.Errorf("location %q", loc)
	}
}

func TestSARIFLevel(t *testing.T) {
	for l, want := range map[severity.Level]string{severity.Critical: "error", severity.High: "error", severity.Medium: "warning",
		severity.Low: "note", severity.None: "note", severity.Unknown: "warning"} {
		if got := SARIFLevel(l); got != want {
			t.Errorf("SARIFLevel(%s) = %q, want %q", l, got, want)
		}
	}
}

// TestTableCleansHostileText: names from an image cannot carry terminal
// escapes, line breaks or tabs into the table.
func TestTableCleansHostileText(t *testing.T) {
	pkg := inventory.Package{Ecosystem: inventory.NPM, Name: "evil\x1b[2J\x1b[31mpkg\u202e", Version: "1.0\n\tFAKE LINE"}
	f := FromMatch(match.Finding{AdvisoryID: "GHSA-aaaa-bbbb-cccc", Severity: severity.UnknownRating(), Package: pkg, Status: match.StatusNoFix})
	r := &Report{Digest: "sha256:abc", Status: StatusDone, Packages: 1, Findings: []Finding{f}, Counts: CountFindings([]Finding{f})}
	out := string(encode(t, r, FormatTable, Options{Subject: "img\x1b]0;title\x07"}))
	if strings.ContainsAny(out, "\x1b\x07\t\u202e") {
		t.Errorf("control characters reached the table:\n%q", out)
	}
	if strings.Count(out, "\n") != 7 {
		t.Errorf("a version with a newline added lines:\n%s", out)
	}
	if !strings.Contains(out, "evil?[2J?[31mpkg?") || !strings.Contains(out, "1 finding: 0 critical, 0 high, 0 medium, 0 low, 0 none, 1 unknown") {
		t.Errorf("table:\n%s", out)
	}
}

// TestTableStatus: a failed scan says why; an index lists its platforms.
func TestTableStatus(t *testing.T) {
	failed := &Report{Digest: "sha256:abc", Status: StatusFailed, Reason: "layer 0: unexpected EOF"}
	if out := string(encode(t, failed, FormatTable, Options{})); !strings.Contains(out, "scan failed: layer 0: unexpected EOF") {
		t.Errorf("failed scan:\n%s", out)
	}
	index := &Report{Digest: "sha256:idx", Status: StatusDone, Manifests: []ManifestSummary{
		{Digest: "sha256:a", Platform: "linux/amd64", Status: StatusDone, Packages: 10, Counts: Counts{High: 2}},
		{Digest: "sha256:b", Platform: "linux/arm64", Status: StatusUnsupported, Reason: "no layers"},
	}}
	out := string(encode(t, index, FormatTable, Options{}))
	for _, want := range []string{"linux/amd64  sha256:a  done", "0 critical, 2 high", "linux/arm64  sha256:b  unsupported: no layers"} {
		if !strings.Contains(out, want) {
			t.Errorf("index table lacks %q:\n%s", want, out)
		}
	}
}

func TestThreshold(t *testing.T) {
	r := fixtureReport() // 2 critical, 1 high, 1 medium, 1 unknown
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"critical", 2}, {"high", 3}, {"important", 3}, {"MEDIUM", 4}, {"low", 4}, {"none", 4}, {"unknown", 5},
	} {
		th, err := ParseThreshold(tc.in)
		if err != nil {
			t.Fatalf("ParseThreshold(%q): %v", tc.in, err)
		}
		if got := len(th.Exceeding(r)); got != tc.want {
			t.Errorf("--fail-on %s: %d findings meet it, want %d", tc.in, got, tc.want)
		}
	}
	if _, err := ParseThreshold("severe"); err == nil || !strings.Contains(err.Error(), `"severe"`) {
		t.Errorf("ParseThreshold(severe) error %v", err)
	}
}

func TestWithoutUnfixed(t *testing.T) {
	r := fixtureReport()
	out := WithoutUnfixed(r)
	if len(r.Findings) != 5 {
		t.Fatal("WithoutUnfixed changed its input")
	}
	if len(out.Findings) != 4 || out.Counts != (Counts{Critical: 2, Medium: 1, Unknown: 1}) {
		t.Errorf("without unfixed: %d findings, counts %+v", len(out.Findings), out.Counts)
	}
	for _, f := range out.Findings {
		if len(f.FixedVersions) == 0 {
			t.Errorf("%s kept without a fix", f.AdvisoryID)
		}
	}
}

// TestCreatedDefaults: without Options.Created the SBOM time is the
// report's scan time, so a stored report encodes the same every time.
func TestCreatedDefaults(t *testing.T) {
	r := fixtureReport()
	o := Options{}.withDefaults(r)
	if !o.Created.Equal(r.ScannedAt) || o.Subject != r.Digest || o.ToolName != "customs" {
		t.Errorf("defaults %+v", o)
	}
	r.ScannedAt = time.Time{}
	if o := (Options{}).withDefaults(r); !o.Created.Equal(r.MatchedAt) {
		t.Errorf("created %v, want MatchedAt", o.Created)
	}
}
