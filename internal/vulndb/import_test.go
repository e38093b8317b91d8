package vulndb

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/vulndb/match"
	"github.com/customs-dev/customs/internal/vulndb/severity"
)

// goRecord is an OSV record of Go module mod, affected before fixed.
func goRecord(id, mod, fixed string, aliases ...string) string {
	al := ""
	if len(aliases) > 0 {
		al = `"aliases": ["` + strings.Join(aliases, `", "`) + `"],`
	}
	return fmt.Sprintf(`{"schema_version": "1.6.0", "id": %q, "modified": "2024-01-02T03:04:05Z", %s
  "summary": "a problem in %s",
  "affected": [{"package": {"ecosystem": "Go", "name": %q},
    "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": %q}]}]}]}`, id, al, mod, mod, fixed)
}

// ids returns the advisory ids of findings.
func ids(fs []match.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.AdvisoryID)
	}
	return out
}

// matchIDs matches one package and returns the advisory ids found.
func matchIDs(t *testing.T, s *Service, d *inventory.Distro, pkgs ...inventory.Package) []string {
	t.Helper()
	res, err := s.Match(context.Background(), &inventory.Inventory{Distro: d, Packages: pkgs})
	if err != nil {
		t.Fatal(err)
	}
	got := ids(res.Findings)
	slices.Sort(got)
	return got
}

var (
	alpine39  = &inventory.Distro{ID: "alpine", VersionID: "3.9.6"}
	alpine311 = &inventory.Distro{ID: "alpine", VersionID: "3.11.3"}
)

