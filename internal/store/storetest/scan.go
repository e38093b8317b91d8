package storetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// enqueue queues a manifest scan of subject and returns whether it was
// queued by this call.
func (e *env) enqueue(subject string) (*store.ScanJob, bool) {
	e.t.Helper()
	j := &store.ScanJob{Kind: store.ScanJobManifest, Subject: subject, Repository: "p/r", Trigger: "push"}
	queued, err := e.s.EnqueueScanJob(e.ctx, j)
	ok(e.t, err)
	return j, queued
}

// claim claims a job as owner with a one-minute lease.
func (e *env) claim(owner string) *store.ScanJob {
	e.t.Helper()
	j, err := e.s.ClaimScanJob(e.ctx, owner, time.Minute)
	ok(e.t, err)
	return j
}

var scanJobTests = []test{
	{"enqueue, claim, finish, enqueue again", func(t *testing.T, e *env) {
		j, queued := e.enqueue("sha256:a")
		if !queued || j.ID == 0 || j.Status != store.ScanQueued || j.Attempts != 0 || j.Repository != "p/r" || j.Trigger != "push" {
			t.Fatalf("first enqueue = %+v, %v", j, queued)
		}
		sameTime(t, "QueuedAt", j.QueuedAt, t0)
		sameTime(t, "RunAfter", j.RunAfter, t0)
		if _, queued := e.enqueue("sha256:a"); queued {
			t.Fatal("enqueueing a queued job queued it again")
		}
		e.clk.Advance(time.Second)
		c := e.claim("w1")
		if c == nil || c.ID != j.ID || c.Status != store.ScanRunning || c.Owner != "w1" || c.Attempts != 1 {
			t.Fatalf("claim = %+v", c)
		}
		sameTime(t, "LeaseUntil", c.LeaseUntil, t0.Add(time.Second+time.Minute))
		sameTime(t, "StartedAt", c.StartedAt, t0.Add(time.Second))
		if again := e.claim("w2"); again != nil {
			t.Fatalf("a leased job was claimed twice: %+v", again)
		}
		if _, queued := e.enqueue("sha256:a"); queued {
			t.Fatal("enqueueing a running job queued it again")
		}
		ok(t, e.s.RenewScanJob(e.ctx, c.ID, "w1", "reading layers", time.Minute))
		got, err := e.s.ScanJob(e.ctx, store.ScanJobManifest, "sha256:a")
		ok(t, err)
		if got.Stage != "reading layers" || got.Status != store.ScanRunning {
			t.Errorf("after renew: %+v", got)
		}
		wantCode(t, e.s.RenewScanJob(e.ctx, c.ID, "w2", "x", time.Minute), apperr.ECONFLICT, "", "")
		wantCode(t, e.s.FinishScanJob(e.ctx, c.ID, "w2", store.ScanJobResult{Status: store.ScanDone}), apperr.ECONFLICT, "", "")
		ok(t, e.s.FinishScanJob(e.ctx, c.ID, "w1", store.ScanJobResult{Status: store.ScanDone}))
		got, err = e.s.ScanJob(e.ctx, store.ScanJobManifest, "sha256:a")
		ok(t, err)
		if got.Status != store.ScanDone || got.Owner != "" || got.Stage != "" || !got.LeaseUntil.IsZero() {
			t.Errorf("after finish: %+v", got)
		}
		sameTime(t, "FinishedAt", got.FinishedAt, t0.Add(time.Second))
		if c := e.claim("w1"); c != nil {
			t.Fatalf("a finished job was claimed: %+v", c)
		}
		e.clk.Advance(time.Second)
		j2, queued := e.enqueue("sha256:a")
		if !queued || j2.ID != j.ID || j2.Status != store.ScanQueued || j2.Attempts != 0 || !j2.FinishedAt.IsZero() {
			t.Fatalf("enqueue of a finished job = %+v, %v", j2, queued)
		}
		_, err = e.s.ScanJob(e.ctx, store.ScanJobManifest, "sha256:none")
		wantCode(t, err, apperr.ENOTFOUND, "", "sha256:none")
	}},
	{"expired lease is claimed again and the old holder is refused", func(t *testing.T, e *env) {
		e.enqueue("sha256:a")
		c1 := e.claim("w1")
		e.clk.Advance(time.Minute + time.Second)
		c2 := e.claim("w2")
		if c2 == nil || c2.ID != c1.ID || c2.Owner != "w2" || c2.Attempts != 2 {
			t.Fatalf("claim after the lease expired = %+v", c2)
		}
		wantCode(t, e.s.FinishScanJob(e.ctx, c1.ID, "w1", store.ScanJobResult{Status: store.ScanDone}), apperr.ECONFLICT, "", "")
		ok(t, e.s.FinishScanJob(e.ctx, c2.ID, "w2", store.ScanJobResult{Status: store.ScanFailed, Error: "boom"}))
		got, err := e.s.ScanJob(e.ctx, store.ScanJobManifest, "sha256:a")
		ok(t, err)
		if got.Status != store.ScanFailed || got.LastError != "boom" {
			t.Errorf("after failing: %+v", got)
		}
	}},
	{"retry waits for RunAfter; a deferral is not an attempt", func(t *testing.T, e *env) {
		e.enqueue("sha256:a")
		c := e.claim("w1")
		ok(t, e.s.FinishScanJob(e.ctx, c.ID, "w1", store.ScanJobResult{Status: store.ScanQueued, Error: "blob store down",
			RunAfter: t0.Add(10 * time.Second)}))
		if c := e.claim("w1"); c != nil {
			t.Fatalf("a job was claimed before its RunAfter: %+v", c)
		}
		got, err := e.s.ScanJob(e.ctx, store.ScanJobManifest, "sha256:a")
		ok(t, err)
		if got.Status != store.ScanQueued || got.LastError != "blob store down" || got.Attempts != 1 {
			t.Errorf("after a retry: %+v", got)
		}
		e.clk.Advance(10 * time.Second)
		c = e.claim("w1")
		if c == nil || c.Attempts != 2 {
			t.Fatalf("claim after RunAfter = %+v", c)
		}
		ok(t, e.s.RenewScanJob(e.ctx, c.ID, "w1", "waiting for 2 platform scans", time.Minute))
		ok(t, e.s.FinishScanJob(e.ctx, c.ID, "w1", store.ScanJobResult{Status: store.ScanQueued, Defer: true,
			RunAfter: e.clk.Now().Add(time.Second)}))
		got, err = e.s.ScanJob(e.ctx, store.ScanJobManifest, "sha256:a")
		ok(t, err)
		if got.Attempts != 1 || got.Stage != "waiting for 2 platform scans" || got.LastError != "blob store down" {
			t.Errorf("after a deferral: %+v", got)
		}
	}},
	{"due jobs are claimed oldest first", func(t *testing.T, e *env) {
		for _, s := range []string{"sha256:1", "sha256:2", "sha256:3"} {
			e.enqueue(s)
			e.clk.Advance(time.Second)
		}
		var order []string
		for c := e.claim("w"); c != nil; c = e.claim("w") {
			order = append(order, c.Subject)
		}
		if !slices.Equal(order, []string{"sha256:1", "sha256:2", "sha256:3"}) {
			t.Errorf("claim order %v", order)
		}
	}},
	{"concurrent claims never share a job", func(t *testing.T, e *env) {
		const jobs = 20
		for i := range jobs {
			e.enqueue(fmt.Sprintf("sha256:%02d", i))
		}
		var mu sync.Mutex
		claimed := map[int64]string{}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				owner := fmt.Sprintf("w%d", w)
				for {
					j, err := e.s.ClaimScanJob(e.ctx, owner, time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if j == nil {
						return
					}
					mu.Lock()
					if prev, dup := claimed[j.ID]; dup {
						t.Errorf("job %d claimed by %s and %s", j.ID, prev, owner)
					}
					claimed[j.ID] = owner
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(claimed) != jobs {
			t.Errorf("%d jobs claimed, want %d", len(claimed), jobs)
		}
	}},
	{"listing and stats", func(t *testing.T, e *env) {
		e.enqueue("sha256:1")
		e.enqueue("sha256:2")
		e.enqueue("sha256:3")
		_, err := e.s.EnqueueScanJob(e.ctx, &store.ScanJob{Kind: store.ScanJobRematch, Subject: store.ScanRematchSubject, Trigger: "vulndb"})
		ok(t, err)
		c := e.claim("w")
		ok(t, e.s.FinishScanJob(e.ctx, c.ID, "w", store.ScanJobResult{Status: store.ScanUnsupported, Error: "not an image"}))
		c = e.claim("w")
		ok(t, e.s.FinishScanJob(e.ctx, c.ID, "w", store.ScanJobResult{Status: store.ScanQueued, RunAfter: t0.Add(time.Hour)}))
		running := e.claim("w")
		st, err := e.s.ScanQueueStats(e.ctx)
		ok(t, err)
		if st.Queued != 2 || st.Running != 1 || st.Unsupported != 1 || st.Due != 1 || st.Done != 0 || st.Failed != 0 {
			t.Errorf("stats %+v", st)
		}
		sameTime(t, "OldestQueued", st.OldestQueued, t0)
		all, err := e.s.ScanJobs(e.ctx, store.ScanJobFilter{})
		ok(t, err)
		if len(all) != 4 || all[0].ID != running.ID {
			t.Errorf("ScanJobs = %+v, want 4 with the running one first", all)
		}
		q, err := e.s.ScanJobs(e.ctx, store.ScanJobFilter{Status: store.ScanQueued, Kind: store.ScanJobRematch})
		ok(t, err)
		if len(q) != 1 || q[0].Subject != store.ScanRematchSubject {
			t.Errorf("queued rematch jobs = %+v", q)
		}
		one, err := e.s.ScanJobs(e.ctx, store.ScanJobFilter{N: 1})
		ok(t, err)
		if len(one) != 1 {
			t.Errorf("N=1 gave %d jobs", len(one))
		}
	}},
	{"bad input", func(t *testing.T, e *env) {
		_, err := e.s.EnqueueScanJob(e.ctx, &store.ScanJob{Kind: "bogus", Subject: "x"})
		wantCode(t, err, apperr.EINVALID, "", "bogus")
		_, err = e.s.EnqueueScanJob(e.ctx, &store.ScanJob{Kind: store.ScanJobManifest})
		wantCode(t, err, apperr.EINVALID, "", "subject")
		e.enqueue("sha256:a")
		c := e.claim("w")
		wantCode(t, e.s.FinishScanJob(e.ctx, c.ID, "w", store.ScanJobResult{Status: store.ScanRunning}), apperr.EINVALID, "", "running")
		_, err = e.s.ClaimScanJob(e.ctx, "", time.Minute)
		wantCode(t, err, apperr.EINVALID, "", "owner")
	}},
}

// report returns a done report of digest with findings of the given
// advisory ids (key "id pkg").
func report(digest string, rev int64, matchedAt time.Time, advisories ...string) *store.ScanReport {
	r := &store.ScanReport{Digest: digest, MediaType: "application/vnd.oci.image.manifest.v1+json", Platform: "linux/amd64",
		Status: store.ScanDone, VulnRevision: rev, ScannedAt: matchedAt, MatchedAt: matchedAt, Packages: 3,
		Counts: store.ScanCounts{High: len(advisories)}, Data: []byte(`{"digest":"` + digest + `"}`)}
	for _, a := range advisories {
		r.Findings = append(r.Findings, store.ScanFinding{Key: a + " pkg", AdvisoryID: a})
	}
	return r
}

var scanReportTests = []test{
	{"put and get keep first-seen times", func(t *testing.T, e *env) {
		_, err := e.s.ScanReport(e.ctx, "sha256:a")
		wantCode(t, err, apperr.ENOTFOUND, "", "sha256:a")
		r := report("sha256:a", 3, t0, "CVE-1", "CVE-2")
		ok(t, e.s.PutScanReport(e.ctx, r))
		sameTime(t, "UpdatedAt", r.UpdatedAt, t0)
		for _, f := range r.Findings {
			sameTime(t, f.Key+" FirstSeen", f.FirstSeen, t0)
		}
		got, err := e.s.ScanReport(e.ctx, "sha256:a")
		ok(t, err)
		if got.Status != store.ScanDone || got.VulnRevision != 3 || got.Packages != 3 || got.Counts.High != 2 ||
			string(got.Data) != string(r.Data) || got.Platform != "linux/amd64" || len(got.Findings) != 2 {
			t.Fatalf("ScanReport = %+v", got)
		}
		sameTime(t, "MatchedAt", got.MatchedAt, t0)

		later := t0.Add(time.Hour)
		e.clk.Advance(time.Hour)
		r = report("sha256:a", 4, later, "CVE-2", "CVE-3")
		ok(t, e.s.PutScanReport(e.ctx, r))
		got, err = e.s.ScanReport(e.ctx, "sha256:a")
		ok(t, err)
		var keys []string
		for _, f := range got.Findings {
			keys = append(keys, f.Key)
		}
		if !slices.Equal(keys, []string{"CVE-2 pkg", "CVE-3 pkg"}) {
			t.Fatalf("findings %v", keys)
		}
		sameTime(t, "CVE-2 FirstSeen (kept)", got.Findings[0].FirstSeen, t0)
		sameTime(t, "CVE-3 FirstSeen (new)", got.Findings[1].FirstSeen, later)
		sameTime(t, "returned CVE-2 FirstSeen", r.Findings[0].FirstSeen, t0)
		if got.VulnRevision != 4 {
			t.Errorf("revision %d, want 4", got.VulnRevision)
		}
	}},
	{"failed report keeps data; bad reports refused", func(t *testing.T, e *env) {
		r := &store.ScanReport{Digest: "sha256:f", Status: store.ScanFailed, Reason: "layer 0: corrupt gzip"}
		ok(t, e.s.PutScanReport(e.ctx, r))
		got, err := e.s.ScanReport(e.ctx, "sha256:f")
		ok(t, err)
		if got.Status != store.ScanFailed || got.Reason != "layer 0: corrupt gzip" || !got.ScannedAt.IsZero() || len(got.Findings) != 0 {
			t.Errorf("failed report = %+v", got)
		}
		wantCode(t, e.s.PutScanReport(e.ctx, &store.ScanReport{Status: store.ScanDone}), apperr.EINVALID, "", "digest")
		wantCode(t, e.s.PutScanReport(e.ctx, &store.ScanReport{Digest: "d", Status: store.ScanQueued}), apperr.EINVALID, "", "queued")
		dup := report("sha256:d", 1, t0, "CVE-1", "CVE-1")
		wantCode(t, e.s.PutScanReport(e.ctx, dup), apperr.EINVALID, "", "CVE-1 pkg")
	}},
	{"advisory lookup, stale reports, advancing revisions", func(t *testing.T, e *env) {
		ok(t, e.s.PutScanReport(e.ctx, report("sha256:a", 1, t0, "CVE-1", "CVE-2")))
		ok(t, e.s.PutScanReport(e.ctx, report("sha256:b", 2, t0, "CVE-2")))
		ok(t, e.s.PutScanReport(e.ctx, report("sha256:c", 3, t0)))
		ok(t, e.s.PutScanReport(e.ctx, &store.ScanReport{Digest: "sha256:x", Status: store.ScanFailed, VulnRevision: 0}))
		got, err := e.s.ScanReportsWithAdvisories(e.ctx, []string{"CVE-2", "CVE-9"})
		ok(t, err)
		if !slices.Equal(got, []string{"sha256:a", "sha256:b"}) {
			t.Errorf("with CVE-2 = %v", got)
		}
		got, err = e.s.ScanReportsWithAdvisories(e.ctx, []string{"CVE-1"})
		ok(t, err)
		if !slices.Equal(got, []string{"sha256:a"}) {
			t.Errorf("with CVE-1 = %v", got)
		}
		stale, err := e.s.StaleScanReports(e.ctx, 3, 0)
		ok(t, err)
		if !slices.Equal(stale, []string{"sha256:a", "sha256:b"}) {
			t.Errorf("stale below 3 = %v (failed reports are never stale)", stale)
		}
		stale, err = e.s.StaleScanReports(e.ctx, 3, 1)
		ok(t, err)
		if len(stale) != 1 {
			t.Errorf("stale with n=1 = %v", stale)
		}
		e.clk.Advance(time.Minute)
		// Reports saved after the rematch began keep their revision.
		ok(t, e.s.PutScanReport(e.ctx, report("sha256:late", 2, t0)))
		n, err := e.s.AdvanceScanReports(e.ctx, 2, 5, t0.Add(time.Second))
		ok(t, err)
		if n != 2 {
			t.Errorf("advanced %d reports, want 2 (b and c)", n)
		}
		sums, err := e.s.ScanReportSummaries(e.ctx, []string{"sha256:a", "sha256:b", "sha256:c", "sha256:late", "sha256:none"})
		ok(t, err)
		revs := map[string]int64{}
		for d, s := range sums {
			revs[d] = s.VulnRevision
		}
		if want := map[string]int64{"sha256:a": 1, "sha256:b": 5, "sha256:c": 5, "sha256:late": 2}; fmt.Sprint(revs) != fmt.Sprint(want) {
			t.Errorf("revisions %v, want %v", revs, want)
		}
		if s := sums["sha256:a"]; s.Status != store.ScanDone || s.Counts.High != 2 || s.Packages != 3 || s.Platform != "linux/amd64" {
			t.Errorf("summary of a = %+v", s)
		}
	}},
	{"rematched revision moves by compare-and-set", func(t *testing.T, e *env) {
		rev, err := e.s.RematchedRevision(e.ctx)
		ok(t, err)
		if rev != 0 {
			t.Fatalf("initial rematched revision %d", rev)
		}
		moved, err := e.s.SetRematchedRevision(e.ctx, 0, 4)
		ok(t, err)
		if !moved {
			t.Fatal("0 -> 4 refused")
		}
		moved, err = e.s.SetRematchedRevision(e.ctx, 0, 5)
		ok(t, err)
		if moved {
			t.Fatal("0 -> 5 accepted although the revision is 4")
		}
		rev, err = e.s.RematchedRevision(e.ctx)
		ok(t, err)
		if rev != 4 {
			t.Errorf("rematched revision %d, want 4", rev)
		}
	}},
	{"scan data of manifests no repository stores is removed", func(t *testing.T, e *env) {
		e.project("p")
		kept := e.image("p/app", "kept", "v1")
		gone := e.image("p/app", "gone", "v2")
		twice := e.image("p/app", "twice")
		e.image("p/other", "twice")
		for _, m := range []*store.Manifest{kept, gone, twice} {
			d := m.Digest.String()
			ok(t, e.s.PutScanReport(e.ctx, report(d, 1, t0, "CVE-1")))
			for _, pl := range []string{"linux/amd64", "linux/arm64"} {
				ok(t, e.s.PutInventory(e.ctx, store.InventoryKey{Digest: d, Platform: pl}, debianInventory(), bySource))
			}
			e.enqueue(d)
		}
		// A running job of a deleted manifest is left to end on its own.
		running, _ := e.enqueue("sha256:running")
		for {
			c := e.claim("w1")
			if c == nil {
				t.Fatal("the job of sha256:running was not claimed")
			}
			if c.ID == running.ID {
				break
			}
			ok(t, e.s.FinishScanJob(e.ctx, c.ID, "w1", store.ScanJobResult{Status: store.ScanDone}))
		}
		ok(t, e.s.DeleteManifest(e.ctx, "p/app", gone.Digest))
		ok(t, e.s.DeleteManifest(e.ctx, "p/app", twice.Digest))
		c, err := e.s.DeleteOrphanScanData(e.ctx)
		ok(t, err)
		if c != (store.ScanCleanup{Reports: 1, Inventories: 2, Jobs: 1}) {
			t.Errorf("DeleteOrphanScanData = %+v, want one report, two inventories, one job", c)
		}
		_, err = e.s.ScanReport(e.ctx, gone.Digest.String())
		wantCode(t, err, apperr.ENOTFOUND, "", "")
		_, err = e.s.Inventory(e.ctx, store.InventoryKey{Digest: gone.Digest.String(), Platform: "linux/arm64"})
		wantCode(t, err, apperr.ENOTFOUND, "", "")
		_, err = e.s.ScanJob(e.ctx, store.ScanJobManifest, gone.Digest.String())
		wantCode(t, err, apperr.ENOTFOUND, "", "")
		if ds, err := e.s.ScanReportsWithAdvisories(e.ctx, []string{"CVE-1"}); err != nil || len(ds) != 2 || slices.Contains(ds, gone.Digest.String()) {
			t.Errorf("reports with CVE-1 = %q, %v; want the two kept digests", ds, err)
		}
		for _, m := range []*store.Manifest{kept, twice} {
			d := m.Digest.String()
			if _, err := e.s.ScanReport(e.ctx, d); err != nil {
				t.Errorf("report of stored %s: %v", d, err)
			}
			if _, err := e.s.Inventory(e.ctx, store.InventoryKey{Digest: d, Platform: "linux/amd64"}); err != nil {
				t.Errorf("inventory of stored %s: %v", d, err)
			}
			if _, err := e.s.ScanJob(e.ctx, store.ScanJobManifest, d); err != nil {
				t.Errorf("job of stored %s: %v", d, err)
			}
		}
		if j, err := e.s.ScanJob(e.ctx, store.ScanJobManifest, "sha256:running"); err != nil || j.Status != store.ScanRunning {
			t.Errorf("running job = %+v, %v; want it left running", j, err)
		}
		c, err = e.s.DeleteOrphanScanData(e.ctx)
		ok(t, err)
		if c != (store.ScanCleanup{}) {
			t.Errorf("second DeleteOrphanScanData = %+v, want nothing", c)
		}
	}},
	{"tags show their manifest's scan job", func(t *testing.T, e *env) {
		e.project("p")
		m1 := e.image("p/app", "one", "a-running")
		m2 := e.image("p/app", "two", "b-queued", "c-queued-too")
		m3 := e.image("p/app", "three", "d-failed")
		e.image("p/app", "four", "e-never")
		ok(t, e.s.PutScanReport(e.ctx, report(m1.Digest.String(), 1, t0, "CVE-1")))
		e.enqueue(m1.Digest.String())
		c := e.claim("w1")
		ok(t, e.s.RenewScanJob(e.ctx, c.ID, "w1", "matching", time.Minute))
		e.enqueue(m3.Digest.String())
		c3 := e.claim("w1")
		ok(t, e.s.FinishScanJob(e.ctx, c3.ID, "w1", store.ScanJobResult{Status: store.ScanFailed, Error: "manifest gone"}))
		e.enqueue(m2.Digest.String())
		tagged, err := e.s.TaggedScanReports(e.ctx, "p/app")
		ok(t, err)
		var got []string
		for _, tr := range tagged {
			s := tr.Tag
			if tr.Report != nil {
				s += " report=" + tr.Report.Status
			}
			if tr.Job != nil {
				s += fmt.Sprintf(" job=%s/%s/%d/%s", tr.Job.Status, tr.Job.Stage, tr.Job.Attempts, tr.Job.LastError)
			}
			got = append(got, s)
		}
		want := []string{"a-running report=done job=running/matching/1/", "b-queued job=queued//0/", "c-queued-too job=queued//0/",
			"d-failed job=failed//1/manifest gone", "e-never"}
		if c.Subject != m1.Digest.String() || !slices.Equal(got, want) {
			t.Errorf("TaggedScanReports = %q, want %q", got, want)
		}
	}},
	{"reports per tag, per project, repositories of a manifest", func(t *testing.T, e *env) {
		e.project("p")
		e.project("q")
		m1 := e.image("p/app", "one", "v1", "latest")
		m2 := e.image("p/app", "two", "v2")
		e.image("p/other", "one", "stable")
		e.image("q/x", "one")
		ok(t, e.s.PutScanReport(e.ctx, report(m1.Digest.String(), 1, t0, "CVE-1")))
		tagged, err := e.s.TaggedScanReports(e.ctx, "p/app")
		ok(t, err)
		var got []string
		for _, tr := range tagged {
			s := tr.Tag + "=" + tr.Digest[:12]
			if tr.Report != nil {
				s += fmt.Sprintf(" %s high=%d", tr.Report.Status, tr.Report.Counts.High)
			}
			got = append(got, s)
		}
		d1, d2 := m1.Digest.String()[:12], m2.Digest.String()[:12]
		if want := []string{"latest=" + d1 + " done high=1", "v1=" + d1 + " done high=1", "v2=" + d2}; !slices.Equal(got, want) {
			t.Errorf("TaggedScanReports = %q, want %q", got, want)
		}
		_, err = e.s.TaggedScanReports(e.ctx, "p/none")
		wantCode(t, err, apperr.ENOTFOUND, "", "")
		sums, tagCount, err := e.s.ProjectScanReports(e.ctx, "p")
		ok(t, err)
		if tagCount != 2 || len(sums) != 1 || sums[0].Digest != m1.Digest.String() {
			t.Errorf("ProjectScanReports = %+v, %d tagged manifests; want m1's report of 2", sums, tagCount)
		}
		_, _, err = e.s.ProjectScanReports(e.ctx, "none")
		wantCode(t, err, apperr.ENOTFOUND, "", "")
		repos, err := e.s.ManifestRepositories(e.ctx, m1.Digest.String(), 0)
		ok(t, err)
		if !slices.Equal(repos, []string{"p/app", "p/other", "q/x"}) {
			t.Errorf("ManifestRepositories = %v", repos)
		}
		repos, err = e.s.ManifestRepositories(e.ctx, m1.Digest.String(), 1)
		ok(t, err)
		if !slices.Equal(repos, []string{"p/app"}) {
			t.Errorf("ManifestRepositories limit 1 = %v", repos)
		}
	}},
	{"indexes of a manifest", func(t *testing.T, e *env) {
		e.project("p")
		amd := e.image("p/r", "amd64")
		arm := e.image("p/r", "arm64")
		for _, name := range []string{"index", "index2"} {
			ok(t, e.s.PutBlob(e.ctx, dig(name), 5))
			refs := []store.Reference{{Digest: amd.Digest, Kind: store.RefManifest, Required: true}}
			if name == "index" {
				refs = append(refs, store.Reference{Digest: arm.Digest, Kind: store.RefManifest, Required: true})
			}
			ok(t, e.s.PutManifest(e.ctx, &store.Manifest{Repository: "p/r", Digest: dig(name),
				MediaType: "application/vnd.oci.image.index.v1+json", Size: 5, References: refs}, nil))
		}
		got, err := e.s.IndexesOf(e.ctx, amd.Digest.String())
		ok(t, err)
		want := []store.ManifestRef{{Repository: "p/r", Digest: dig("index").String()}, {Repository: "p/r", Digest: dig("index2").String()}}
		slices.SortFunc(want, func(a, b store.ManifestRef) int { return strings.Compare(a.Digest, b.Digest) })
		if !slices.Equal(got, want) {
			t.Errorf("IndexesOf(amd64) = %v, want %v", got, want)
		}
		got, err = e.s.IndexesOf(e.ctx, arm.Digest.String())
		ok(t, err)
		if len(got) != 1 || got[0].Digest != dig("index").String() {
			t.Errorf("IndexesOf(arm64) = %v", got)
		}
		got, err = e.s.IndexesOf(e.ctx, dig("index").String())
		ok(t, err)
		if len(got) != 0 {
			t.Errorf("IndexesOf(index) = %v", got)
		}
	}},
}

var scanSettingsTests = []test{
	{"default, set, and gone with the project", func(t *testing.T, e *env) {
		e.project("p")
		s, err := e.s.ScanSettings(e.ctx, "p")
		ok(t, err)
		if s != store.DefaultScanSettings() || !s.ScanOnPush || s.SBOMReferrer {
			t.Errorf("default settings %+v, want scan on push, no SBOM referrer", s)
		}
		ok(t, e.s.PutScanSettings(e.ctx, "p", store.ScanSettings{ScanOnPush: true, SBOMReferrer: true}))
		if s, err = e.s.ScanSettings(e.ctx, "p"); err != nil || s != (store.ScanSettings{ScanOnPush: true, SBOMReferrer: true}) {
			t.Errorf("settings after turning sbomReferrer on: %+v, %v", s, err)
		}
		ok(t, e.s.PutScanSettings(e.ctx, "p", store.ScanSettings{ScanOnPush: false}))
		s, err = e.s.ScanSettings(e.ctx, "p")
		ok(t, err)
		if s.ScanOnPush {
			t.Error("scanOnPush still on after turning it off")
		}
		ok(t, e.s.PutScanSettings(e.ctx, "p", store.ScanSettings{ScanOnPush: true}))
		s, err = e.s.ScanSettings(e.ctx, "p")
		ok(t, err)
		if !s.ScanOnPush {
			t.Error("scanOnPush off after turning it on")
		}
		_, err = e.s.ScanSettings(e.ctx, "none")
		wantCode(t, err, apperr.ENOTFOUND, "", "none")
		wantCode(t, e.s.PutScanSettings(e.ctx, "none", store.ScanSettings{}), apperr.ENOTFOUND, "", "none")
		ok(t, e.s.PutScanSettings(e.ctx, "p", store.ScanSettings{ScanOnPush: false}))
		ok(t, e.s.DeleteProject(e.ctx, "p"))
		e.project("p")
		s, err = e.s.ScanSettings(e.ctx, "p")
		ok(t, err)
		if !s.ScanOnPush {
			t.Error("a new project of a deleted one's name inherited its settings")
		}
	}},
}

var layerCacheTests = []test{
	{"get, put, replace, prune other versions", func(t *testing.T, e *env) {
		_, found, err := e.s.LayerResult(e.ctx, "sha256:l", "v1")
		ok(t, err)
		if found {
			t.Fatal("empty cache has a result")
		}
		ok(t, e.s.PutLayerResult(e.ctx, "sha256:l", "v1", []byte("one")))
		ok(t, e.s.PutLayerResult(e.ctx, "sha256:l", "v2", []byte("two")))
		ok(t, e.s.PutLayerResult(e.ctx, "sha256:m", "v2", []byte{}))
		data, found, err := e.s.LayerResult(e.ctx, "sha256:l", "v1")
		ok(t, err)
		if !found || string(data) != "one" {
			t.Errorf("v1 = %q, %v", data, found)
		}
		ok(t, e.s.PutLayerResult(e.ctx, "sha256:l", "v1", []byte("uno")))
		data, _, err = e.s.LayerResult(e.ctx, "sha256:l", "v1")
		ok(t, err)
		if string(data) != "uno" {
			t.Errorf("replaced v1 = %q", data)
		}
		data, found, err = e.s.LayerResult(e.ctx, "sha256:m", "v2")
		ok(t, err)
		if !found || len(data) != 0 {
			t.Errorf("empty result = %q, %v", data, found)
		}
		n, err := e.s.DeleteLayerResults(e.ctx, "v2")
		ok(t, err)
		if n != 1 {
			t.Errorf("pruned %d results, want 1", n)
		}
		if _, found, _ := e.s.LayerResult(e.ctx, "sha256:l", "v1"); found {
			t.Error("v1 result survived pruning")
		}
		wantCode(t, e.s.PutLayerResult(e.ctx, "", "v1", nil), apperr.EINVALID, "", "diffID")
	}},
}
