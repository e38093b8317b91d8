package match

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/vulndb/severity"
)

var update = flag.Bool("update", false, "rewrite golden files")

var (
	realIndexOnce sync.Once
	realIndex     *Index
	realErrs      []error
)

// realIx builds the index of all real data once per test binary.
func realIx(t testing.TB) (*Index, []error) {
	t.Helper()
	advs, _ := loadReal(t)
	realIndexOnce.Do(func() { realIndex, realErrs = Build(advs, nil) })
	return realIndex, realErrs
}

// TestRealDataBuild builds the index over every real record and checks
// the exact set of problems against testdata/real-build-errors.golden.
// Each problem is a defect of the source data, explained there:
//
//   - PYSEC-2024-55 has modified "1-01-01T00:00:00Z" (a zero time written
//     with a one-digit year), which is not RFC 3339: osv.Parse rejects it.
//   - Alpine secdb fixed versions with typos apk-tools itself rejects
//     (apk_version_validate): a dot before -rN ("4.8.0.-r1"), ".rN" for
//     "-rN" ("0.8.21.r2", "10.2.22.r0"), a Debian-style "-N" revision
//     ("2.7.16-33", "4.10-1-r1", "57-1-r2", "1.11-20-r0"), a letter followed
//     by digits ("6.6.2p1-r0"), a stray letter segment ("2.15.r-r1").
//     The same CVE's records of other Alpine releases still load.
//   - PyPA fixed versions that are not PEP 440 versions ("2019-09-12",
//     "0.2.0-n653").
func TestRealDataBuild(t *testing.T) {
	advs, bad := loadReal(t)
	ix, errs := realIx(t)
	var lines []string
	for name, err := range bad {
		lines = append(lines, "parse "+name+": "+err.Error())
	}
	for _, err := range errs {
		var re *RecordError
		if !errors.As(err, &re) || re.ID == "" || re.Field == "" || !re.Dropped {
			t.Errorf("error %v is not a *RecordError naming a record, a field and that it was left out", err)
		}
		lines = append(lines, "build "+err.Error())
	}
	sort.Strings(lines)
	got := strings.Join(lines, "\n") + "\n"
	golden := filepath.Join("testdata", "real-build-errors.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("problems with the real data differ from %s (run with -update to accept):\n%s", golden, got)
	}

	// Every id is in the index but for the withdrawn ones and those all of
	// whose copies (one per Alpine release export) were left out above.
	copies := make(map[string]int)
	withdrawn := make(map[string]bool)
	for _, v := range advs {
		if v.IsWithdrawn() {
			withdrawn[v.ID] = true
			continue
		}
		copies[v.ID]++
	}
	for _, err := range errs {
		var re *RecordError
		if errors.As(err, &re) && re.Dropped {
			copies[re.ID]--
		}
	}
	ids := make(map[string]bool)
	for id, n := range copies {
		if n > 0 {
			ids[id] = true
		}
	}
	for id := range ids {
		if _, ok := ix.Advisory(id); !ok {
			t.Errorf("%s is missing from the index", id)
		}
	}
	for id := range withdrawn {
		if _, ok := ix.Advisory(id); ok && !ids[id] {
			t.Errorf("withdrawn %s is in the index", id)
		}
	}
	if ix.Len() != len(ids) {
		t.Errorf("Len() = %d, want %d", ix.Len(), len(ids))
	}
	// 4,291 Go + 2,661 PyPI records less 27 withdrawn and one that does
	// not parse, and the distinct Alpine CVEs of nine release exports.
	if len(withdrawn) != 27 {
		t.Errorf("%d withdrawn records, want 27 (17 Go, 10 PyPI)", len(withdrawn))
	}
}

// alpine returns an inventory of one Alpine release.
func alpine(version string, pkgs ...inventory.Package) *inventory.Inventory {
	return &inventory.Inventory{Distro: &inventory.Distro{ID: "alpine", VersionID: version}, Packages: pkgs}
}

type want struct {
	id     string
	fixed  []string
	status Status
}

func checkFindings(t *testing.T, what string, got []Finding, wants ...want) {
	t.Helper()
	if len(got) != len(wants) {
		var ids []string
		for _, f := range got {
			ids = append(ids, f.AdvisoryID)
		}
		t.Errorf("%s: %d findings %v, want %d", what, len(got), ids, len(wants))
		return
	}
	for i, w := range wants {
		f := got[i]
		if f.AdvisoryID != w.id || !slices.Equal(f.Fixed, w.fixed) || f.Status != w.status {
			t.Errorf("%s: finding %d = %s fixed %v %s, want %s fixed %v %s", what, i, f.AdvisoryID, f.Fixed, f.Status, w.id, w.fixed, w.status)
		}
	}
}

