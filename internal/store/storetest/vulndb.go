package storetest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// rec is an OSV record with content s (its hash is derived from s).
func rec(id, content string, ecosystems ...string) store.VulnRecord {
	return store.VulnRecord{Kind: store.VulnOSV, ID: id, Hash: "h:" + content, Data: []byte(content),
		Ecosystems: ecosystems, Modified: t0.Add(-time.Hour)}
}

// fullImport is an import of exactly records.
func fullImport(source string, records ...store.VulnRecord) *store.VulnImport {
	imp := &store.VulnImport{Source: source, Location: "/data/" + source, Seen: map[store.VulnKey]string{}, Records: records}
	for _, r := range records {
		imp.Seen[store.VulnKey{Kind: r.Kind, ID: r.ID}] = r.Hash
	}
	return imp
}

func (e *env) importVulns(imp *store.VulnImport) store.VulnImportResult {
	e.t.Helper()
	res, err := e.s.ImportVulns(e.ctx, imp)
	ok(e.t, err)
	return res
}

func (e *env) revision() int64 {
	e.t.Helper()
	st, err := e.s.VulnState(e.ctx)
	ok(e.t, err)
	return st.Revision
}

// recordSet returns "kind id source data" of every stored record.
func (e *env) recordSet() []string {
	e.t.Helper()
	var out []string
	_, err := e.s.ScanVulnRecords(e.ctx, func(r store.VulnRecord) error {
		out = append(out, fmt.Sprintf("%s %s %s %s", r.Kind, r.ID, r.Source, r.Data))
		return nil
	})
	ok(e.t, err)
	return out
}

func (e *env) changes(since int64) []string {
	e.t.Helper()
	cs, err := e.s.VulnChangesSince(e.ctx, since)
	ok(e.t, err)
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%d %s %s", c.Revision, c.Kind, c.ID))
	}
	return out
}

func wantStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s =\n  %q\nwant\n  %q", what, got, want)
	}
}

