package crosscheck_test

import (
	"context"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/scan/extract"
	"github.com/customs-dev/customs/internal/vulndb/ecosystem"
	"github.com/customs-dev/customs/internal/vulndb/match"
	"github.com/customs-dev/customs/internal/vulndb/osv"
	"github.com/customs-dev/customs/test/crosscheck"
	"github.com/customs-dev/customs/test/e2e/harness"
)

// goAdvisories is the repository's real Go vulnerability database export.
const goAdvisories = "../../testdata/vulndata/osv/go/all.zip"

// govulncheckVersion is the govulncheck release scripts/test-deps.sh
// installs; the expected findings below were checked with it.
const govulncheckVersion = "v1.9.0"

// goPrograms are the binaries both tools scan: each a module of its own
// under testdata/gobin with go.sum pinning vulnerable module versions.
// want are modules govulncheck must report something for, so that a
// program silently built against other versions (or toolchain) cannot make
// the comparison empty. otherPlatforms are the findings both tools leave
// out on the binary (built for crosscheck.BuildPlatform, linux/amd64)
// because the advisory affects only other platforms; customs reports them
// for a package whose platform it does not know, so they show the
// platform filter at work.
var goPrograms = []struct {
	prog           crosscheck.Program
	want           []string
	otherPlatforms []pair
}{
	{crosscheck.Program{Dir: "testdata/gobin/textlang"}, []string{"golang.org/x/text"}, nil},
	{crosscheck.Program{Dir: "testdata/gobin/nethttp2"}, []string{"golang.org/x/net", "golang.org/x/text"}, nil},
	{crosscheck.Program{Dir: "testdata/gobin/ginyaml"}, []string{"github.com/gin-gonic/gin"},
		// golang.org/x/sys/windows.
		[]pair{{"golang.org/x/sys", "GO-2026-5024"}}},
	// Built with Go 1.20 (downloaded from the module proxy by the go
	// command) so that the standard library has findings too, and the
	// toolchain's "go1.20" tag (no patch number) is read the same way.
	{crosscheck.Program{Dir: "testdata/gobin/cryptojwt", Toolchain: "go1.20"},
		[]string{"stdlib", "golang.org/x/crypto", "gopkg.in/yaml.v2", "github.com/dgrijalva/jwt-go"},
		// windows: acme/autocert, path/filepath, internal/safefilepath,
		// syscall and os; ppc64le: crypto/internal/nistec.
		[]pair{{"golang.org/x/crypto", "GO-2024-2961"}, {"stdlib", "GO-2023-1568"}, {"stdlib", "GO-2023-2185"},
			{"stdlib", "GO-2025-3447"}, {"stdlib", "GO-2025-3750"}}},
}

// textV035 is every Go advisory of the data affecting golang.org/x/text
// v0.3.5: GO-2020-0015 is fixed in 0.3.3, the others in 0.3.7, 0.3.8 and
// 0.39.0.
var textV035 = []string{"GO-2021-0113", "GO-2022-1059", "GO-2026-5970"}

var (
	goOnce sync.Once
	goRecs []crosscheck.Record
	goErr  error
)

func goRecords(t *testing.T) []crosscheck.Record {
	t.Helper()
	goOnce.Do(func() { goRecs, goErr = crosscheck.ReadZip(goAdvisories) })
	if goErr != nil {
		t.Fatal(goErr)
	}
	return goRecs
}

