package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/rbac"
	"github.com/customs-dev/customs/internal/scan"
	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/sqlite"
	"github.com/customs-dev/customs/internal/vulndb/match"
	"github.com/customs-dev/customs/internal/vulndb/severity"
)

// fakeScanner serves fixed reports and records scan requests.
type fakeScanner struct {
	mu        sync.Mutex
	reports   map[string]*report.Report
	requested []string
}

func (f *fakeScanner) Report(_ context.Context, d string) (*report.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.reports[d]
	if !ok {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "%s has not been scanned", d)
	}
	c := *r
	return &c, nil
}

func (f *fakeScanner) ReportWithInventory(ctx context.Context, d string) (*report.Report, error) {
	r, err := f.Report(ctx, d)
	if err != nil {
		return nil, err
	}
	r.Inventory = &inventory.Inventory{Distro: r.Distro, Packages: []inventory.Package{
		{Ecosystem: "Alpine", Name: "musl", Version: "1.1.20-r4", PURL: "pkg:apk/alpine/musl@1.1.20-r4?distro=3.9.6"}}}
	return r, nil
}

func (f *fakeScanner) Request(_ context.Context, repo string, d digest.Digest, trigger string) (*store.ScanJob, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requested = append(f.requested, repo+"@"+d.String()+" "+trigger)
	return &store.ScanJob{Kind: store.ScanJobManifest, Subject: d.String(), Repository: repo, Trigger: trigger, Status: store.ScanQueued}, nil
}

func (f *fakeScanner) Queue(context.Context, int) (*scan.QueueStatus, error) {
	return &scan.QueueStatus{Queued: 1, Running: 1, VulnDBRevision: 7, RematchedRevision: 7,
		Jobs: []store.ScanJob{{Kind: store.ScanJobManifest, Subject: "sha256:x", Status: store.ScanRunning, Stage: "reading 3 layers"}}}, nil
}

type scanEnv struct {
	*apiEnv
	fake   *fakeScanner
	digest digest.Digest
}

