package scancli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/test/e2e/harness"
)

// muslFindings are the findings of the Alpine image with musl 1.1.20-r4
// against the Alpine v3.9 export: exactly the one advisory, on both
// packages built from musl.
var muslFindings = []string{
	"ALPINE-CVE-2019-14697 musl 1.1.20-r4 -> 1.1.20-r5 (fixed)",
	"ALPINE-CVE-2019-14697 musl-utils 1.1.20-r4 -> 1.1.20-r5 (fixed)",
}

// TestScanAlpineLayout scans a generated OCI layout of Alpine 3.9 with musl
// 1.1.20-r4 offline (--vulndb with the real Alpine v3.9 export), in every
// format, and checks the exit codes of --fail-on.
func TestScanAlpineLayout(t *testing.T) {
	t.Parallel()
	img := imageOf(t, alpineFiles("1.1.20-r4"), "amd64")
	dir := writeLayout(t, img, "3.9")
	db := alpineDB(t)
	c := harness.NewClient(t)

	r := scan(t, c, "--vulndb", db, "--format", "json", dir)
	wantExit(t, r, 0)
	rep := decodeReport(t, r)
	if got := findingKeys(rep); !slices.Equal(got, muslFindings) {
		t.Fatalf("findings %q, want %q", got, muslFindings)
	}
	d, _ := img.Digest()
	cf, _ := img.ConfigFile()
	if rep.Digest != d.String() || rep.Platform != "linux/amd64" || rep.Packages != 5 || rep.Distro == nil || rep.Distro.VersionID != "3.9.6" {
		t.Errorf("report digest %s platform %s packages %d distro %+v", rep.Digest, rep.Platform, rep.Packages, rep.Distro)
	}
	for _, f := range rep.Findings {
		if f.Layer != cf.RootFS.DiffIDs[0].String() || f.Fix != "upgrade "+f.Package.Name+" from 1.1.20-r4 to 1.1.20-r5 or later" {
			t.Errorf("%s: layer %s fix %q", f.Package.Name, f.Layer, f.Fix)
		}
		if f.Package.SourceName != "musl" && f.Package.Name != "musl" {
			t.Errorf("%s is not known to be built from musl: %+v", f.Package.Name, f.Package)
		}
	}
	if rep.Counts != (report.Counts{Unknown: 2}) {
		t.Errorf("counts %+v: the export rates nothing, so both are unknown", rep.Counts)
	}

	t.Run("table", func(t *testing.T) {
		r := scan(t, c, "--vulndb", db, "-q", dir+":3.9")
		wantExit(t, r, 0)
		for _, want := range []string{
			"distro Alpine Linux v3.9, 5 packages",
			"UNKNOWN   ALPINE-CVE-2019-14697  musl        1.1.20-r4  1.1.20-r5  upgrade musl from 1.1.20-r4 to 1.1.20-r5 or later",
			"2 findings: 0 critical, 0 high, 0 medium, 0 low, 0 none, 2 unknown",
		} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("table lacks %q:\n%s", want, r.Stdout)
			}
		}
		if r.Stderr != "" {
			t.Errorf("-q printed progress: %q", r.Stderr)
		}
	})
	t.Run("fail-on", func(t *testing.T) {
		// Unrated findings meet only --fail-on unknown.
		r := scan(t, c, "--vulndb", db, "--fail-on", "high", dir)
		wantExit(t, r, 0)
		if !strings.Contains(r.Stderr, "2 findings of unknown severity left aside by --fail-on high") {
			t.Errorf("stderr does not say unrated findings were left aside:\n%s", r.Stderr)
		}
		r = scan(t, c, "--vulndb", db, "--fail-on", "unknown", dir)
		wantExit(t, r, 1)
		if !strings.Contains(r.Stderr, "2 findings meet --fail-on unknown (the first: ALPINE-CVE-2019-14697 in musl 1.1.20-r4)") {
			t.Errorf("stderr:\n%s", r.Stderr)
		}
		if !strings.Contains(r.Stdout, "ALPINE-CVE-2019-14697") {
			t.Error("the report is not printed when --fail-on is met")
		}
		// With NVD's rating of CVE-2019-14697 (9.8) the findings are
		// critical, and meet --fail-on high.
		feed := repoFile(t, "test/scancli/testdata/nvd-CVE-2019-14697.json")
		r = scan(t, c, "--vulndb", db, "--vulndb", feed, "--fail-on", "high", "--format", "json", dir)
		wantExit(t, r, 1)
		if rep := decodeReport(t, r); rep.Counts != (report.Counts{Critical: 2}) || rep.Findings[0].Severity.Score != 9.8 {
			t.Errorf("with the NVD feed: counts %+v, rating %+v", rep.Counts, rep.Findings[0].Severity)
		}
		wantExit(t, scan(t, c, "--vulndb", db, "--vulndb", feed, "--fail-on", "critical", "-q", dir), 1)
	})
	t.Run("ignore-unfixed", func(t *testing.T) {
		// Both findings have a fix: nothing to leave out.
		r := scan(t, c, "--vulndb", db, "--ignore-unfixed", "--format", "json", dir)
		wantExit(t, r, 0)
		if got := findingKeys(decodeReport(t, r)); !slices.Equal(got, muslFindings) {
			t.Errorf("findings %q", got)
		}
	})
	t.Run("sbom and sarif", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "bom.json")
		wantExit(t, scan(t, c, "--vulndb", db, "--format", "cyclonedx", "--output", out, dir), 0)
		var bom struct {
			SpecVersion string `json:"specVersion"`
			Components  []struct {
				Name string `json:"name"`
				PURL string `json:"purl"`
			} `json:"components"`
			Vulnerabilities []struct {
				ID      string `json:"id"`
				Affects []struct {
					Ref string `json:"ref"`
				} `json:"affects"`
			} `json:"vulnerabilities"`
		}
		readJSON(t, out, &bom)
		if bom.SpecVersion != "1.6" || len(bom.Components) != 6 || len(bom.Vulnerabilities) != 1 || len(bom.Vulnerabilities[0].Affects) != 2 {
			t.Errorf("CycloneDX: %+v", bom)
		}
		if !slices.ContainsFunc(bom.Components, func(c struct {
			Name string `json:"name"`
			PURL string `json:"purl"`
		}) bool {
			return c.Name == "musl" && strings.HasPrefix(c.PURL, "pkg:apk/alpine/musl@1.1.20-r4")
		}) {
			t.Errorf("no musl component with its purl: %+v", bom.Components)
		}

		r := scan(t, c, "--vulndb", db, "--format", "spdx", dir)
		wantExit(t, r, 0)
		var doc struct {
			SPDXVersion string `json:"spdxVersion"`
			Packages    []struct {
				Name string `json:"name"`
			} `json:"packages"`
		}
		if err := json.Unmarshal([]byte(r.Stdout), &doc); err != nil || doc.SPDXVersion != "SPDX-2.3" || len(doc.Packages) != 7 {
			t.Errorf("SPDX (%v): %+v", err, doc)
		}

		r = scan(t, c, "--vulndb", db, "--format", "sarif", dir)
		wantExit(t, r, 0)
		var log struct {
			Runs []struct {
				Results []struct {
					RuleID string `json:"ruleId"`
					Level  string `json:"level"`
				} `json:"results"`
			} `json:"runs"`
		}
		if err := json.Unmarshal([]byte(r.Stdout), &log); err != nil || len(log.Runs[0].Results) != 2 || log.Runs[0].Results[0].Level != "warning" {
			t.Errorf("SARIF (%v): %+v", err, log)
		}
	})
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestScanOtherTargets: a docker-archive tar and a root filesystem of the
// same files give the same findings; a multi-platform layout is resolved
// by --platform.
func TestScanOtherTargets(t *testing.T) {
	t.Parallel()
	db := alpineDB(t)
	c := harness.NewClient(t)
	vulnerable := imageOf(t, alpineFiles("1.1.20-r4"), "amd64")

	t.Run("docker archive", func(t *testing.T) {
		path := writeDockerArchive(t, vulnerable, "example.com/alpine-musl:3.9")
		for _, arg := range []string{path, path + ":example.com/alpine-musl:3.9"} {
			r := scan(t, c, "--vulndb", db, "--format", "json", arg)
			wantExit(t, r, 0)
			if got := findingKeys(decodeReport(t, r)); !slices.Equal(got, muslFindings) {
				t.Errorf("%s: findings %q", arg, got)
			}
		}
		r := scan(t, c, "--vulndb", db, path+":example.com/other:1")
		wantExit(t, r, 2)
	})
	t.Run("rootfs", func(t *testing.T) {
		r := scan(t, c, "--vulndb", db, "--format", "json", writeRootfs(t, alpineFiles("1.1.20-r4")))
		wantExit(t, r, 0)
		rep := decodeReport(t, r)
		if got := findingKeys(rep); !slices.Equal(got, muslFindings) {
			t.Errorf("findings %q", got)
		}
		if rep.Findings[0].Layer != "" || rep.Digest != "" {
			t.Errorf("a directory has no layer or digest: %q %q", rep.Findings[0].Layer, rep.Digest)
		}
	})
	t.Run("platforms", func(t *testing.T) {
		// linux/amd64 has the vulnerable musl, linux/arm64 the fixed one.
		fixed := imageOf(t, alpineFiles("1.1.20-r5"), "arm64")
		idx := mutate.AppendManifests(empty.Index,
			mutate.IndexAddendum{Add: vulnerable, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
			mutate.IndexAddendum{Add: fixed, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
		dir := filepath.Join(t.TempDir(), "multi")
		p, err := layout.Write(dir, empty.Index)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "multi"})); err != nil {
			t.Fatal(err)
		}
		for platform, want := range map[string]int{"linux/amd64": 2, "linux/arm64": 0} {
			r := scan(t, c, "--vulndb", db, "--format", "json", "--platform", platform, dir+":multi")
			wantExit(t, r, 0)
			if rep := decodeReport(t, r); len(rep.Findings) != want || rep.Platform != platform {
				t.Errorf("--platform %s: %d findings on %s, want %d", platform, len(rep.Findings), rep.Platform, want)
			}
		}
		r := scan(t, c, "--vulndb", db, "--platform", "linux/s390x", dir)
		wantExit(t, r, 2)
		if !strings.Contains(r.Stderr, "no image for platform linux/s390x (platforms: linux/amd64, linux/arm64)") {
			t.Errorf("stderr:\n%s", r.Stderr)
		}
	})
}