var vulnTests = []test{
	{"empty database", func(t *testing.T, e *env) {
		st, err := e.s.VulnState(e.ctx)
		ok(t, err)
		if st.Revision != 0 || !st.UpdatedAt.IsZero() {
			t.Fatalf("VulnState of an empty database = %+v", st)
		}
		srcs, err := e.s.VulnSources(e.ctx)
		ok(t, err)
		if len(srcs) != 0 {
			t.Fatalf("VulnSources = %+v", srcs)
		}
		wantStrings(t, "records", e.recordSet(), nil)
		counts, err := e.s.VulnCounts(e.ctx)
		ok(t, err)
		if len(counts.Ecosystems) != 0 || counts.Advisories != 0 || counts.CVEs != 0 {
			t.Fatalf("VulnCounts = %+v", counts)
		}
	}},
	{"import, then incremental changes", func(t *testing.T, e *env) {
		res := e.importVulns(fullImport("alpine", rec("A-1", "a1", "Alpine", "Alpine:v3.9"), rec("A-2", "a2", "Alpine", "Alpine:v3.9")))
		if res != (store.VulnImportResult{Added: 2, Revision: 1}) {
			t.Fatalf("first import = %+v", res)
		}
		st, err := e.s.VulnState(e.ctx)
		ok(t, err)
		sameTime(t, "UpdatedAt", st.UpdatedAt, t0)
		wantStrings(t, "records", e.recordSet(), []string{"osv A-1 alpine a1", "osv A-2 alpine a2"})

		// The same content again changes nothing, not even the revision.
		e.clk.Advance(time.Hour)
		res = e.importVulns(fullImport("alpine", rec("A-1", "a1", "Alpine"), rec("A-2", "a2", "Alpine")))
		if res != (store.VulnImportResult{Revision: 1}) || res.Changed() {
			t.Fatalf("unchanged import = %+v", res)
		}
		// Only records whose hash differs need content.
		imp := fullImport("alpine", rec("A-2", "a2-new", "Alpine"), rec("A-3", "a3", "Alpine"))
		imp.Seen[store.VulnKey{Kind: store.VulnOSV, ID: "A-1"}] = "h:a1"
		imp.Seen[store.VulnKey{Kind: store.VulnCVE, ID: "CVE-1"}] = "h:c1"
		imp.Records = append(imp.Records, store.VulnRecord{Kind: store.VulnCVE, ID: "CVE-1", Hash: "h:c1", Data: []byte("c1")})
		res = e.importVulns(imp)
		if res != (store.VulnImportResult{Added: 2, Updated: 1, Revision: 2}) {
			t.Fatalf("changed import = %+v", res)
		}
		wantStrings(t, "records", e.recordSet(), []string{"cve CVE-1 alpine c1", "osv A-1 alpine a1", "osv A-2 alpine a2-new", "osv A-3 alpine a3"})
		wantStrings(t, "changes since 1", e.changes(1), []string{"2 cve CVE-1", "2 osv A-2", "2 osv A-3"})

		// Records gone from the export are removed.
		res = e.importVulns(fullImport("alpine", rec("A-3", "a3")))
		if res != (store.VulnImportResult{Removed: 3, Revision: 3}) {
			t.Fatalf("shrinking import = %+v", res)
		}
		wantStrings(t, "records", e.recordSet(), []string{"osv A-3 alpine a3"})
		wantStrings(t, "changes since 2", e.changes(2), []string{"3 cve CVE-1", "3 osv A-1", "3 osv A-2"})
		wantStrings(t, "changes since 0", e.changes(0)[:2], []string{"1 osv A-1", "1 osv A-2"})
		if got := len(e.changes(0)); got != 8 {
			t.Fatalf("%d changes logged, want 8", got)
		}
	}},
	{"records are owned by their source", func(t *testing.T, e *env) {
		e.importVulns(fullImport("v3.9", rec("ALPINE-1", "in 3.9", "Alpine", "Alpine:v3.9"), rec("ALPINE-2", "only 3.9", "Alpine", "Alpine:v3.9")))
		v310 := fullImport("v3.10", rec("ALPINE-1", "in 3.10", "Alpine", "Alpine:v3.10"),
			store.VulnRecord{Kind: store.VulnCVE, ID: "CVE-1", Hash: "h", Data: []byte("{}")})
		e.importVulns(v310)
		wantStrings(t, "records", e.recordSet(), []string{
			"cve CVE-1 v3.10 {}", "osv ALPINE-1 v3.10 in 3.10", "osv ALPINE-1 v3.9 in 3.9", "osv ALPINE-2 v3.9 only 3.9"})
		counts, err := e.s.VulnCounts(e.ctx)
		ok(t, err)
		if want := map[string]int{"Alpine": 2, "Alpine:v3.9": 2, "Alpine:v3.10": 1}; !maps.Equal(counts.Ecosystems, want) ||
			counts.Advisories != 2 || counts.CVEs != 1 {
			t.Fatalf("VulnCounts = %+v, want %v, 2 advisories, 1 CVE (an id in two sources counts once)", counts, want)
		}
		rs, err := e.s.VulnRecords(e.ctx, store.VulnOSV, "ALPINE-1")
		ok(t, err)
		if len(rs) != 2 || rs[0].Source != "v3.10" || rs[1].Source != "v3.9" || rs[0].Revision != 2 || rs[1].Revision != 1 {
			t.Fatalf("VulnRecords(ALPINE-1) = %+v", rs)
		}
		if !slices.Equal(rs[1].Ecosystems, []string{"Alpine", "Alpine:v3.9"}) || !rs[1].Modified.Equal(micro(t0.Add(-time.Hour))) || rs[1].Hash != "h:in 3.9" {
			t.Fatalf("VulnRecords(ALPINE-1) lost fields: %+v", rs[1])
		}
		if rs, err := e.s.VulnRecords(e.ctx, store.VulnOSV, "NOPE"); err != nil || len(rs) != 0 {
			t.Fatalf("VulnRecords(NOPE) = %v, %v", rs, err)
		}
		// Emptying one source leaves the other's copy.
		e.importVulns(fullImport("v3.10"))
		if counts, _ := e.s.VulnCounts(e.ctx); counts.Ecosystems["Alpine:v3.10"] != 0 || counts.CVEs != 0 || counts.Advisories != 2 {
			t.Fatalf("VulnCounts after emptying v3.10 = %+v", counts)
		}
		wantStrings(t, "records", e.recordSet(), []string{"osv ALPINE-1 v3.9 in 3.9", "osv ALPINE-2 v3.9 only 3.9"})
		h, err := e.s.VulnHashes(e.ctx, "v3.9")
		ok(t, err)
		if want := map[store.VulnKey]string{{Kind: "osv", ID: "ALPINE-1"}: "h:in 3.9", {Kind: "osv", ID: "ALPINE-2"}: "h:only 3.9"}; !maps.Equal(h, want) {
			t.Fatalf("VulnHashes = %v", h)
		}
		// Deleting a source removes its records and bumps the revision.
		res, err := e.s.DeleteVulnSource(e.ctx, "v3.9")
		ok(t, err)
		if res.Removed != 2 || res.Revision != 4 {
			t.Fatalf("DeleteVulnSource = %+v", res)
		}
		wantStrings(t, "records", e.recordSet(), nil)
		_, err = e.s.DeleteVulnSource(e.ctx, "v3.9")
		wantCode(t, err, apperr.ENOTFOUND, "", "v3.9")
	}},
	{"a skipped record keeps its stored version", func(t *testing.T, e *env) {
		e.importVulns(fullImport("src", rec("GO-1", "good"), rec("GO-2", "good")))
		imp := fullImport("src", rec("GO-2", "good"))
		imp.Seen[store.VulnKey{Kind: store.VulnOSV, ID: "GO-1"}] = "" // unreadable this time
		imp.Seen[store.VulnKey{Kind: store.VulnOSV, ID: "GO-9"}] = "" // unreadable and never stored
		if res := e.importVulns(imp); res.Changed() {
			t.Fatalf("import = %+v, want no change", res)
		}
		wantStrings(t, "records", e.recordSet(), []string{"osv GO-1 src good", "osv GO-2 src good"})
	}},
	{"invalid imports change nothing", func(t *testing.T, e *env) {
		e.importVulns(fullImport("src", rec("GO-1", "v1")))
		missing := fullImport("src", rec("GO-2", "v1"))
		missing.Seen[store.VulnKey{Kind: store.VulnOSV, ID: "GO-1"}] = "h:v2" // changed, but no content
		_, err := e.s.ImportVulns(e.ctx, missing)
		wantCode(t, err, apperr.EINVALID, "", "GO-1")
		for name, imp := range map[string]*store.VulnImport{
			"no source name": {Seen: map[store.VulnKey]string{}},
			"unknown kind":   fullImport("src", store.VulnRecord{Kind: "nvd", ID: "X", Hash: "h"}),
			"no id":          fullImport("src", store.VulnRecord{Kind: store.VulnOSV, Hash: "h"}),
			"no hash":        {Source: "src", Records: []store.VulnRecord{{Kind: store.VulnOSV, ID: "X"}}},
			"bad ecosystem":  fullImport("src", store.VulnRecord{Kind: store.VulnOSV, ID: "X", Hash: "h", Ecosystems: []string{"a\nb"}}),
		} {
			if _, err := e.s.ImportVulns(e.ctx, imp); apperr.Code(err) != apperr.EINVALID {
				t.Errorf("%s: ImportVulns = %v, want EINVALID", name, err)
			}
		}
		wantStrings(t, "records", e.recordSet(), []string{"osv GO-1 src v1"})
		if r := e.revision(); r != 1 {
			t.Fatalf("revision = %d after refused imports, want 1", r)
		}
	}},
	{"sources record attempts", func(t *testing.T, e *env) {
		imp := fullImport("mirror", rec("PYSEC-1", "p"))
		imp.Location, imp.ETag, imp.LastModified = "https://mirror/all.zip", `"abc"`, "Mon, 02 Jan 2026 15:04:05 GMT"
		e.importVulns(imp)
		e.clk.Advance(time.Hour)
		ok(t, e.s.RecordVulnAttempt(e.ctx, store.VulnAttempt{Source: "mirror", Location: "https://mirror/all.zip", Err: "GET https://mirror/all.zip: 500 Internal Server Error"}))
		e.clk.Advance(time.Hour)
		ok(t, e.s.RecordVulnAttempt(e.ctx, store.VulnAttempt{Source: "new", Location: "/nowhere", Err: "open /nowhere: no such file"}))
		srcs, err := e.s.VulnSources(e.ctx)
		ok(t, err)
		if len(srcs) != 2 {
			t.Fatalf("VulnSources = %+v", srcs)
		}
		m := srcs[0]
		if m.Name != "mirror" || m.ETag != `"abc"` || m.LastModified != imp.LastModified || m.Records != 1 || m.Revision != 1 ||
			!strings.Contains(m.LastError, "500") {
			t.Fatalf("mirror after a failure = %+v", m)
		}
		sameTime(t, "LastSuccess", m.LastSuccess, t0)
		sameTime(t, "LastAttempt", m.LastAttempt, t0.Add(time.Hour))
		n := srcs[1]
		if n.Name != "new" || n.Location != "/nowhere" || !n.LastSuccess.IsZero() || n.Records != 0 || n.LastError == "" {
			t.Fatalf("new source after a failure = %+v", n)
		}
		// An unchanged download succeeds without touching records.
		ok(t, e.s.RecordVulnAttempt(e.ctx, store.VulnAttempt{Source: "mirror", Location: "https://mirror/all.zip"}))
		srcs, err = e.s.VulnSources(e.ctx)
		ok(t, err)
		if m := srcs[0]; m.LastError != "" || m.ETag != `"abc"` || m.Records != 1 || !m.LastSuccess.Equal(micro(t0.Add(2*time.Hour))) {
			t.Fatalf("mirror after an unchanged download = %+v", m)
		}
		if r := e.revision(); r != 1 {
			t.Fatalf("attempts changed the revision to %d", r)
		}
	}},
	{"overrides", func(t *testing.T, e *env) {
		e.importVulns(fullImport("src", rec("GO-1", "x")))
		o := &store.VulnOverrideRule{ID: "CVE-2019-14697", Level: "low", Reason: "not reachable", CreatedBy: "alice"}
		ok(t, e.s.PutVulnOverride(e.ctx, o))
		if o.Revision != 2 {
			t.Fatalf("override revision = %d, want 2", o.Revision)
		}
		sameTime(t, "CreatedAt", o.CreatedAt, t0)
		e.clk.Advance(time.Minute)
		ok(t, e.s.PutVulnOverride(e.ctx, &store.VulnOverrideRule{ID: "CVE-2019-14697", Level: "critical", Reason: "exposed", CreatedBy: "bob"}))
		ok(t, e.s.PutVulnOverride(e.ctx, &store.VulnOverrideRule{ID: "GO-1", Level: "none", CreatedBy: "bob"}))
		os, err := e.s.VulnOverrides(e.ctx)
		ok(t, err)
		if len(os) != 2 || os[0].ID != "CVE-2019-14697" || os[0].Level != "critical" || os[0].Reason != "exposed" ||
			os[0].CreatedBy != "bob" || os[0].Revision != 3 || os[1].ID != "GO-1" {
			t.Fatalf("VulnOverrides = %+v", os)
		}
		sameTime(t, "replaced CreatedAt", os[0].CreatedAt, t0.Add(time.Minute))
		rev, err := e.s.DeleteVulnOverride(e.ctx, "GO-1")
		ok(t, err)
		if rev != 5 {
			t.Fatalf("DeleteVulnOverride revision = %d, want 5", rev)
		}
		_, err = e.s.DeleteVulnOverride(e.ctx, "GO-1")
		wantCode(t, err, apperr.ENOTFOUND, "", "GO-1")
		wantStrings(t, "changes", e.changes(1), []string{"2 override CVE-2019-14697", "3 override CVE-2019-14697", "4 override GO-1", "5 override GO-1"})
		for _, bad := range []store.VulnOverrideRule{{Level: "low", CreatedBy: "a"}, {ID: "X", CreatedBy: "a"}, {ID: "X", Level: "low"}} {
			wantCode(t, e.s.PutVulnOverride(e.ctx, &bad), apperr.EINVALID, "", "")
		}
	}},
	{"concurrent imports get distinct revisions", func(t *testing.T, e *env) {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := e.s.ImportVulns(e.ctx, fullImport(fmt.Sprintf("s%d", i), rec("X", fmt.Sprint(i))))
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			ok(t, err)
		}
		if r := e.revision(); r != 8 {
			t.Fatalf("revision after 8 concurrent changing imports = %d", r)
		}
		seen := map[int64]bool{}
		for _, c := range e.changes(0) {
			var rev int64
			fmt.Sscan(c, &rev)
			if seen[rev] {
				t.Fatalf("revision %d logged twice: %q", rev, e.changes(0))
			}
			seen[rev] = true
		}
	}},
	{"many records in one import", func(t *testing.T, e *env) {
		var rs []store.VulnRecord
		for i := range 1234 {
			rs = append(rs, rec(fmt.Sprintf("PYSEC-%05d", i), strings.Repeat("x", i%300), "PyPI"))
		}
		if res := e.importVulns(fullImport("pypi", rs...)); res.Added != 1234 {
			t.Fatalf("import = %+v", res)
		}
		n := 0
		rev, err := e.s.ScanVulnRecords(e.ctx, func(r store.VulnRecord) error {
			if want := fmt.Sprintf("PYSEC-%05d", n); r.ID != want || len(r.Data) != n%300 {
				return fmt.Errorf("record %d = %s (%d bytes), want %s", n, r.ID, len(r.Data), want)
			}
			n++
			return nil
		})
		ok(t, err)
		if rev != 1 || n != 1234 {
			t.Fatalf("ScanVulnRecords saw %d records at revision %d", n, rev)
		}
		stop := fmt.Errorf("stop")
		if _, err := e.s.ScanVulnRecords(e.ctx, func(store.VulnRecord) error { return stop }); err != stop {
			t.Fatalf("ScanVulnRecords returned %v, want fn's error", err)
		}
	}},
	{"the change log is pruned by age", func(t *testing.T, e *env) {
		e.importVulns(fullImport("a", rec("A-1", "a1"))) // revision 1 at t0
		e.clk.Advance(10 * 24 * time.Hour)
		e.importVulns(fullImport("a", rec("A-1", "a1"), rec("A-2", "a2"))) // 2 at t0+10d
		e.clk.Advance(10 * 24 * time.Hour)
		ok(t, e.s.PutVulnOverride(e.ctx, &store.VulnOverrideRule{ID: "A-1", Level: "low", CreatedBy: "me"})) // 3 at t0+20d

		prune := func(before time.Time, want int64) {
			t.Helper()
			got, err := e.s.PruneVulnChanges(e.ctx, before)
			ok(t, err)
			st, err := e.s.VulnState(e.ctx)
			ok(t, err)
			if got != want || st.PrunedThrough != want || st.Revision < 3 {
				t.Fatalf("PruneVulnChanges(%v) = %d, state %+v; want pruned through %d", before, got, st, want)
			}
		}
		tooOld := func(since int64) {
			t.Helper()
			_, err := e.s.VulnChangesSince(e.ctx, since)
			wantCode(t, err, apperr.ECONFLICT, "", fmt.Sprintf("after vulnerability database revision %d were pruned", since))
			if !errors.Is(err, store.ErrVulnChangesPruned) {
				t.Fatalf("VulnChangesSince(%d) = %v, not ErrVulnChangesPruned", since, err)
			}
		}
		prune(t0, 0) // nothing is older than the first revision
		wantStrings(t, "changes since 0", e.changes(0), []string{"1 osv A-1", "2 osv A-2", "3 override A-1"})
		prune(t0.Add(5*24*time.Hour), 1)
		tooOld(0)
		wantStrings(t, "changes since 1", e.changes(1), []string{"2 osv A-2", "3 override A-1"})
		prune(t0.Add(5*24*time.Hour), 1) // again: nothing more
		prune(t0, 1)                     // an earlier time never restores anything
		prune(e.clk.Now(), 2)            // revision 3 is not older than now
		tooOld(1)
		wantStrings(t, "changes since 2", e.changes(2), []string{"3 override A-1"})
		prune(e.clk.Now().Add(time.Second), 3) // everything
		tooOld(2)
		wantStrings(t, "changes since 3", e.changes(3), nil)
		// The log goes on from there.
		e.clk.Advance(time.Hour)
		e.importVulns(fullImport("a", rec("A-2", "a2")))
		wantStrings(t, "changes since 3", e.changes(3), []string{"4 osv A-1"})
		prune(t0.Add(20*24*time.Hour+time.Minute), 3)
	}},
	{"import leases", func(t *testing.T, e *env) {
		lease := time.Minute
		a := &store.VulnImportRun{Source: "go", Location: "https://example.com/go.zip", Owner: "replica-a", Phase: "downloading"}
		holder, err := e.s.ClaimVulnImport(e.ctx, a, lease)
		if err != nil || holder != nil {
			t.Fatalf("first claim = %+v, %v", holder, err)
		}
		sameTime(t, "Started", a.Started, t0)
		sameTime(t, "LeaseUntil", a.LeaseUntil, t0.Add(lease))
		e.clk.Advance(10 * time.Second)
		b := &store.VulnImportRun{Source: "go", Location: "https://example.com/go.zip", Owner: "replica-b"}
		holder, err = e.s.ClaimVulnImport(e.ctx, b, lease)
		if err != nil || holder == nil || holder.Owner != "replica-a" || holder.Phase != "downloading" {
			t.Fatalf("claim of a held source = %+v, %v; want replica-a's run", holder, err)
		}
		sameTime(t, "holder's Started", holder.Started, t0)
		// Another source is free.
		other := &store.VulnImportRun{Source: "pypi", Location: "/data/pypi", Owner: "replica-b"}
		if holder, err := e.s.ClaimVulnImport(e.ctx, other, lease); err != nil || holder != nil {
			t.Fatalf("claim of another source = %+v, %v", holder, err)
		}
		ok(t, e.s.ReleaseVulnImport(e.ctx, "pypi", "replica-b"))

		// Progress reaches every reader.
		a.Phase, a.Bytes, a.Read, a.Changed, a.Errors = "reading", 1<<20, 300, 20, 1
		ok(t, e.s.RenewVulnImport(e.ctx, a, lease))
		sameTime(t, "renewed LeaseUntil", a.LeaseUntil, t0.Add(10*time.Second+lease))
		runs, err := e.s.VulnImports(e.ctx)
		ok(t, err)
		if len(runs) != 1 {
			t.Fatalf("VulnImports = %+v", runs)
		}
		r := runs[0]
		if r.Source != "go" || r.Owner != "replica-a" || r.Location != a.Location || r.Phase != "reading" || r.Bytes != 1<<20 ||
			r.Read != 300 || r.Changed != 20 || r.Errors != 1 {
			t.Fatalf("VulnImports = %+v", r)
		}
		sameTime(t, "listed Started", r.Started, t0)
		sameTime(t, "listed UpdatedAt", r.UpdatedAt, t0.Add(10*time.Second))
		wantCode(t, e.s.RenewVulnImport(e.ctx, b, lease), apperr.ECONFLICT, "", "no longer held by replica-b")

		// An expired lease is a dead import: not listed, and claimed again.
		e.clk.Advance(lease + time.Second)
		runs, err = e.s.VulnImports(e.ctx)
		ok(t, err)
		if len(runs) != 0 {
			t.Fatalf("VulnImports lists an expired lease: %+v", runs)
		}
		if holder, err := e.s.ClaimVulnImport(e.ctx, b, lease); err != nil || holder != nil {
			t.Fatalf("claim of an expired lease = %+v, %v", holder, err)
		}
		wantCode(t, e.s.RenewVulnImport(e.ctx, a, lease), apperr.ECONFLICT, "", "no longer held by replica-a")
		ok(t, e.s.ReleaseVulnImport(e.ctx, "go", "replica-a")) // not a's to release: nothing happens
		runs, err = e.s.VulnImports(e.ctx)
		ok(t, err)
		if len(runs) != 1 || runs[0].Owner != "replica-b" || runs[0].Phase != "" || runs[0].Read != 0 {
			t.Fatalf("after b's claim: %+v", runs)
		}
		ok(t, e.s.ReleaseVulnImport(e.ctx, "go", "replica-b"))
		if runs, err := e.s.VulnImports(e.ctx); err != nil || len(runs) != 0 {
			t.Fatalf("after the release: %+v, %v", runs, err)
		}
		for _, bad := range []*store.VulnImportRun{{Owner: "x"}, {Source: "go"}} {
			_, err := e.s.ClaimVulnImport(e.ctx, bad, lease)
			wantCode(t, err, apperr.EINVALID, "", "lease")
		}
		_, err = e.s.ClaimVulnImport(e.ctx, a, 0)
		wantCode(t, err, apperr.EINVALID, "", "positive")
	}},
	{"concurrent claims: one wins", func(t *testing.T, e *env) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var winners []string
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				run := &store.VulnImportRun{Source: "go", Location: "/go", Owner: fmt.Sprintf("replica-%d", i)}
				holder, err := e.s.ClaimVulnImport(e.ctx, run, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if holder == nil {
					mu.Lock()
					winners = append(winners, run.Owner)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		runs, err := e.s.VulnImports(e.ctx)
		ok(t, err)
		if len(winners) != 1 || len(runs) != 1 || runs[0].Owner != winners[0] {
			t.Fatalf("winners %v, runs %+v; want exactly one", winners, runs)
		}
	}},
}