// TestImportTestdata imports every real export of testdata/vulndata on
// each store, matches real packages against it, and imports it again.
func TestImportTestdata(t *testing.T) {
	for _, drv := range drivers {
		t.Run(drv.name, func(t *testing.T) {
			ctx := context.Background()
			s := newService(t, Options{Store: drv.open(t), Sources: allSources(t)})
			rs, err := s.Update(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// The real exports hold a few records whose versions are not
			// versions of their ecosystem ("1.7.5.-r1", "2019-09-12") and
			// one PyPI record with a year-1 time; each is skipped and named.
			wantSkipped := map[string]int{"go": 0, "pypi": 3, "alpine-v3.3": 4, "alpine-v3.4": 3, "alpine-v3.5": 3,
				"alpine-v3.6": 3, "alpine-v3.7": 4, "alpine-v3.8": 15, "alpine-v3.9": 4, "alpine-v3.10": 1, "alpine-v3.11": 7}
			total := 0
			for i, r := range rs {
				if r.Revision != int64(i+1) || r.Removed != 0 || r.Updated != 0 || r.Added+len(r.Skipped) != r.Read || r.Err != nil {
					t.Errorf("%s: %+v", r.Source, r)
				}
				if len(r.Skipped) != wantSkipped[r.Source] {
					t.Errorf("%s: %d records skipped, want %d: %v", r.Source, len(r.Skipped), wantSkipped[r.Source], r.Skipped)
				}
				for _, e := range r.Skipped {
					if e.Source != r.Source || e.File == "" || !strings.Contains(e.Error(), r.Source+": ") {
						t.Errorf("skipped record error %+v does not name its source and file", e)
					}
				}
				total += r.Added
			}
			if rs[0].Added != 4291 {
				t.Errorf("Go: %d records added, want all 4291", rs[0].Added)
			}
			skippedMention(t, rs[1], "PYSEC-2019-125.json", "affected[0].ranges[0].events[1].fixed", `"2019-09-12" is not a valid PyPI version`)
			skippedMention(t, rs[8], "ALPINE-CVE-2018-10188", "4.8.0.-r1")

			st, err := s.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			counts := map[string]int{}
			for _, e := range st.Ecosystems {
				counts[e.Ecosystem] = e.Advisories
			}
			if counts["Go"] != 4291 || counts["PyPI"] != 2658 || counts["Alpine:v3.9"] != 1554 || counts["Alpine:v3.11"] != 1897 ||
				counts["Alpine"] != 2441 || len(counts) != 12 {
				t.Errorf("counts per ecosystem = %v", counts)
			}
			if st.Revision != 11 || st.Advisories != 4291+2658+2441 || len(st.Sources) != 11 || !st.Sources[0].Configured ||
				st.Sources[0].LastSuccess.IsZero() || st.UpdatedAt.IsZero() {
				t.Errorf("status = %+v", st)
			}

			// musl 1.1.20-r4 on Alpine 3.9 has CVE-2019-14697, fixed in -r5.
			res, err := s.Match(ctx, &inventory.Inventory{Distro: alpine39,
				Packages: []inventory.Package{{Ecosystem: "Alpine", Name: "musl", Version: "1.1.20-r4"}}})
			if err != nil {
				t.Fatal(err)
			}
			var f *match.Finding
			for i := range res.Findings {
				if res.Findings[i].AdvisoryID == "ALPINE-CVE-2019-14697" {
					f = &res.Findings[i]
				}
			}
			if f == nil || !slices.Equal(f.Fixed, []string{"1.1.20-r5"}) || f.Status != match.StatusFixed || res.Revision != 11 {
				t.Fatalf("musl 1.1.20-r4 on Alpine 3.9: %+v (revision %d)", res.Findings, res.Revision)
			}
			if got := matchIDs(t, s, alpine39, inventory.Package{Ecosystem: "Alpine", Name: "musl", Version: "1.1.20-r5"}); slices.Contains(got, "ALPINE-CVE-2019-14697") {
				t.Errorf("musl 1.1.20-r5 matched %v", got)
			}
			if got := matchIDs(t, s, nil, inventory.Package{Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.5"}); len(got) == 0 {
				t.Error("golang.org/x/text v0.3.5 matched nothing")
			}

			// The same exports again are not even read: their content hash
			// is their validator. Forced, they are read and change nothing.
			rs, err = s.Update(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				if !r.Unchanged || r.Read != 0 || r.Changed() || r.Revision != 11 {
					t.Errorf("re-import of %s: %+v", r.Source, r)
				}
			}
			forced := allSources(t)
			for i := range forced {
				forced[i].Force = true
			}
			rs, err = s.Import(ctx, forced...)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				if r.Unchanged || r.Read == 0 || r.Changed() || r.Revision != 11 || len(r.Skipped) != wantSkipped[r.Source] {
					t.Errorf("forced re-import of %s: %+v", r.Source, r)
				}
			}
			adv, err := s.Advisory(ctx, "ALPINE-CVE-2019-14697")
			if err != nil {
				t.Fatal(err)
			}
			if len(adv.Sources) != 5 || adv.Record == nil || len(adv.Record.Affected) != 5 {
				// alpine-v3.7 to v3.11 each hold it.
				t.Errorf("Advisory(ALPINE-CVE-2019-14697) has %d sources and record %+v", len(adv.Sources), adv.Record)
			}
			_, err = s.Advisory(ctx, "GO-0000-0000")
			if apperr.Code(err) != apperr.ENOTFOUND {
				t.Errorf("Advisory of an unknown id: %v", err)
			}
		})
	}
}

// TestIncremental changes a directory source record by record.
func TestIncremental(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"GO-1.json":        goRecord("GO-1", "example.com/a", "1.2.0", "CVE-2024-0001"),
		"sub/GO-2.json":    goRecord("GO-2", "example.com/b", "2.0.0"),
		"sub/GO-3.yaml":    "id: GO-3\nmodified: 2024-01-02T03:04:05Z\naffected:\n  - package: {ecosystem: Go, name: example.com/c}\n    ranges: [{type: SEMVER, events: [{introduced: '0'}, {fixed: 1.0.0}]}]\n",
		"README.md":        "not a record",
		".git/GO-9.json":   "hidden: never read",
		"nested/all.zip":   string(zipOf(t, map[string]string{"GO-4.json": goRecord("GO-4", "example.com/d", "4.0.0")})),
		"nested/LICENSE":   "CC-BY-4.0",
		"nested/x.txt":     "ignored",
		"GO-5.json":        goRecord("GO-5", "example.com/e", "5.0.0"),
		"deep/er/GO-6.yml": "id: GO-6\nmodified: 2024-01-02T03:04:05Z\n",
	})
	s := newService(t, Options{})
	src := Source{Name: "dir", Location: dir}
	r := importOK(t, s, src)[0]
	if r.Read != 6 || r.Added != 6 || r.Revision != 1 || len(r.Skipped) != 0 {
		t.Fatalf("first import = %+v, skipped %v", r, r.Skipped)
	}
	pkg := func(mod, v string) inventory.Package {
		return inventory.Package{Ecosystem: "Go", Name: mod, Version: v}
	}
	if got := matchIDs(t, s, nil, pkg("example.com/a", "1.0.0"), pkg("example.com/c", "0.9.0"), pkg("example.com/d", "3.0.0")); !slices.Equal(got, []string{"GO-1", "GO-3", "GO-4"}) {
		t.Fatalf("matched %v", got)
	}

	// Change one, remove one, add one; a record that turns bad keeps its
	// stored version.
	writeFiles(t, dir, map[string]string{
		"GO-1.json": goRecord("GO-1", "example.com/a", "1.1.0", "CVE-2024-0001"),
		"GO-7.json": goRecord("GO-7", "example.com/g", "7.0.0"),
		"GO-5.json": `{"id": "GO-5", "modified": "2024-01-02T03:04:05Z", "affected": [{"package": {"ecosystem": "Go", "name": "example.com/e"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "not a version"}]}]}]}`,
	})
	if err := os.Remove(filepath.Join(dir, "sub", "GO-2.json")); err != nil {
		t.Fatal(err)
	}
	r = importOK(t, s, src)[0]
	if r.Added != 1 || r.Updated != 1 || r.Removed != 1 || r.Revision != 2 || len(r.Skipped) != 1 {
		t.Fatalf("second import = %+v, skipped %v", r, r.Skipped)
	}
	skippedMention(t, r, "dir: GO-5.json: GO-5", "fixed", "not a version")
	if got := matchIDs(t, s, nil, pkg("example.com/a", "1.0.0"), pkg("example.com/a", "1.1.0"), pkg("example.com/b", "1.0.0"),
		pkg("example.com/e", "1.0.0"), pkg("example.com/g", "1.0.0")); !slices.Equal(got, []string{"GO-1", "GO-5", "GO-7"}) {
		t.Fatalf("after changes matched %v (GO-1 fixed in 1.1.0 now, GO-2 gone, GO-5's old version kept, GO-7 new)", got)
	}
	changes, err := s.st.VulnChangesSince(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 3 || changes[0].ID != "GO-1" || changes[1].ID != "GO-2" || changes[2].ID != "GO-7" {
		t.Fatalf("changes since 1 = %+v", changes)
	}
	// A YAML record is stored as JSON.
	adv, err := s.Advisory(ctx, "GO-3")
	if err != nil || !strings.HasPrefix(string(adv.Sources[0].Record), "{") {
		t.Fatalf("Advisory(GO-3) = %+v, %v", adv, err)
	}
}

