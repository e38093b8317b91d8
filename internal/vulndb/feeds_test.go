package vulndb

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/vulndb/match"
	"github.com/customs-dev/customs/internal/vulndb/severity"
)

// muslFinding matches musl 1.1.20-r4 on Alpine 3.9 and returns its
// ALPINE-CVE-2019-14697 finding.
func muslFinding(t *testing.T, s *Service) match.Finding {
	t.Helper()
	res, err := s.Match(context.Background(), &inventory.Inventory{Distro: alpine39,
		Packages: []inventory.Package{{Ecosystem: "Alpine", Name: "musl", Version: "1.1.20-r4"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Findings {
		if f.AdvisoryID == "ALPINE-CVE-2019-14697" {
			return f
		}
	}
	t.Fatalf("no ALPINE-CVE-2019-14697 finding in %+v", res.Findings)
	return match.Finding{}
}

// TestFeedsAndOverrides rates Alpine's advisories (which carry no severity)
// from CVE feeds, then overrides them.
func TestFeedsAndOverrides(t *testing.T) {
	ctx := context.Background()
	s := newService(t, Options{})
	importOK(t, s, Source{Name: "v3.9", Location: vulndata(t, "alpine-v3.9")})
	if f := muslFinding(t, s); f.Severity.Level != severity.Unknown || f.Severity.Source != severity.SourceUnknown {
		t.Fatalf("without a feed the finding is rated %+v, want unknown", f.Severity)
	}

	feeds := t.TempDir()
	for _, name := range []string{"nvd-2.0-sample.json", "cve5-CVE-2024-3094.json", "cve5-CVE-2023-44487.json", "cve5-rejected.json"} {
		b, err := os.ReadFile(feedSample(t, name))
		if err != nil {
			t.Fatal(err)
		}
		writeFiles(t, feeds, map[string]string{name: string(b)})
	}
	r := importOK(t, s, Source{Name: "feeds", Location: feeds})[0]
	if r.Added != 4 || len(r.Skipped) != 0 {
		// NVD rates CVE-2019-14697, CVE-2024-3094 and CVE-2024-99901
		// (99902 is not analysed yet); CVE 5 adds CVE-2023-44487.
		t.Fatalf("feed import = %+v, skipped %v", r, r.Skipped)
	}
	st, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.CVERatings != 4 {
		t.Errorf("status counts %d CVE ratings, want 4", st.CVERatings)
	}
	f := muslFinding(t, s)
	if f.Severity.Level != severity.Critical || f.Severity.Score != 9.8 || f.Severity.Source != severity.SourceCVEFeed ||
		f.Severity.Vector != "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" {
		t.Fatalf("rated through the NVD feed: %+v", f.Severity)
	}

	// An override by advisory id beats the feed; by CVE id it reaches
	// every advisory naming the CVE.
	rev := st.Revision
	o, err := s.SetOverride(ctx, "ALPINE-CVE-2019-14697", severity.Low, "musl's i386 math is not used here", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if o.Revision != rev+1 || o.Level != severity.Low {
		t.Fatalf("SetOverride = %+v", o)
	}
	if f := muslFinding(t, s); f.Severity.Level != severity.Low || f.Severity.Source != severity.SourceOverride ||
		!strings.Contains(f.Severity.Detail, "alice") || !strings.Contains(f.Severity.Detail, "i386") {
		t.Fatalf("overridden: %+v", f.Severity)
	}
	if _, err := s.DeleteOverride(ctx, "ALPINE-CVE-2019-14697"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetOverride(ctx, "CVE-2019-14697", severity.Medium, "", "bob"); err != nil {
		t.Fatal(err)
	}
	if f := muslFinding(t, s); f.Severity.Level != severity.Medium || f.Severity.Source != severity.SourceOverride {
		t.Fatalf("overridden by CVE id: %+v", f.Severity)
	}
	ovs, err := s.Overrides(ctx)
	if err != nil || len(ovs) != 1 || ovs[0].ID != "CVE-2019-14697" || ovs[0].CreatedBy != "bob" {
		t.Fatalf("Overrides = %+v, %v", ovs, err)
	}
	if _, err := s.DeleteOverride(ctx, "CVE-2019-14697"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteOverride(ctx, "CVE-2019-14697"); apperr.Code(err) != apperr.ENOTFOUND {
		t.Fatalf("deleting a missing override: %v", err)
	}
	for _, bad := range []struct {
		id, by string
		lvl    severity.Level
	}{{"", "a", severity.Low}, {"two words", "a", severity.Low}, {"CVE-1", "", severity.Low}, {"CVE-1", "a", severity.Level(42)}} {
		if _, err := s.SetOverride(ctx, bad.id, bad.lvl, "", bad.by); apperr.Code(err) != apperr.EINVALID {
			t.Errorf("SetOverride(%q, %v, by %q) = %v, want EINVALID", bad.id, bad.lvl, bad.by, err)
		}
	}

	// A feed whose rating of the CVE changes is a change of the advisory.
	_, before, err := s.Index(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nvd, _ := os.ReadFile(filepath.Join(feeds, "nvd-2.0-sample.json"))
	changed := strings.Replace(string(nvd), "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1)
	writeFiles(t, feeds, map[string]string{"nvd-2.0-sample.json": changed})
	if r := importOK(t, s, Source{Name: "feeds", Location: feeds})[0]; r.Updated != 1 {
		t.Fatalf("changed feed import = %+v", r)
	}
	res, err := s.AffectedSince(ctx, before)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changed) != 1 || res.Changed[0] != "CVE-2019-14697" || len(res.Advisories) != 1 || res.Advisories[0] != "ALPINE-CVE-2019-14697" {
		t.Fatalf("AffectedSince after the feed change = %+v", res)
	}
	if f := muslFinding(t, s); f.Severity.Level != severity.Low || f.Severity.Source != severity.SourceCVEFeed {
		t.Fatalf("after the feed changed: %+v", f.Severity)
	}
}

// TestReplicas: a second service over the same database sees an import
// made through the first within its revision check interval, once its
// background rebuild is done.
func TestReplicas(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	a := newService(t, Options{Store: db})
	b := newService(t, Options{Store: db, RevisionCheck: 3600e9}) // checks once an hour
	c := newService(t, Options{Store: db})                        // checks every time
	for _, s := range []*Service{a, b, c} {
		if ix, rev, err := s.Index(ctx); err != nil || ix.Len() != 0 || rev != 0 {
			t.Fatalf("empty index: %d advisories at revision %d, %v", ix.Len(), rev, err)
		}
	}
	importOK(t, a, Source{Location: vulndata(t, "alpine-v3.3")})
	// a reads its own write; c answers with the index it has while it
	// builds revision 1's.
	if ix, rev, _ := a.Index(ctx); ix.Len() != 453 || rev != 1 {
		t.Fatalf("importing replica a: %d advisories at revision %d", ix.Len(), rev)
	}
	if ix, rev, err := c.Index(ctx); err != nil || (rev == 0) != (ix.Len() == 0) || rev > 1 {
		t.Fatalf("replica c during its rebuild: %d advisories at revision %d, %v", ix.Len(), rev, err)
	}
	if ix, rev, err := c.IndexAt(ctx, 1); err != nil || ix.Len() != 453 || rev != 1 {
		t.Fatalf("replica c: %d advisories at revision %d, %v", ix.Len(), rev, err)
	}
	if ix, rev, _ := c.Index(ctx); ix.Len() != 453 || rev != 1 {
		t.Fatalf("replica c after its rebuild: %d advisories at revision %d", ix.Len(), rev)
	}
	if ix, rev, _ := b.Index(ctx); ix.Len() != 0 || rev != 0 {
		t.Fatalf("replica b rebuilt before its check interval: %d at %d", ix.Len(), rev)
	}
	ix1, _, _ := c.Index(ctx)
	ix2, _, _ := c.Index(ctx)
	if ix1 != ix2 {
		t.Fatal("the index was rebuilt without a change of revision")
	}
}
