package decide_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/decide"
	"github.com/customs-dev/customs/internal/decide/decidetest"
	"github.com/customs-dev/customs/internal/policy"
	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/sqlite"
)

const kuardPolicy = `apiVersion: customs.dev/v1alpha1
kind: Policy
metadata:
  name: project-kuard
spec:
  scope:
    projects: [kuard]
  vulnerabilities:
    maxSeverity: high
`

const clusterPolicy = `apiVersion: customs.dev/v1alpha1
kind: Policy
metadata:
  name: cluster-default
spec:
  tags:
    deny: [latest]
`

func openDB(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "meta.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func input(t *testing.T, ref string, dg digest.Digest) *policy.Input {
	t.Helper()
	img, err := policy.ParseImage(ref)
	if err != nil {
		t.Fatal(err)
	}
	return &policy.Input{Image: img, Digest: dg.String(), Project: "kuard"}
}

// TestScanSummary: never scanned (nil), queued, and done with the stored
// findings.
func TestScanSummary(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	d := decide.New(decide.Options{Store: db})
	dg := digest.FromString("m")
	if s, err := d.ScanSummary(ctx, dg.String()); err != nil || s != nil {
		t.Fatalf("never scanned: %+v %v, want nil", s, err)
	}
	if _, err := db.EnqueueScanJob(ctx, &store.ScanJob{Kind: store.ScanJobManifest, Subject: dg.String(), Repository: "kuard/k"}); err != nil {
		t.Fatal(err)
	}
	if s, err := d.ScanSummary(ctx, dg.String()); err != nil || s == nil || s.Status != policy.ScanQueued {
		t.Fatalf("queued: %+v %v, want status queued", s, err)
	}
	decidetest.PutMuslReport(t, db, dg, time.Now())
	s, err := d.ScanSummary(ctx, dg.String())
	if err != nil || s.Status != policy.ScanDone || len(s.Findings) != 1 {
		t.Fatalf("done: %+v %v", s, err)
	}
	f := s.Findings[0]
	if f.ID != "ALPINE-CVE-2019-14697" || f.Package != "musl" || f.Installed != "1.1.20-r4" || f.Severity != policy.Critical ||
		len(f.Fixed) != 1 || f.Fixed[0] != "1.1.20-r5" || s.VulnDBRevision != 3 {
		t.Fatalf("finding %+v of summary %+v", f, s)
	}
	// The same stored report is decoded once; a new version of it (a
	// rematch without the finding) is decoded again.
	if again, err := d.ScanSummary(ctx, dg.String()); err != nil || again != s {
		t.Fatalf("the same report again: %p %v, want the kept summary %p", again, err, s)
	}
	var empty bytes.Buffer
	later := time.Now().Add(time.Minute)
	if err := report.EncodeJSON(&empty, &report.Report{Digest: dg.String(), Status: report.StatusDone, VulnDBRevision: 4, MatchedAt: later}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutScanReport(ctx, &store.ScanReport{Digest: dg.String(), Status: store.ScanDone, VulnRevision: 4,
		MatchedAt: later, ScannedAt: later, Data: empty.Bytes()}); err != nil {
		t.Fatal(err)
	}
	if s, err := d.ScanSummary(ctx, dg.String()); err != nil || len(s.Findings) != 0 || s.VulnDBRevision != 4 {
		t.Fatalf("after a rematch without findings: %+v %v, want no findings at vulndb revision 4", s, err)
	}
}

// TestDecide: the input is completed with the stored scan (not modified),
// Select keeps only the chosen policies, DecideWith adds a policy for one
// call, and without policies the default answers without evaluation.
func TestDecide(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	dg := digest.FromString("m")
	all := decide.New(decide.Options{Store: db, Config: policy.Config{Default: policy.Allowed}})
	projects := decide.New(decide.Options{Store: db, Config: policy.Config{Default: policy.Allowed},
		Select: func(p *policy.Policy) bool { return len(p.Spec.Scope.Projects) > 0 }})

	in := input(t, "r.example/kuard/k:latest", dg)
	dec, err := all.Decide(ctx, in)
	if err != nil || !dec.Allowed() || !dec.Default {
		t.Fatalf("no policies: %+v %v, want the default (allowed)", dec, err)
	}

	for _, doc := range []struct{ name, project, text string }{{"project-kuard", "kuard", kuardPolicy}, {"cluster-default", "", clusterPolicy}} {
		if err := db.PutPolicy(ctx, &store.PolicyDocument{Name: doc.name, Project: doc.project, Document: doc.text}); err != nil {
			t.Fatal(err)
		}
	}
	decidetest.PutMuslReport(t, db, dg, time.Now())
	dec, err = all.Decide(ctx, in)
	if err != nil || dec.Allowed() || in.Scan != nil {
		t.Fatalf("all policies: %+v %v (input scan %v), want denied and the input untouched", dec, err, in.Scan)
	}
	if len(dec.Policies) != 2 {
		t.Fatalf("applied %v, want the cluster default and the project policy", dec.Policies)
	}
	dec, err = projects.Decide(ctx, in)
	if err != nil || dec.Allowed() || len(dec.Policies) != 1 || dec.Policies[0].Name != "project-kuard" || dec.Rule != policy.RuleVulnerabilities {
		t.Fatalf("project policies only: %+v %v", dec, err)
	}

	// What-if: a policy file replacing the stored project policy with a
	// critical threshold that allowlists nothing still denies; one that
	// allowlists the CVE allows.
	extra, err := policy.Parse("whatif.yaml", []byte(kuardPolicy+"    allowlist:\n    - id: CVE-2019-14697\n")) // same name: replaces
	if err != nil {
		t.Fatal(err)
	}
	dec, err = projects.DecideWith(ctx, in, extra)
	if err != nil || !dec.Allowed() {
		t.Fatalf("what-if with the CVE allowlisted: %+v %v, want allowed", dec, err)
	}
	// A runtime policy given to the registry-like decider is not applied
	// (Select), as the door would not apply it.
	runtimeExtra, err := policy.Parse("runtime.yaml", []byte(strings.Replace(clusterPolicy, "cluster-default", "what-if-runtime", 1)))
	if err != nil {
		t.Fatal(err)
	}
	dec, err = projects.DecideWith(ctx, in, append(runtimeExtra, extra...))
	if err != nil || !dec.Allowed() || len(dec.Policies) != 1 {
		t.Fatalf("what-if with a runtime policy at the project-only decider: %+v %v, want it ignored", dec, err)
	}
	// The stored decision is unchanged by the what-if.
	if dec, err = projects.Decide(ctx, in); err != nil || dec.Allowed() {
		t.Fatalf("after the what-if: %+v %v, want denied", dec, err)
	}
	// A bad input is EINVALID, naming the field.
	bad := *in
	bad.Image.Repository = "a//b"
	if _, err := projects.Decide(ctx, &bad); err == nil || !strings.Contains(err.Error(), "empty path segment") {
		t.Fatalf("bad input: %v", err)
	}
}

// TestSystemAllowlist: the stored system allowlist reaches the input,
// allows a finding where the project lets it apply, and a change to it
// (a new global policy revision) is seen at once.
func TestSystemAllowlist(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	dg := digest.FromString("m")
	decidetest.PutMuslReport(t, db, dg, time.Now())
	if err := db.PutPolicy(ctx, &store.PolicyDocument{Name: "project-kuard", Project: "kuard", Document: kuardPolicy}); err != nil {
		t.Fatal(err)
	}
	d := decide.New(decide.Options{Store: db, Allowlists: db, Config: policy.Config{Default: policy.Allowed}})
	in := input(t, "r.example/kuard/k:v1", dg)
	if dec, err := d.Decide(ctx, in); err != nil || dec.Allowed() {
		t.Fatalf("before the system allowlist: %+v %v, want denied", dec, err)
	}
	if _, err := db.PutSystemAllowlistEntry(ctx, &store.AllowlistEntry{ID: "CVE-2019-14697", AddedBy: "admin"}); err != nil {
		t.Fatal(err)
	}
	full, err := d.Complete(ctx, in)
	if err != nil || len(full.SystemAllowlist.Entries) != 1 || full.SystemAllowlist.Revision == "" || full.Scan == nil {
		t.Fatalf("Complete: %+v %v, want the scan and the one system entry with a revision", full, err)
	}
	if dec, err := d.Decide(ctx, in); err != nil || !dec.Allowed() {
		t.Fatalf("with the system allowlist: %+v %v, want allowed", dec, err)
	}
	// A project policy that turns the system allowlist off denies again.
	if err := db.PutPolicy(ctx, &store.PolicyDocument{Name: "project-kuard", Project: "kuard",
		Document: kuardPolicy + "    useSystemAllowlist: false\n"}); err != nil {
		t.Fatal(err)
	}
	if dec, err := d.Decide(ctx, in); err != nil || dec.Allowed() {
		t.Fatalf("useSystemAllowlist false: %+v %v, want denied", dec, err)
	}
	if err := db.PutPolicy(ctx, &store.PolicyDocument{Name: "project-kuard", Project: "kuard", Document: kuardPolicy}); err != nil {
		t.Fatal(err)
	}
	// Removing the entry denies at once.
	if _, _, err := db.DeleteSystemAllowlistEntries(ctx, "cve-2019-14697"); err != nil {
		t.Fatal(err)
	}
	if dec, err := d.Decide(ctx, in); err != nil || dec.Allowed() {
		t.Fatalf("after removing the entry: %+v %v, want denied", dec, err)
	}
}

// TestRevisionStaleness: a policy change made through the Decider's own
// store applies to the next decision; one made through another handle on
// the same database (another replica) applies once RevisionMaxAge has
// passed, not before; with a negative RevisionMaxAge it applies at once.
func TestRevisionStaleness(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	open := func() *sqlite.DB {
		db, err := sqlite.Open(ctx, path, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	local, other := open(), open()
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	d := decide.New(decide.Options{Store: local, Config: policy.Config{Default: policy.Allowed}, RevisionMaxAge: 100 * time.Millisecond, Now: clock})
	every := decide.New(decide.Options{Store: local, Config: policy.Config{Default: policy.Allowed}, RevisionMaxAge: -1})
	in := input(t, "r.example/kuard/k:latest", "")
	allowed := func(d *decide.Decider) bool {
		t.Helper()
		dec, err := d.Decide(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return dec.Allowed()
	}
	if !allowed(d) || !allowed(every) {
		t.Fatal("no policy: refused, want the default (allowed)")
	}
	// Through this process: the next decision sees it.
	if err := local.PutPolicy(ctx, &store.PolicyDocument{Name: "cluster-default", Document: clusterPolicy}); err != nil {
		t.Fatal(err)
	}
	if allowed(d) {
		t.Fatal("after a local policy change: allowed, want the new policy's refusal of latest")
	}
	// Through another replica: the old revision until RevisionMaxAge.
	if _, err := other.DeletePolicy(ctx, "cluster-default", "admin"); err != nil {
		t.Fatal(err)
	}
	if !allowed(every) {
		t.Fatal("RevisionMaxAge -1: refused after another replica's delete, want allowed at once")
	}
	if allowed(d) {
		t.Fatal("another replica's change applied before RevisionMaxAge; the bound is not what is measured")
	}
	advance(99 * time.Millisecond)
	if allowed(d) {
		t.Fatal("another replica's change applied at 99ms of a 100ms bound")
	}
	advance(time.Millisecond)
	if !allowed(d) {
		t.Fatal("another replica's delete not applied after RevisionMaxAge, want allowed")
	}
	if rev, err := d.Revision(ctx); err != nil || rev != 2 {
		t.Fatalf("Revision = %d %v, want 2", rev, err)
	}
}