// TestSourceNames checks how sources without a name are named.
func TestSourceNames(t *testing.T) {
	loc := vulndata(t, "alpine-v3.3")
	s := newService(t, Options{Sources: []Source{{Name: "a33", Location: loc}}})
	if r := importOK(t, s, Source{Location: loc})[0]; r.Source != "a33" {
		t.Errorf("a configured location is imported as %q, want its configured name", r.Source)
	}
	rel, err := filepath.Rel(mustGetwd(t), vulndata(t, "alpine-v3.4"))
	if err != nil {
		t.Fatal(err)
	}
	if r := importOK(t, s, Source{Location: rel})[0]; r.Source != vulndata(t, "alpine-v3.4") {
		t.Errorf("an ad-hoc path is named %q, want its absolute path", r.Source)
	}
	for _, bad := range [][]Source{{{Name: "x", Location: "/a"}, {Name: "x", Location: "/b"}}, {{Location: "/a"}, {Name: "y", Location: "/a"}}, {{Name: "z"}}} {
		if _, err := Open(Options{Store: s.st, Sources: bad}); apperr.Code(err) != apperr.EINVALID {
			t.Errorf("Open with sources %+v: %v, want EINVALID", bad, err)
		}
	}
	if _, err := newService(t, Options{}).Update(context.Background()); apperr.Code(err) != apperr.EINVALID {
		t.Errorf("Update without sources: %v", err)
	}
}