func TestRealAlpine(t *testing.T) {
	ix, _ := realIx(t)
	musl := func(v string) inventory.Package {
		return inventory.Package{Ecosystem: inventory.Alpine, Name: "musl", Version: v}
	}

	got := ix.Match(alpine("3.9.6", musl("1.1.20-r4")))
	checkFindings(t, "musl 1.1.20-r4 on 3.9", got, want{"ALPINE-CVE-2019-14697", []string{"1.1.20-r5"}, StatusFixed})
	if len(got) == 1 {
		f := got[0]
		if !slices.Equal(f.Aliases, []string{"CVE-2019-14697"}) || f.Package.Name != "musl" ||
			f.Severity.Level != severity.Unknown || f.Severity.Source != severity.SourceUnknown {
			t.Errorf("finding = %+v", f)
		}
	}
	checkFindings(t, "musl 1.1.20-r5 on 3.9", ix.Match(alpine("3.9.6", musl("1.1.20-r5"))))

	// On 3.11 only the v3.11 record applies: its fix is 1.1.23-r2, so
	// 1.1.20-r5 (fixed on 3.9) is still vulnerable there.
	for _, v := range []string{"1.1.20-r4", "1.1.20-r5", "1.1.22-r3"} {
		checkFindings(t, "musl "+v+" on 3.11", ix.Match(alpine("3.11.6", musl(v))),
			want{"ALPINE-CVE-2019-14697", []string{"1.1.23-r2"}, StatusFixed})
	}
	checkFindings(t, "musl 1.1.24-r2 on 3.11", ix.Match(alpine("3.11.6", musl("1.1.24-r2"))))
	// No data for 3.18: a v3.9 record must not match it.
	checkFindings(t, "musl 1.1.20-r4 on 3.18", ix.Match(alpine("3.18.4", musl("1.1.20-r4"))))
	// Without a distribution, release-scoped records do not match.
	checkFindings(t, "musl without distro", ix.Match(&inventory.Inventory{Packages: []inventory.Package{musl("1.1.20-r4")}}))

	// A binary package of the musl origin, matched through its source.
	utils := inventory.Package{Ecosystem: inventory.Alpine, Name: "musl-utils", Version: "1.1.20-r4", SourceName: "musl"}
	got = ix.Match(alpine("3.9.6", utils))
	checkFindings(t, "musl-utils on 3.9", got, want{"ALPINE-CVE-2019-14697", []string{"1.1.20-r5"}, StatusFixed})
	if len(got) == 1 && got[0].Package.Name != "musl-utils" {
		t.Errorf("finding names package %q, want the binary musl-utils", got[0].Package.Name)
	}
}