// cacheDir is where built test binaries are kept between runs (as
// scripts/test-deps.sh keeps tools).
func cacheDir(t *testing.T) string {
	if d := os.Getenv("CUSTOMS_TEST_CACHE"); d != "" {
		return filepath.Join(d, "gobin")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(home, ".cache", "customs-test", "gobin")
}

// pair is one module-level finding: an advisory on a module.
type pair struct{ module, id string }

// TestGovulncheckFindingsCovered runs govulncheck -mode=binary
// -scan=module on Go binaries built against vulnerable modules, with the
// repository's Go advisories as its database, and matches the same
// binaries' inventories (scan/extract on a root filesystem holding the
// binary) with customs: customs must report exactly the (module, advisory)
// pairs govulncheck reports, with the same installed version and
// govulncheck's fixed version among its own. Both leave out advisories
// that affect only other platforms than the binary's (GOOS/GOARCH of its
// build settings, which scan/extract records as Package.Platform): the
// same packages without a platform must get those findings too, each
// explained by the record (otherPlatform), and exactly the program's
// otherPlatforms.
func TestGovulncheckFindingsCovered(t *testing.T) {
	tool := harness.Tool(t, "govulncheck")
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()

	recs := goRecords(t)
	dbDir := t.TempDir()
	n, err := crosscheck.WriteGoVulnDB(dbDir, recs)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(recs) {
		t.Fatalf("WriteGoVulnDB wrote %d records of %d", n, len(recs))
	}
	// The same records as a flat directory, which govulncheck indexes
	// itself: its findings there show that our index hides nothing.
	flatDir := t.TempDir()
	for _, r := range recs {
		if err := os.WriteFile(filepath.Join(flatDir, r.V.ID+".json"), r.Raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	ix, errs := match.Build(crosscheck.Vulnerabilities(recs), nil)
	for _, err := range errs {
		t.Errorf("match.Build: %v", err)
	}
	byID := make(map[string]*osv.Vulnerability, len(recs))
	for _, r := range recs {
		byID[r.V.ID] = r.V
	}

	ex, err := extract.New(extract.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}

	var summary []string
	for _, gp := range goPrograms {
		p := gp.prog
		t.Run(p.Name(), func(t *testing.T) {
			start := time.Now()
			bin, err := crosscheck.BuildCached(ctx, p, cacheDir(t))
			if err != nil {
				t.Fatal(err)
			}
			built := time.Since(start)
			goos, goarch := platform(t, bin)
			if goos+"/"+goarch != crosscheck.BuildPlatform {
				t.Fatalf("%s was built for %s/%s, want %s", bin, goos, goarch, crosscheck.BuildPlatform)
			}

			start = time.Now()
			gv, err := crosscheck.RunGovulncheck(ctx, tool, dbDir, bin)
			if err != nil {
				t.Fatal(err)
			}
			scanned := time.Since(start)
			if gv.ScannerVersion != govulncheckVersion {
				t.Fatalf("%s is govulncheck %s; the cross-check is pinned to %s (scripts/test-deps.sh installs it)",
					tool, gv.ScannerVersion, govulncheckVersion)
			}
			if gv.ScanLevel != "module" || gv.ScanMode != "binary" {
				t.Fatalf("govulncheck ran at scan level %q, mode %q; want module, binary", gv.ScanLevel, gv.ScanMode)
			}
			if p.Toolchain != "" && gv.GoVersion != p.Toolchain {
				t.Fatalf("binary built with %s, want %s", gv.GoVersion, p.Toolchain)
			}
			flat, err := crosscheck.RunGovulncheck(ctx, tool, flatDir, bin)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := pairs(gv.Findings), pairs(flat.Findings); !maps(a, b) {
				t.Errorf("govulncheck findings differ between our index and its own indexing of the records:\nours:  %v\nitself: %v",
					sortedPairs(a), sortedPairs(b))
			}

			pkgs, err := crosscheck.GoBinaryPackages(ctx, ex, t.TempDir(), bin)
			if err != nil {
				t.Fatal(err)
			}
			anyPlatform := make([]inventory.Package, len(pkgs))
			for i, p := range pkgs {
				if want := goos + "/" + goarch; p.Platform != want {
					t.Errorf("%s %s: platform %q, want the binary's %s", p.Name, p.Version, p.Platform, want)
				}
				anyPlatform[i] = p
				anyPlatform[i].Platform = ""
			}
			ours := findingsOf(t, ix.Match(&inventory.Inventory{Packages: pkgs}))
			everywhere := findingsOf(t, ix.Match(&inventory.Inventory{Packages: anyPlatform}))

			theirs := make(map[pair]crosscheck.ModuleFinding)
			for _, f := range gv.Findings {
				theirs[pair{f.Module, f.OSV}] = f
			}
			for _, m := range gp.want {
				if !slices.ContainsFunc(gv.Findings, func(f crosscheck.ModuleFinding) bool { return f.Module == m }) {
					t.Errorf("govulncheck reports nothing for %s: the program no longer holds a vulnerable version of it", m)
				}
			}

			// Every govulncheck finding is customs' too, at the same
			// version, with govulncheck's fix among customs' fixes.
			var missing []pair
			for k, g := range theirs {
				f, ok := ours[k]
				if !ok {
					missing = append(missing, k)
					continue
				}
				if got, want := installed(t, f.Package.Name, f.Package.Version), installed(t, g.Module, g.Version); got != want {
					t.Errorf("%s %s: customs matched version %s, govulncheck %s", k.id, k.module, f.Package.Version, g.Version)
				}
				if g.Fixed != "" && !slices.Contains(f.Fixed, installed(t, g.Module, g.Fixed)) {
					t.Errorf("%s %s: govulncheck's fix %s is not among customs' fixes %v", k.id, k.module, g.Fixed, f.Fixed)
				}
			}
			sort.Slice(missing, func(i, j int) bool { return less(missing[i], missing[j]) })
			for _, k := range missing {
				t.Errorf("customs misses %s on %s (govulncheck reports it)", k.id, k.module)
			}

			// What only customs reports is a difference to explain.
			var extras []pair
			for k := range ours {
				if _, ok := theirs[k]; !ok {
					extras = append(extras, k)
				}
			}
			sort.Slice(extras, func(i, j int) bool { return less(extras[i], extras[j]) })
			for _, k := range extras {
				why := otherPlatform(byID[k.id], k.module, goos, goarch)
				if why == "" {
					why = "no reason found in the record"
				}
				t.Errorf("customs reports %s on %s %s and govulncheck does not (%s)", k.id, k.module, ours[k].Package.Version, why)
			}

			// Without a platform, customs reports the same and the
			// advisories of other platforms, each restricted to them by
			// the record.
			var dropped []pair
			for k := range ours {
				if _, ok := everywhere[k]; !ok {
					t.Errorf("%s on %s is reported for the binary's platform only, not for an unknown platform", k.id, k.module)
				}
			}
			for k := range everywhere {
				if _, ok := ours[k]; ok {
					continue
				}
				dropped = append(dropped, k)
				why := otherPlatform(byID[k.id], k.module, goos, goarch)
				if why == "" {
					t.Errorf("%s on %s is left out on %s/%s for no reason found in the record", k.id, k.module, goos, goarch)
					continue
				}
				t.Logf("other platforms: %s on %s: %s", k.id, k.module, why)
			}
			sort.Slice(dropped, func(i, j int) bool { return less(dropped[i], dropped[j]) })
			if want := gp.otherPlatforms; !slices.Equal(dropped, want) {
				t.Errorf("advisories of other platforms left out = %v, want %v", dropped, want)
			}

			if p.Name() == "textlang" {
				for _, got := range []struct {
					who string
					ids []string
				}{{"customs", idsOf(ours, "golang.org/x/text")}, {"govulncheck", idsOf(theirs, "golang.org/x/text")}} {
					if !slices.Equal(got.ids, textV035) {
						t.Errorf("%s: golang.org/x/text v0.3.5 advisories = %v, want %v", got.who, got.ids, textV035)
					}
				}
			}
			summary = append(summary, fmt.Sprintf("%-10s %-9s %-11s %2d modules  govulncheck %3d  customs %3d  (other platforms %d)  (build %v, govulncheck %v)",
				p.Name(), gv.GoVersion, goos+"/"+goarch, len(pkgs), len(theirs), len(ours), len(dropped),
				built.Round(time.Millisecond), scanned.Round(time.Millisecond)))
		})
	}
	for _, s := range summary {
		t.Log(s)
	}
}

// findingsOf keys findings by (module, advisory); every one must be of a
// Go package.
func findingsOf(t *testing.T, fs []match.Finding) map[pair]match.Finding {
	t.Helper()
	out := make(map[pair]match.Finding, len(fs))
	for _, f := range fs {
		if f.Package.Ecosystem != inventory.Go {
			t.Errorf("finding %s on %s package %s", f.AdvisoryID, f.Package.Ecosystem, f.Package.Name)
			continue
		}
		out[pair{f.Package.Name, f.AdvisoryID}] = f
	}
	return out
}

// otherPlatform returns why advisory v does not affect module on a binary
// of goos/goarch, read from the record independently of vulndb/match, or
// "" when the record gives no reason: every affected entry of v for module
// has ecosystem_specific.imports, and none of them allows goos and goarch
// (govulncheck's rule, golang.org/x/vuln internal/vulncheck
// affectingVulnerabilities).
func otherPlatform(v *osv.Vulnerability, module, goos, goarch string) string {
	if v == nil {
		return ""
	}
	var platforms []string
	for _, a := range v.Affected {
		if a.Package.Name != module {
			continue
		}
		var es struct {
			Imports []struct {
				Path   string   `json:"path"`
				GOOS   []string `json:"goos"`
				GOARCH []string `json:"goarch"`
			} `json:"imports"`
		}
		if len(a.EcosystemSpecific) > 0 {
			if err := json.Unmarshal(a.EcosystemSpecific, &es); err != nil {
				return ""
			}
		}
		if len(es.Imports) == 0 {
			return "" // applies to every platform
		}
		for _, imp := range es.Imports {
			if matches(goos, imp.GOOS) && matches(goarch, imp.GOARCH) {
				return ""
			}
			if p := fmt.Sprintf("%s GOOS=%v GOARCH=%v", imp.Path, imp.GOOS, imp.GOARCH); !slices.Contains(platforms, p) {
				platforms = append(platforms, p)
			}
		}
	}
	if len(platforms) == 0 {
		return ""
	}
	return fmt.Sprintf("the advisory affects only %s, not the binary's %s/%s", strings.Join(platforms, ", "), goos, goarch)
}

// matches is govulncheck's matchesPlatformComponent: an empty list
// matches everything.
func matches(s string, list []string) bool {
	return s == "" || len(list) == 0 || slices.Contains(list, s)
}

// platform returns the GOOS and GOARCH a binary was built for, from its
// build settings (where govulncheck reads them).
func platform(t *testing.T, bin string) (goos, goarch string) {
	t.Helper()
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	if goos == "" || goarch == "" {
		t.Fatalf("%s: build settings name no GOOS/GOARCH", bin)
	}
	return goos, goarch
}

// installed normalizes a Go package version as the advisories write it
// ("v0.3.5" -> "0.3.5"; stdlib "go1.20" -> "1.20.0").
func installed(t *testing.T, module, version string) string {
	t.Helper()
	rules, err := ecosystem.For(inventory.Go)
	if err != nil {
		t.Fatal(err)
	}
	s, err := rules.NormalizeInstalled(module, version)
	if err != nil {
		t.Fatalf("%s %s: %v", module, version, err)
	}
	return s
}

func pairs(fs []crosscheck.ModuleFinding) map[pair]bool {
	out := make(map[pair]bool, len(fs))
	for _, f := range fs {
		out[pair{f.Module, f.OSV}] = true
	}
	return out
}

func maps(a, b map[pair]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func sortedPairs(m map[pair]bool) []pair {
	out := make([]pair, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i], out[j]) })
	return out
}

func less(a, b pair) bool {
	if a.module != b.module {
		return a.module < b.module
	}
	return a.id < b.id
}

func idsOf[V any](m map[pair]V, module string) []string {
	var out []string
	for k := range m {
		if k.module == module {
			out = append(out, k.id)
		}
	}
	sort.Strings(out)
	return out
}