func mustGetwd(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// TestInventoriesAndAffected stores inventories and asks which of them
// advisories affect, directly and through CVE ids.
func TestInventoriesAndAffected(t *testing.T) {
	for _, drv := range drivers {
		t.Run(drv.name, func(t *testing.T) {
			ctx := context.Background()
			s := newService(t, Options{Store: drv.open(t)})
			importOK(t, s, Source{Name: "v3.9", Location: vulndata(t, "alpine-v3.9")}, Source{Name: "v3.11", Location: vulndata(t, "alpine-v3.11")})
			musl := func(v string) []inventory.Package {
				return []inventory.Package{
					{Ecosystem: "Alpine", Name: "musl", Version: v},
					{Ecosystem: "Alpine", Name: "musl-utils", Version: v, SourceName: "musl"},
					{Ecosystem: "Alpine", Name: "busybox", Version: "1.29.3-r10"},
				}
			}
			put := func(digest string, d *inventory.Distro, pkgs []inventory.Package) {
				if err := s.PutInventory(ctx, store.InventoryKey{Digest: digest, Platform: "linux/amd64"}, &inventory.Inventory{Distro: d, Packages: pkgs}); err != nil {
					t.Fatal(err)
				}
			}
			put("sha256:old39", alpine39, musl("1.1.20-r4"))
			put("sha256:new39", alpine39, musl("1.1.20-r5"))
			put("sha256:old311", alpine311, musl("1.1.20-r4")) // 3.11 records: fixed in 1.1.23-r2
			put("sha256:nodistro", nil, musl("1.1.20-r4"))

			res, err := s.Affected(ctx, []string{"ALPINE-CVE-2019-14697"})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, inv := range res.Inventories {
				for _, f := range inv.Findings {
					got = append(got, fmt.Sprintf("%s %s %s %v", inv.Key.Digest, f.AdvisoryID, f.Package.Name, f.Fixed))
				}
			}
			want := []string{
				"sha256:old311 ALPINE-CVE-2019-14697 musl [1.1.23-r2]",
				"sha256:old311 ALPINE-CVE-2019-14697 musl-utils [1.1.23-r2]",
				"sha256:old39 ALPINE-CVE-2019-14697 musl [1.1.20-r5]",
				"sha256:old39 ALPINE-CVE-2019-14697 musl-utils [1.1.20-r5]",
			}
			if !slices.Equal(got, want) || !slices.Equal(res.Advisories, []string{"ALPINE-CVE-2019-14697"}) || res.Revision != 2 {
				t.Fatalf("Affected(ALPINE-CVE-2019-14697) = %q (advisories %v, revision %d), want %q", got, res.Advisories, res.Revision, want)
			}
			// The same through the CVE id the Alpine records name upstream.
			byCVE, err := s.Affected(ctx, []string{"CVE-2019-14697", "NOT-AN-ID"})
			if err != nil {
				t.Fatal(err)
			}
			if len(byCVE.Inventories) != 2 || !slices.Equal(byCVE.Advisories, []string{"ALPINE-CVE-2019-14697"}) {
				t.Fatalf("Affected(CVE-2019-14697) = %+v", byCVE)
			}
			if none, err := s.Affected(ctx, []string{"NOT-AN-ID"}); err != nil || len(none.Inventories) != 0 || len(none.Advisories) != 0 {
				t.Fatalf("Affected(NOT-AN-ID) = %+v, %v", none, err)
			}

			// An override of the CVE changes the advisory: AffectedSince
			// finds the inventories again, with the new severity.
			since := res.Revision
			if _, err := s.SetOverride(ctx, "CVE-2019-14697", severity.Critical, "exposed to the internet", "alice"); err != nil {
				t.Fatal(err)
			}
			again, err := s.AffectedSince(ctx, since)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(again.Changed, []string{"CVE-2019-14697"}) || len(again.Inventories) != 2 || again.Revision != since+1 {
				t.Fatalf("AffectedSince(%d) = %+v", since, again)
			}
			f := again.Inventories[0].Findings[0]
			if f.Severity.Level.String() != "critical" || f.Severity.Source != "override" || !strings.Contains(f.Severity.Detail, "alice") {
				t.Fatalf("finding after the override: %+v", f.Severity)
			}
			if nothing, err := s.AffectedSince(ctx, again.Revision); err != nil || len(nothing.Changed) != 0 || len(nothing.Inventories) != 0 {
				t.Fatalf("AffectedSince(current) = %+v, %v", nothing, err)
			}
			if _, err := s.AffectedSince(ctx, -1); apperr.Code(err) != apperr.EINVALID {
				t.Fatalf("AffectedSince(-1): %v", err)
			}
		})
	}
}