func TestRealGo(t *testing.T) {
	ix, _ := realIx(t)
	text := func(v string) inventory.Package {
		return inventory.Package{Ecosystem: inventory.Go, Name: "golang.org/x/text", Version: v}
	}
	// From the records: GO-2020-0015 (fixed 0.3.3), GO-2021-0113 (0.3.7),
	// GO-2022-1059 (0.3.8), GO-2026-5970 (0.39.0), all introduced at 0.
	checkFindings(t, "x/text v0.3.5", ix.Match(&inventory.Inventory{Packages: []inventory.Package{text("v0.3.5")}}),
		want{"GO-2021-0113", []string{"0.3.7"}, StatusFixed},
		want{"GO-2022-1059", []string{"0.3.8"}, StatusFixed},
		want{"GO-2026-5970", []string{"0.39.0"}, StatusFixed},
	)
	checkFindings(t, "x/text v0.3.2", ix.MatchPackage(nil, text("v0.3.2")),
		want{"GO-2020-0015", []string{"0.3.3"}, StatusFixed},
		want{"GO-2021-0113", []string{"0.3.7"}, StatusFixed},
		want{"GO-2022-1059", []string{"0.3.8"}, StatusFixed},
		want{"GO-2026-5970", []string{"0.39.0"}, StatusFixed},
	)
	checkFindings(t, "x/text v0.39.0", ix.MatchPackage(nil, text("v0.39.0")))
	// As govulncheck: a module without a version matches nothing.
	checkFindings(t, "x/text (no version)", ix.MatchPackage(nil, text("")))

	// The stdlib at a Go release tag. GO-2021-0067: introduced 1.16.0-0,
	// fixed 1.16.1.
	has := func(pkg inventory.Package, id string) bool {
		return slices.ContainsFunc(ix.MatchPackage(nil, pkg), func(f Finding) bool { return f.AdvisoryID == id })
	}
	std := func(v string) inventory.Package {
		return inventory.Package{Ecosystem: inventory.Go, Name: "stdlib", Version: v}
	}
	for v, affected := range map[string]bool{
		"go1.16": true, "go1.16rc1": true, "go1.16beta1": true, "go1.16.1": false, "go1.15.8": false, "go1.17": false,
	} {
		if has(std(v), "GO-2021-0067") != affected {
			t.Errorf("stdlib %s: GO-2021-0067 matched = %v, want %v", v, !affected, affected)
		}
	}
	// Platforms: a Go 1.20 linux/amd64 binary's stdlib has every finding
	// of a binary of unknown platform but four: the advisories about
	// windows (path/filepath, internal/safefilepath, syscall and os) and
	// ppc64le (crypto/internal/nistec) only. test/crosscheck checks the
	// same against govulncheck.
	onPlatform := func(platform string) []string {
		p := std("go1.20")
		p.Platform = platform
		var ids []string
		for _, f := range ix.MatchPackage(nil, p) {
			ids = append(ids, f.AdvisoryID)
		}
		slices.Sort(ids)
		return ids
	}
	anywhere, linux := onPlatform(""), onPlatform("linux/amd64")
	var dropped []string
	for _, id := range anywhere {
		if !slices.Contains(linux, id) {
			dropped = append(dropped, id)
		}
	}
	if want := []string{"GO-2023-1568", "GO-2023-2185", "GO-2025-3447", "GO-2025-3750"}; !slices.Equal(dropped, want) ||
		len(linux) != len(anywhere)-len(want) {
		t.Errorf("stdlib go1.20 on linux/amd64 leaves out %v of %d findings (has %d), want %v", dropped, len(anywhere), len(linux), want)
	}
	for platform, want := range map[string][]string{
		"windows/amd64": {"GO-2023-1568", "GO-2023-2185", "GO-2025-3750"},
		"linux/ppc64le": {"GO-2025-3447"},
		"windows/386":   {"GO-2023-1568", "GO-2023-2185", "GO-2025-3750"},
	} {
		got := onPlatform(platform)
		for _, id := range dropped {
			if slices.Contains(got, id) != slices.Contains(want, id) {
				t.Errorf("stdlib go1.20 on %s: %s matched = %v, want %v", platform, id, !slices.Contains(want, id), slices.Contains(want, id))
			}
		}
	}
	// Modules too: GO-2026-5024 is about golang.org/x/sys/windows.
	xsys := func(platform string) inventory.Package {
		return inventory.Package{Ecosystem: inventory.Go, Name: "golang.org/x/sys", Version: "v0.0.0-20220704084225-05e143d24a9e", Platform: platform}
	}
	if has(xsys("linux/amd64"), "GO-2026-5024") || !has(xsys("windows/arm64"), "GO-2026-5024") || !has(xsys(""), "GO-2026-5024") {
		t.Errorf("GO-2026-5024 on golang.org/x/sys: want it for windows and unknown platforms only")
	}

	// Every finding of a real Go 1.21.3 binary is a stdlib advisory whose
	// fix is above 1.21.3 (or that lists none).
	for _, f := range ix.MatchPackage(nil, std("go1.21.3")) {
		if f.Status == StatusFixed && len(f.Fixed) == 0 {
			t.Errorf("%s: fixed without versions", f.AdvisoryID)
		}
	}
}