// newScanEnv is the API with the scan endpoints, a manifest tagged
// p/app:latest (also in q/copy) with a report, and p/app:old without one.
func newScanEnv(t *testing.T) *scanEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	db, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	keys, err := auth.OpenKeyDir(filepath.Join(dir, "keys"), auth.KeyDirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	svc, err := auth.NewService(auth.Options{Users: db, Projects: db, Members: db, Robots: db,
		RobotPepper: []byte("0123456789abcdef0123456789abcdef"), Keys: keys, PasswordParams: fast, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	h, err := auth.HashPassword(adminPW, fast)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateUser(ctx, &store.User{Name: "admin", PasswordHash: h, Admin: true}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"p", "q"} {
		if err := db.CreateProject(ctx, &store.Project{Name: p}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(repo, name string, tags ...string) digest.Digest {
		cfg, self := digest.FromString(name+"/config"), digest.FromString(name)
		for _, d := range []digest.Digest{cfg, self} {
			if err := db.PutLinkedBlob(ctx, repo, d, 10); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.PutManifest(ctx, &store.Manifest{Repository: repo, Digest: self, MediaType: "application/vnd.oci.image.manifest.v1+json",
			Size: 10, References: []store.Reference{{Digest: cfg, Kind: store.RefBlob, Required: true}}}, tags); err != nil {
			t.Fatal(err)
		}
		return self
	}
	d := put("p/team/app", "img", "latest")
	put("q/copy", "img", "v1")
	put("p/team/app", "old", "old")
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rep := &report.Report{Digest: d.String(), Status: report.StatusDone, VulnDBRevision: 3, ScannedAt: now, MatchedAt: now,
		Distro: &inventory.Distro{ID: "alpine", VersionID: "3.9.6"}, Packages: 1, Counts: report.Counts{Critical: 1},
		Findings: []report.Finding{report.FromMatch(match.Finding{AdvisoryID: "ALPINE-CVE-2019-14697", Status: match.StatusFixed,
			Fixed: []string{"1.1.20-r5"}, Severity: severity.Rating{Level: severity.Critical, Score: 9.8, Source: severity.SourceCVSSv3},
			Package: inventory.Package{Ecosystem: "Alpine", Name: "musl", Version: "1.1.20-r4"}})}}
	if err := db.PutScanReport(ctx, &store.ScanReport{Digest: d.String(), Status: store.ScanDone, VulnRevision: 3,
		ScannedAt: now, Packages: 1, Counts: store.ScanCounts{Critical: 1}, Data: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	fake := &fakeScanner{reports: map[string]*report.Report{d.String(): rep}}
	srv := httptest.NewServer(api.New(api.Options{Store: db, Auth: svc, Recorder: rec, Logger: logger,
		Scans: fake, ScanStore: db}))
	t.Cleanup(srv.Close)
	env := &apiEnv{url: srv.URL, db: db, rec: rec, admin: &apiclient.Client{BaseURL: srv.URL, Username: "admin", Password: adminPW}}
	return &scanEnv{apiEnv: env, fake: fake, digest: d}
}

func TestScanReportPermissions(t *testing.T) {
	e := newScanEnv(t)
	ctx := context.Background()
	guest := e.user(t, "guest", "guest-pw-1", rbac.RoleLimitedGuest)
	outsider := e.user(t, "outsider", "outsider-pw-1", 0)
	anon := &apiclient.Client{BaseURL: e.url}

	r, err := guest.ScanReport(ctx, e.digest.String())
	if err != nil {
		t.Fatalf("a limited guest of p reading the report: %v", err)
	}
	if r.Status != report.StatusDone || len(r.Findings) != 1 || r.Findings[0].Fix != "upgrade musl from 1.1.20-r4 to 1.1.20-r5 or later" {
		t.Errorf("report %+v", r)
	}
	if _, err := e.admin.ScanReport(ctx, e.digest.String()); err != nil {
		t.Errorf("admin: %v", err)
	}
	_, err = outsider.ScanReport(ctx, e.digest.String())
	wantCode(t, "a user of no project holding it", err, apperr.ENOTFOUND)
	_, err = anon.ScanReport(ctx, e.digest.String())
	wantCode(t, "anonymous", err, apperr.EUNAUTHORIZED)
	_, err = e.admin.ScanReport(ctx, digest.FromString("never").String())
	wantCode(t, "a digest never scanned", err, apperr.ENOTFOUND)
	_, err = e.admin.ScanReport(ctx, "not-a-digest")
	wantCode(t, "a malformed digest", err, apperr.EINVALID)

	// Member of q, where a copy lives: allowed through that repository.
	if _, err := e.admin.AddMember(ctx, "q", "", "outsider", rbac.RoleGuest); err != nil {
		t.Fatal(err)
	}
	if _, err := outsider.ScanReport(ctx, e.digest.String()); err != nil {
		t.Errorf("a guest of q, which holds a copy: %v", err)
	}
	// Public projects let anyone read.
	if _, err := e.admin.SetProjectPublic(ctx, "p", true); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.ScanReport(ctx, e.digest.String()); err != nil {
		t.Errorf("anonymous on a public project: %v", err)
	}
}

func TestScanSBOM(t *testing.T) {
	e := newScanEnv(t)
	ctx := context.Background()
	for _, tc := range []struct{ format, want string }{
		{"cyclonedx", `"bomFormat": "CycloneDX"`},
		{"spdx", `"spdxVersion": "SPDX-2.3"`},
	} {
		b, err := e.admin.SBOM(ctx, e.digest.String(), tc.format)
		if err != nil {
			t.Fatalf("%s: %v", tc.format, err)
		}
		if !json.Valid(b) || !strings.Contains(string(b), tc.want) || !strings.Contains(string(b), "pkg:apk/alpine/musl@1.1.20-r4") {
			t.Errorf("%s SBOM lacks %s or the musl purl:\n%.600s", tc.format, tc.want, b)
		}
	}
	_, err := e.admin.SBOM(ctx, e.digest.String(), "xml")
	wantCode(t, "unknown format", err, apperr.EINVALID)
}

func TestScanRequestsAndSummaries(t *testing.T) {
	e := newScanEnv(t)
	ctx := context.Background()
	dev := e.user(t, "dev", "dev-pw-12", rbac.RoleDeveloper)
	maint := e.user(t, "maint", "maint-pw-1", rbac.RoleMaintainer)

	_, err := dev.RequestScan(ctx, "p/team/app", "latest")
	wantCode(t, "a developer requesting a scan", err, apperr.EDENIED)
	if got := e.rec.find("artifact.scan"); len(got) != 1 || got[0].Outcome != "denied" {
		t.Errorf("denied scan request audit: %+v", got)
	}
	req, err := maint.RequestScan(ctx, "p/team/app", "latest")
	if err != nil {
		t.Fatalf("a maintainer requesting a scan by tag: %v", err)
	}
	if req.Digest != e.digest.String() || req.Job.Status != store.ScanQueued || req.Repository != "p/team/app" {
		t.Errorf("scan request answer %+v", req)
	}
	if _, err := maint.RequestScan(ctx, "p/team/app", e.digest.String()); err != nil {
		t.Errorf("by digest: %v", err)
	}
	_, err = maint.RequestScan(ctx, "p/team/app", "missing")
	wantCode(t, "an unknown tag", err, apperr.ENOTFOUND)
	if got := strings.Join(e.fake.requested, "|"); got != "p/team/app@"+e.digest.String()+" api|p/team/app@"+e.digest.String()+" api" {
		t.Errorf("requests %q", got)
	}

	rs, err := dev.RepositoryScans(ctx, "p/team/app")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.Tags) != 2 || rs.Tags[0].Tag != "latest" || rs.Tags[0].Report == nil || rs.Tags[0].Report.Counts.Critical != 1 ||
		rs.Tags[0].Status != "done" || rs.Tags[1].Tag != "old" || rs.Tags[1].Report != nil || rs.Tags[1].Status != scan.StatusUnscanned {
		t.Errorf("repository scans %+v", rs)
	}
	// The current status per tag: a rescan of latest running (its last
	// report still shown), old queued for a retry, then failed.
	oldDigest := digest.FromString("old").String()
	for _, subject := range []string{e.digest.String(), oldDigest} {
		if _, err := e.db.EnqueueScanJob(ctx, &store.ScanJob{Kind: store.ScanJobManifest, Subject: subject, Repository: "p/team/app", Trigger: "api"}); err != nil {
			t.Fatal(err)
		}
	}
	claim := func(subject string) *store.ScanJob {
		t.Helper()
		for {
			j, err := e.db.ClaimScanJob(ctx, "w", time.Minute)
			if err != nil || j == nil {
				t.Fatalf("claiming the job of %s: %v, %v", subject, j, err)
			}
			if j.Subject == subject {
				return j
			}
			// Put the other one back, due later.
			if err := e.db.FinishScanJob(ctx, j.ID, "w", store.ScanJobResult{Status: store.ScanQueued, Defer: true, RunAfter: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	running := claim(e.digest.String())
	if err := e.db.RenewScanJob(ctx, running.ID, "w", "reading 3 layers", time.Minute); err != nil {
		t.Fatal(err)
	}
	tagStatus := func() []string {
		t.Helper()
		rs, err := dev.RepositoryScans(ctx, "p/team/app")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, ts := range rs.Tags {
			s := ts.Tag + " " + ts.Status + "|" + ts.Stage + "|" + ts.Reason
			if ts.Report != nil {
				s += " report=" + ts.Report.Status
			}
			out = append(out, s)
		}
		return out
	}
	if got, want := tagStatus(), []string{"latest running|reading 3 layers| report=done", "old queued||"}; !slices.Equal(got, want) {
		t.Errorf("while latest is rescanned: %q, want %q", got, want)
	}
	if err := e.db.FinishScanJob(ctx, running.ID, "w", store.ScanJobResult{Status: store.ScanDone}); err != nil {
		t.Fatal(err)
	}
	old := claim(oldDigest)
	if err := e.db.FinishScanJob(ctx, old.ID, "w", store.ScanJobResult{Status: store.ScanQueued, Error: "blob store unavailable", RunAfter: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got, want := tagStatus(), []string{"latest done|| report=done", "old queued||retrying after: blob store unavailable"}; !slices.Equal(got, want) {
		t.Errorf("after latest's rescan, old retried: %q, want %q", got, want)
	}
	old = claim(oldDigest)
	if err := e.db.FinishScanJob(ctx, old.ID, "w", store.ScanJobResult{Status: store.ScanFailed, Error: "manifest is no longer stored"}); err != nil {
		t.Fatal(err)
	}
	if got, want := tagStatus(), []string{"latest done|| report=done", "old failed||manifest is no longer stored"}; !slices.Equal(got, want) {
		t.Errorf("after old failed without a report: %q, want %q", got, want)
	}
	_, err = dev.RepositoryScans(ctx, "p/none")
	wantCode(t, "an unknown repository", err, apperr.ENOTFOUND)

	ps, err := dev.ProjectScans(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if ps.Manifests != 2 || ps.Scanned != 1 || ps.ByStatus["done"] != 1 || ps.Vulnerable != 1 || ps.Findings.Critical != 1 || !ps.ScanOnPush {
		t.Errorf("project scans %+v", ps)
	}

	_, err = dev.ScanQueue(ctx)
	wantCode(t, "a non-admin reading the queue", err, apperr.EDENIED)
	q, err := e.admin.ScanQueue(ctx)
	if err != nil || q.Running != 1 || len(q.Jobs) != 1 || q.Jobs[0].Stage != "reading 3 layers" || q.VulnDBRevision != 7 {
		t.Errorf("queue %+v, %v", q, err)
	}
}

func TestScanOnPushSetting(t *testing.T) {
	e := newScanEnv(t)
	ctx := context.Background()
	dev := e.user(t, "dev", "dev-pw-12", rbac.RoleDeveloper)
	p, err := e.admin.Project(ctx, "p")
	if err != nil || p.ScanOnPush == nil || !*p.ScanOnPush {
		t.Fatalf("project p: %+v, %v; want scanOnPush true by default", p, err)
	}
	_, err = dev.SetScanOnPush(ctx, "p", false)
	wantCode(t, "a developer changing the setting", err, apperr.EDENIED)
	p, err = e.admin.SetScanOnPush(ctx, "p", false)
	if err != nil || p.ScanOnPush == nil || *p.ScanOnPush {
		t.Fatalf("after turning it off: %+v, %v", p, err)
	}
	if got := e.rec.find("project.update"); len(got) == 0 || got[len(got)-1].Details["scanOnPush"] != "false" {
		t.Errorf("audit of the change: %+v", got)
	}
	ps, err := e.admin.ProjectScans(ctx, "p")
	if err != nil || ps.ScanOnPush {
		t.Errorf("project scans after turning scanOnPush off: %+v, %v", ps, err)
	}

	// sbomReferrer: off by default; turning it on keeps scanOnPush.
	if p.SBOMReferrer == nil || *p.SBOMReferrer {
		t.Errorf("sbomReferrer %v, want false by default", p.SBOMReferrer)
	}
	_, err = dev.SetSBOMReferrer(ctx, "p", true)
	wantCode(t, "a developer changing sbomReferrer", err, apperr.EDENIED)
	p, err = e.admin.SetSBOMReferrer(ctx, "p", true)
	if err != nil || p.SBOMReferrer == nil || !*p.SBOMReferrer || p.ScanOnPush == nil || *p.ScanOnPush {
		t.Fatalf("after turning sbomReferrer on: %+v, %v; want it on and scanOnPush still off", p, err)
	}
	if got := e.rec.find("project.update"); len(got) == 0 || got[len(got)-1].Details["sbomReferrer"] != "true" {
		t.Errorf("audit of the sbomReferrer change: %+v", got)
	}
	if s, err := e.db.ScanSettings(ctx, "p"); err != nil || s != (store.ScanSettings{ScanOnPush: false, SBOMReferrer: true}) {
		t.Errorf("stored settings %+v, %v", s, err)
	}
}