// TestScanErrors: every error exits 2 with a message naming the problem,
// and --output is left alone.
func TestScanErrors(t *testing.T) {
	t.Parallel()
	c := harness.NewClient(t)
	db := alpineDB(t)
	dir := writeLayout(t, imageOf(t, alpineFiles("1.1.20-r4"), "amd64"), "3.9")
	emptyDB := t.TempDir()
	out := filepath.Join(t.TempDir(), "report.json")
	if err := os.WriteFile(out, []byte("previous report\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no target", []string{"--vulndb", db}, "give one TARGET to scan"},
		{"missing path", []string{"--vulndb", db, "./no/such/dir"}, "./no/such/dir: no such file or directory"},
		{"unknown tag", []string{"--vulndb", db, dir + ":4.0"}, `has no image tagged "4.0" (tags: 3.9)`},
		{"bad format", []string{"--vulndb", db, "--format", "xml", dir}, `unknown report format "xml"`},
		{"bad fail-on", []string{"--vulndb", db, "--fail-on", "severe", dir}, `unknown severity level "severe"`},
		{"bad flag", []string{"--vulndb", db, "--no-such-flag", dir}, "unknown flag: --no-such-flag"},
		{"no advisories", []string{"--vulndb", emptyDB, dir}, "no OSV records found"},
		{"missing vulndb", []string{"--vulndb", filepath.Join(emptyDB, "all.zip"), dir}, "no such file or directory"},
		{"empty configured database", []string{"--data-dir", t.TempDir(), dir}, "the vulnerability database holds no advisories"},
		{"not an image reference", []string{"--vulndb", db, "UPPER/Case:tag"}, "is not a file, a directory or an image reference"},
		{"output left alone", []string{"--vulndb", db, "--output", out, dir + ":nope"}, `has no image tagged "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := scan(t, c, tc.args...)
			wantExit(t, r, 2)
			if !strings.Contains(r.Stderr, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, r.Stderr)
			}
		})
	}
	if b, _ := os.ReadFile(out); string(b) != "previous report\n" {
		t.Errorf("a failed scan changed --output: %q", b)
	}
}

// TestScanConfiguredDatabase imports the Alpine export into a data
// directory's database with customs vulndb import, then scans against it
// without --vulndb.
func TestScanConfiguredDatabase(t *testing.T) {
	t.Parallel()
	c := harness.NewClient(t)
	data := t.TempDir()
	imp := c.Run(t, harness.CustomsBinary(t), "vulndb", "import", "--data-dir", data, alpineDB(t))
	if imp.ExitCode != 0 {
		t.Fatalf("vulndb import:\n%s", imp)
	}
	dir := writeLayout(t, imageOf(t, alpineFiles("1.1.20-r4"), "amd64"), "3.9")
	r := scan(t, c, "--data-dir", data, "--format", "json", "--fail-on", "unknown", dir)
	wantExit(t, r, 1)
	rep := decodeReport(t, r)
	if got := findingKeys(rep); !slices.Equal(got, muslFindings) || rep.VulnDBRevision < 1 {
		t.Errorf("findings %q at revision %d", got, rep.VulnDBRevision)
	}
}