func TestRealPyPI(t *testing.T) {
	ix, _ := realIx(t)
	py := func(name, v string) inventory.Package {
		return inventory.Package{Ecosystem: inventory.PyPI, Name: name, Version: v}
	}
	// PYSEC-2012-1 is fixed in 1.6.5.post1; PYSEC-2020-216 affects every
	// version. The name is matched after PEP 503 normalization.
	checkFindings(t, "Beaker 1.6.5", ix.MatchPackage(nil, py("Beaker", "1.6.5")),
		want{"PYSEC-2012-1", []string{"1.6.5.post1"}, StatusFixed},
		want{"PYSEC-2020-216", nil, StatusNoFix})
	checkFindings(t, "beaker 1.6.5.post1.dev0 (dev of the post release sorts before it)", ix.MatchPackage(nil, py("beaker", "1.6.5.post1.dev0")),
		want{"PYSEC-2012-1", []string{"1.6.5.post1"}, StatusFixed},
		want{"PYSEC-2020-216", nil, StatusNoFix})
	checkFindings(t, "beaker 1.6.5-1 (= 1.6.5.post1)", ix.MatchPackage(nil, py("beaker", "1.6.5-1")),
		want{"PYSEC-2020-216", nil, StatusNoFix})
	// oauth2: PYSEC-2014-85 and -86 are fixed in 1.9rc1.
	for v, affected := range map[string]bool{
		"1.5.211": true, "1.9.dev0": true, "1.9a1": true, "1.9rc0": true, "1.9c1": false, "1.9rc1": false, "1.9": false, "1.9.0.post1": false,
	} {
		got := ix.MatchPackage(nil, py("oauth2", v))
		if affected {
			checkFindings(t, "oauth2 "+v, got,
				want{"PYSEC-2014-85", []string{"1.9rc1"}, StatusFixed}, want{"PYSEC-2014-86", []string{"1.9rc1"}, StatusFixed})
		} else {
			checkFindings(t, "oauth2 "+v, got)
		}
	}
	// mercurial's PYSEC-2016-28 is fixed in "3.8-rc" (PEP 440: 3.8rc0).
	hasID := func(got []Finding, id string) bool {
		return slices.ContainsFunc(got, func(f Finding) bool { return f.AdvisoryID == id })
	}
	if !hasID(ix.MatchPackage(nil, py("mercurial", "3.7.3")), "PYSEC-2016-28") {
		t.Error("mercurial 3.7.3: PYSEC-2016-28 not matched")
	}
	if hasID(ix.MatchPackage(nil, py("mercurial", "3.8rc0")), "PYSEC-2016-28") {
		t.Error("mercurial 3.8rc0: PYSEC-2016-28 matched, but 3.8-rc is its fix")
	}

	// last_affected: PYSEC-2022-42969 affects py up to and including 1.11.0.
	checkFindings(t, "py 1.11.0", ix.MatchPackage(nil, py("py", "1.11.0")), want{"PYSEC-2022-42969", nil, StatusNoFix})
	checkFindings(t, "py 1.11.1", ix.MatchPackage(nil, py("py", "1.11.1")))

	// A versions list only: PYSEC-2024-1 lists gratient "0.5", matched as
	// that exact string.
	got := ix.MatchPackage(nil, py("gratient", "0.5"))
	checkFindings(t, "gratient 0.5", got, want{"PYSEC-2024-1", nil, StatusNoFix})
	if len(got) == 1 && got[0].Summary != "gratient 0.5 contains credential harvesting code" {
		t.Errorf("summary = %q", got[0].Summary)
	}
	checkFindings(t, "gratient 0.6", ix.MatchPackage(nil, py("gratient", "0.6")))

	// Withdrawn: PYSEC-2022-15 (loguru, no ranges: it would match every
	// version) is left out; PYSEC-2022-14 (fixed 0.5.3) is not.
	checkFindings(t, "loguru 0.5.2", ix.MatchPackage(nil, py("loguru", "0.5.2")), want{"PYSEC-2022-14", []string{"0.5.3"}, StatusFixed})
	checkFindings(t, "loguru 0.5.3", ix.MatchPackage(nil, py("loguru", "0.5.3")))
	if _, ok := ix.Advisory("PYSEC-2022-15"); ok {
		t.Error("withdrawn PYSEC-2022-15 is in the index")
	}
}

func TestRealKeys(t *testing.T) {
	ix, _ := realIx(t)
	if got := ix.Keys("ALPINE-CVE-2019-14697"); !slices.Equal(got, []PackageKey{{inventory.Alpine, "musl"}}) {
		t.Errorf("Keys(ALPINE-CVE-2019-14697) = %v", got)
	}
	if got := ix.Keys("GO-2021-0113"); !slices.Equal(got, []PackageKey{{inventory.Go, "golang.org/x/text"}}) {
		t.Errorf("Keys(GO-2021-0113) = %v", got)
	}
	if got := ix.Keys("NOPE-1"); got != nil {
		t.Errorf("Keys(unknown) = %v", got)
	}
	// The merged Alpine advisory holds each release's entry.
	v, ok := ix.Advisory("ALPINE-CVE-2019-14697")
	if !ok {
		t.Fatal("ALPINE-CVE-2019-14697 missing")
	}
	var ecos []string
	for _, a := range v.Affected {
		ecos = append(ecos, a.Package.Ecosystem)
	}
	sort.Strings(ecos)
	if want := []string{"Alpine:v3.10", "Alpine:v3.11", "Alpine:v3.7", "Alpine:v3.8", "Alpine:v3.9"}; !slices.Equal(ecos, want) {
		t.Errorf("merged ecosystems = %v, want %v", ecos, want)
	}
}
