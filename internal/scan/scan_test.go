package scan

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/scan/extract"
	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/vulndb"
	"github.com/customs-dev/customs/internal/vulndb/match"
	"github.com/customs-dev/customs/internal/vulndb/severity"
)

func extractConfig(t testing.TB) extract.Config {
	c := extract.DefaultConfig()
	c.TempDir = t.TempDir()
	return c
}

// report returns the report of m, failing the test on error.
func (e *env) report(d digest.Digest) *report.Report {
	e.t.Helper()
	r, err := e.s.Report(e.ctx, d.String())
	if err != nil {
		e.t.Fatalf("Report(%s): %v", d, err)
	}
	return r
}

func findingIDs(r *report.Report) []string {
	var ids []string
	for _, f := range r.Findings {
		ids = append(ids, f.AdvisoryID+" "+f.Package.Name+" "+f.InstalledVersion)
	}
	return ids
}

func TestPushScansAlpineImage(t *testing.T) {
	e := newEnv(t)
	e.advisory("ALPINE-CVE-2019-14697", muslAdvisory("1.1.20-r5"))
	base := alpineBase(t)
	img := image(t, "amd64", base)
	m := e.push("p/alpine", "3.9", img)

	r := e.report(m.Digest)
	if r.Status != report.StatusQueued {
		t.Fatalf("status right after the push = %s, want queued (a push never waits for a scan)", r.Status)
	}
	e.drain()
	r = e.report(m.Digest)
	if r.Status != report.StatusDone || r.Reason != "" {
		t.Fatalf("status %s (%s), want done", r.Status, r.Reason)
	}
	if r.Distro == nil || r.Distro.ID != "alpine" || r.Distro.VersionID != "3.9.6" {
		t.Errorf("distro %+v", r.Distro)
	}
	if r.Platform != "linux/amd64" || r.Packages != 2 || r.VulnDBRevision != 1 || r.ScannedAt.IsZero() {
		t.Errorf("platform %q, packages %d, revision %d, scannedAt %v", r.Platform, r.Packages, r.VulnDBRevision, r.ScannedAt)
	}
	if len(r.Findings) != 1 {
		t.Fatalf("findings %v, want ALPINE-CVE-2019-14697 on musl", findingIDs(r))
	}
	f := r.Findings[0]
	diffID, _ := base.DiffID()
	switch {
	case f.AdvisoryID != "ALPINE-CVE-2019-14697" || f.Package.Name != "musl" || f.Package.Ecosystem != "Alpine":
		t.Errorf("finding %+v", f)
	case f.Fix != "upgrade musl from 1.1.20-r4 to 1.1.20-r5 or later":
		t.Errorf("fix %q", f.Fix)
	case f.InstalledVersion != "1.1.20-r4" || len(f.FixedVersions) != 1 || f.FixedVersions[0] != "1.1.20-r5" || f.Status != match.StatusFixed:
		t.Errorf("versions: installed %q fixed %v status %s", f.InstalledVersion, f.FixedVersions, f.Status)
	case f.Layer != diffID.String():
		t.Errorf("layer %q, want the base layer's diffID %s", f.Layer, diffID)
	case f.Severity.Level != severity.Critical || f.Severity.Source != severity.SourceCVSSv3:
		t.Errorf("severity %+v", f.Severity)
	case len(f.Aliases) != 1 || f.Aliases[0] != "CVE-2019-14697" || len(f.References) != 1 || f.Summary == "":
		t.Errorf("aliases %v references %v summary %q", f.Aliases, f.References, f.Summary)
	case f.FirstSeen.IsZero():
		t.Error("firstSeen not set")
	}
	if r.Counts != (report.Counts{Critical: 1}) {
		t.Errorf("counts %+v", r.Counts)
	}
	inv, err := e.s.ReportWithInventory(e.ctx, m.Digest.String())
	if err != nil || inv.Inventory == nil || len(inv.Inventory.Packages) != 2 {
		t.Errorf("ReportWithInventory = %+v, %v", inv, err)
	}
	// A push of the same digest elsewhere is not scanned again.
	e.putManifest("q/alpine", "copy", m.MediaType, m.ArtifactType, mustRaw(t, img), nil)
	if j, _ := e.st.ScanJob(e.ctx, store.ScanJobManifest, m.Digest.String()); j.Status != store.ScanDone {
		t.Errorf("job after a second push of a scanned digest: %s", j.Status)
	}
	_, err = e.s.Report(e.ctx, digest.FromString("never").String())
	if !apperr.Is(err, apperr.ENOTFOUND) {
		t.Errorf("report of an unscanned digest: %v, want ENOTFOUND", err)
	}
}

func mustRaw(t testing.TB, img v1.Image) []byte {
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestSharedLayerIsReadOnce(t *testing.T) {
	e := newEnv(t)
	base := alpineBase(t)
	baseDigest, _ := base.Digest()
	a := e.push("p/a", "v1", image(t, "amd64", base, layer(t, "app/a.txt", "a")))
	b := e.push("p/b", "v1", image(t, "amd64", base, layer(t, "app/b.txt", "b")))
	e.drain()
	for _, m := range []*store.Manifest{a, b} {
		if r := e.report(m.Digest); r.Status != report.StatusDone || r.Packages != 2 {
			t.Fatalf("%s: %s (%s), %d packages", m.Repository, r.Status, r.Reason, r.Packages)
		}
	}
	if n := e.reads.count(digest.Digest(baseDigest.String())); n != 1 {
		t.Errorf("the shared base layer was read %d times, want 1", n)
	}
	// A restarted scanner has no memory but the database's layer cache.
	e.s = e.scanner()
	c := e.push("p/c", "v1", image(t, "amd64", base, layer(t, "app/c.txt", "c")))
	e.drain()
	if r := e.report(c.Digest); r.Status != report.StatusDone {
		t.Fatalf("third image: %s (%s)", r.Status, r.Reason)
	}
	if n := e.reads.count(digest.Digest(baseDigest.String())); n != 1 {
		t.Errorf("after a restart the base layer was read again (%d reads)", n)
	}
	if hits := e.metric("customs_scan_layer_cache_requests_total", map[string]string{"result": "hit"}); hits < 1 {
		t.Errorf("layer cache hits %v, want at least 1", hits)
	}
}

func TestVulnDBChangeRematchesWithoutReadingLayers(t *testing.T) {
	e := newEnv(t)
	e.advisory("ALPINE-CVE-2018-20679", busyboxAdvisory())
	m := e.push("p/alpine", "3.9", image(t, "amd64", alpineBase(t)))
	other := e.push("p/other", "v1", image(t, "amd64", layer(t, "etc/os-release", "ID=debian\nVERSION_ID=12\n")))
	e.drain()
	r := e.report(m.Digest)
	if ids := findingIDs(r); len(ids) != 1 || !strings.HasPrefix(ids[0], "ALPINE-CVE-2018-20679 busybox") {
		t.Fatalf("findings before the update: %v", ids)
	}
	busyboxFirstSeen := r.Findings[0].FirstSeen
	readsBefore := e.reads.total()
	layerReadsBefore := e.metric("customs_scan_blob_reads_total", map[string]string{"kind": "layer"})

	time.Sleep(5 * time.Millisecond)
	e.advisory("ALPINE-CVE-2019-14697", muslAdvisory("1.1.20-r5"))
	queued, err := e.s.CheckVulnDB(e.ctx)
	if err != nil || !queued {
		t.Fatalf("CheckVulnDB = %v, %v; want the rematch queued", queued, err)
	}
	e.drain()
	r = e.report(m.Digest)
	ids := findingIDs(r)
	if len(ids) != 2 || ids[0] != "ALPINE-CVE-2019-14697 musl 1.1.20-r4" {
		t.Fatalf("findings after the update: %v", ids)
	}
	if r.VulnDBRevision != 2 {
		t.Errorf("report revision %d, want 2", r.VulnDBRevision)
	}
	if got := r.Findings[1].FirstSeen; !got.Equal(busyboxFirstSeen) {
		t.Errorf("busybox firstSeen moved from %v to %v", busyboxFirstSeen, got)
	}
	if !r.Findings[0].FirstSeen.After(busyboxFirstSeen) {
		t.Errorf("musl firstSeen %v is not after the first scan's %v", r.Findings[0].FirstSeen, busyboxFirstSeen)
	}
	if n := e.reads.total() - readsBefore; n != 0 {
		t.Errorf("the rematch read %d blobs, want none", n)
	}
	if n := e.metric("customs_scan_blob_reads_total", map[string]string{"kind": "layer"}) - layerReadsBefore; n != 0 {
		t.Errorf("customs_scan_blob_reads_total{kind=layer} grew by %v", n)
	}
	if o := e.report(other.Digest); o.VulnDBRevision != 2 || len(o.Findings) != 0 {
		t.Errorf("unaffected report: revision %d, findings %v; want revision 2, none", o.VulnDBRevision, findingIDs(o))
	}
	if rm, _ := e.st.RematchedRevision(e.ctx); rm != 2 {
		t.Errorf("rematched revision %d, want 2", rm)
	}

	// The advisory now says the installed musl is not affected: the
	// finding goes although the image no longer matches it.
	e.advisory("ALPINE-CVE-2019-14697", muslAdvisory("1.1.20-r3"))
	if _, err := e.s.CheckVulnDB(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.drain()
	r = e.report(m.Digest)
	if ids := findingIDs(r); len(ids) != 1 || !strings.HasPrefix(ids[0], "ALPINE-CVE-2018-20679") {
		t.Errorf("findings after the fix moved below the installed version: %v", ids)
	}
	if queued, _ := e.s.CheckVulnDB(e.ctx); queued {
		t.Error("CheckVulnDB queued a rematch with nothing changed")
	}
	if n := e.reads.total() - readsBefore; n != 0 {
		t.Errorf("rematches read %d blobs, want none", n)
	}
}

func TestIndexSummarisesPlatforms(t *testing.T) {
	e := newEnv(t)
	e.advisory("ALPINE-CVE-2019-14697", muslAdvisory("1.1.20-r5"))
	amd := image(t, "amd64", alpineBase(t))
	arm := image(t, "arm64", layer(t, "etc/os-release", alpineRelease, "lib/apk/db/installed", apkDB("1.1.20-r5"), "arm", "64"))
	e.push("p/multi", "", amd)
	e.push("p/multi", "", arm)
	idx := e.pushIndex("p/multi", "latest", map[string]v1.Image{"amd64": amd, "arm64": arm})
	e.drain()
	r := e.report(idx.Digest)
	if r.Status != report.StatusDone || len(r.Manifests) != 2 {
		t.Fatalf("index report: %s (%s), %d manifests", r.Status, r.Reason, len(r.Manifests))
	}
	byPlatform := map[string]report.ManifestSummary{}
	for _, ms := range r.Manifests {
		byPlatform[ms.Platform] = ms
	}
	if s := byPlatform["linux/amd64"]; s.Status != report.StatusDone || s.Counts.Critical != 1 || s.Packages != 2 {
		t.Errorf("amd64 summary %+v", s)
	}
	if s := byPlatform["linux/arm64"]; s.Status != report.StatusDone || s.Counts.Total() != 0 {
		t.Errorf("arm64 summary %+v", s)
	}
	if ids := findingIDs(r); len(ids) != 1 || r.Counts.Critical != 1 || r.Distro == nil || r.Distro.ID != "alpine" {
		t.Errorf("index findings %v counts %+v distro %+v", ids, r.Counts, r.Distro)
	}

	// An index pushed before its platforms were scanned waits for them.
	e2 := newEnv(t)
	amd2 := image(t, "amd64", alpineBase(t))
	arm2 := image(t, "arm64", layer(t, "etc/os-release", alpineRelease, "lib/apk/db/installed", apkDB("1.1.20-r4")))
	e2.putManifestNoScan = true
	e2.push("p/multi", "", amd2)
	e2.push("p/multi", "", arm2)
	e2.putManifestNoScan = false
	idx2 := e2.pushIndex("p/multi", "latest", map[string]v1.Image{"amd64": amd2, "arm64": arm2})
	e2.drain()
	if r := e2.report(idx2.Digest); r.Status != report.StatusDone || len(r.Manifests) != 2 || r.Packages != 2 {
		t.Fatalf("index with unscanned platforms: %s (%s), %+v", r.Status, r.Reason, r.Manifests)
	}
}

func TestUnscannableContent(t *testing.T) {
	e := newEnv(t)
	// An artifact: an image manifest whose config is not an image config.
	cfg := []byte(`{"chart":"demo"}`)
	cd := e.putBlob("p/chart", cfg)
	ld := e.putBlob("p/chart", []byte("chart bytes"))
	raw := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"` +
		cd.String() + `","size":16},"layers":[{"mediaType":"application/vnd.cncf.helm.chart.content.v1.tar+gzip","digest":"` + ld.String() + `","size":11}]}`)
	chart := e.putManifest("p/chart", "1.0", "application/vnd.oci.image.manifest.v1+json", "application/vnd.cncf.helm.config.v1+json", raw,
		[]store.Reference{{Digest: cd, Kind: store.RefBlob, Required: true}, {Digest: ld, Kind: store.RefBlob, Required: true}})
	// A corrupt layer: gzip media type, garbage bytes.
	bad := image(t, "amd64", alpineBase(t))
	badRaw := mustRaw(t, bad)
	mf, _ := bad.Manifest()
	cfgRaw, _ := bad.RawConfigFile()
	garbage := []byte("\x1f\x8b\x08\x00 this is not gzip at all")
	gd := e.putBlob("p/bad", garbage)
	// Re-point the manifest's layer at the garbage blob.
	badRaw = []byte(strings.Replace(string(badRaw), mf.Layers[0].Digest.String(), gd.String(), 1))
	badRaw = []byte(strings.Replace(string(badRaw), `"size":`+itoa(mf.Layers[0].Size)+`,`, `"size":`+itoa(int64(len(garbage)))+`,`, 1))
	corrupt := e.putManifest("p/bad", "v1", string(mf.MediaType), string(mf.Config.MediaType), badRaw,
		[]store.Reference{{Digest: e.putBlob("p/bad", cfgRaw), Kind: store.RefBlob, Required: true}, {Digest: gd, Kind: store.RefBlob, Required: true}})
	e.drain()

	r := e.report(chart.Digest)
	if r.Status != report.StatusUnsupported || !strings.Contains(r.Reason, "application/vnd.cncf.helm.config.v1+json") {
		t.Errorf("helm chart: %s (%s), want unsupported naming the artifact type", r.Status, r.Reason)
	}
	r = e.report(corrupt.Digest)
	if r.Status != report.StatusFailed || !strings.Contains(r.Reason, "layer 0") {
		t.Errorf("corrupt layer: %s (%s), want failed naming the layer", r.Status, r.Reason)
	}
	for _, d := range []digest.Digest{chart.Digest, corrupt.Digest} {
		j, err := e.st.ScanJob(e.ctx, store.ScanJobManifest, d.String())
		if err != nil || j.Attempts != 1 {
			t.Errorf("job of %s: %+v, %v; want one attempt (no retries of bad content)", d, j, err)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestTransientFailureIsRetried(t *testing.T) {
	e := newEnv(t)
	m := e.push("p/alpine", "v1", image(t, "amd64", alpineBase(t)))
	e.reads.fail = 1
	ran, err := e.s.RunOne(e.ctx)
	if err != nil || !ran {
		t.Fatalf("RunOne = %v, %v", ran, err)
	}
	j, err := e.st.ScanJob(e.ctx, store.ScanJobManifest, m.Digest.String())
	if err != nil || j.Status != store.ScanQueued || j.Attempts != 1 || !strings.Contains(j.LastError, "unexpected EOF") {
		t.Fatalf("after a transient failure: %+v, %v", j, err)
	}
	if r := e.report(m.Digest); r.Status != report.StatusQueued || !strings.Contains(r.Reason, "retrying") {
		t.Errorf("report while retrying: %s (%s)", r.Status, r.Reason)
	}
	e.drain()
	if r := e.report(m.Digest); r.Status != report.StatusDone {
		t.Errorf("after the retry: %s (%s)", r.Status, r.Reason)
	}
	if n := e.metric("customs_scan_jobs_total", map[string]string{"kind": "manifest", "outcome": "retried"}); n != 1 {
		t.Errorf("retried jobs %v, want 1", n)
	}

	// A job that keeps failing gives up after MaxAttempts.
	e2 := newEnv(t, func(o *Options) { o.MaxAttempts = 2 })
	m2 := e2.push("p/alpine", "v1", image(t, "amd64", alpineBase(t)))
	e2.reads.fail = 100
	e2.drain()
	r := e2.report(m2.Digest)
	if r.Status != report.StatusFailed || !strings.Contains(r.Reason, "gave up after 2 attempts") {
		t.Errorf("after giving up: %s (%s)", r.Status, r.Reason)
	}
}

func TestScanOnPushSetting(t *testing.T) {
	e := newEnv(t)
	if err := e.st.PutScanSettings(e.ctx, "q", store.ScanSettings{ScanOnPush: false}); err != nil {
		t.Fatal(err)
	}
	img := image(t, "amd64", alpineBase(t))
	m := e.push("q/alpine", "v1", img)
	if _, err := e.st.ScanJob(e.ctx, store.ScanJobManifest, m.Digest.String()); !apperr.Is(err, apperr.ENOTFOUND) {
		t.Fatalf("a push to a project without scanOnPush queued a scan: %v", err)
	}
	if _, err := e.s.Report(e.ctx, m.Digest.String()); !apperr.Is(err, apperr.ENOTFOUND) {
		t.Errorf("report: %v, want ENOTFOUND", err)
	}
	j, err := e.s.Request(e.ctx, "q/alpine", m.Digest, "api")
	if err != nil || j.Status != store.ScanQueued || j.Trigger != "api" {
		t.Fatalf("Request = %+v, %v", j, err)
	}
	e.drain()
	if r := e.report(m.Digest); r.Status != report.StatusDone {
		t.Errorf("after an on-demand scan: %s (%s)", r.Status, r.Reason)
	}
	// On demand scans again even when a report exists.
	if j, err := e.s.Request(e.ctx, "q/alpine", m.Digest, "api"); err != nil || j.Status != store.ScanQueued {
		t.Errorf("second Request = %+v, %v", j, err)
	}
	if _, err := e.s.Request(e.ctx, "q/none", m.Digest, "api"); !apperr.Is(err, apperr.ENOTFOUND) {
		t.Errorf("Request in a repository without the manifest: %v", err)
	}
}

func TestExpiredLeaseIsRunAgain(t *testing.T) {
	e := newEnv(t)
	m := e.push("p/alpine", "v1", image(t, "amd64", alpineBase(t)))
	// A worker of another process claims the job and dies.
	dead, err := e.st.ClaimScanJob(e.ctx, "dead", 500*time.Millisecond)
	if err != nil || dead == nil {
		t.Fatalf("claim: %+v, %v", dead, err)
	}
	if ran, _ := e.s.RunOne(e.ctx); ran {
		t.Fatal("a job under another worker's lease was run")
	}
	time.Sleep(600 * time.Millisecond)
	e.drain()
	if r := e.report(m.Digest); r.Status != report.StatusDone {
		t.Errorf("after the lease expired: %s (%s)", r.Status, r.Reason)
	}
	if err := e.st.FinishScanJob(e.ctx, dead.ID, "dead", store.ScanJobResult{Status: store.ScanDone}); !apperr.Is(err, apperr.ECONFLICT) {
		t.Errorf("the dead worker's late finish: %v, want ECONFLICT", err)
	}
}

func TestRunStopsAndRequeues(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.PollInterval = 5 * time.Millisecond; o.RematchInterval = 5 * time.Millisecond })
	e.advisory("ALPINE-CVE-2019-14697", muslAdvisory("1.1.20-r5"))
	m := e.push("p/alpine", "v1", image(t, "amd64", alpineBase(t)))
	ctx, cancel := context.WithCancel(e.ctx)
	errc := make(chan error, 1)
	go func() { errc <- e.s.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := e.s.Report(e.ctx, m.Digest.String())
		rm, _ := e.st.RematchedRevision(e.ctx)
		if err == nil && r.Status == report.StatusDone && rm == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Run did not scan the pushed image and follow the database to revision 1: %+v, %v, rematched %d", r, err, rm)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func TestPermanence(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"unsupported", apperr.Errorf(apperr.EUNSUPPORTED, "zstd:chunked"), store.ScanUnsupported},
		{"invalid", apperr.Errorf(apperr.EINVALID, "bad"), store.ScanFailed},
		{"wrapped too large", errors.Join(errors.New("layer 2"), apperr.Errorf(apperr.ETOOLARGE, "bomb")), store.ScanFailed},
		{"missing blob", apperr.Errorf(apperr.ENOTFOUND, "layer blob x is not stored"), store.ScanFailed},
		{"database busy", apperr.Errorf(apperr.EUNAVAILABLE, "busy"), ""},
		{"io", errors.New("read: connection reset by peer"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := permanence(tc.err); got != tc.want {
				t.Errorf("permanence = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestProgressIsVisible(t *testing.T) {
	e := newEnv(t)
	m := e.push("p/alpine", "v1", image(t, "amd64", alpineBase(t), layer(t, "a", "b")))
	e.reads.mu.Lock()
	e.reads.gate = make(chan struct{})
	e.reads.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := e.s.RunOne(e.ctx); err != nil {
			t.Error(err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		q, err := e.s.Queue(e.ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if q.Running == 1 && len(q.Jobs) == 1 && q.Jobs[0].Stage == "reading the manifest" && q.Jobs[0].Owner == "test" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the running job's stage never showed: %+v", q)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := e.report(m.Digest); r.Status != report.StatusRunning {
		t.Errorf("report while running: %s", r.Status)
	}
	close(e.reads.gate)
	<-done
	if r := e.report(m.Digest); r.Status != report.StatusDone {
		t.Errorf("after the run: %s (%s)", r.Status, r.Reason)
	}
}

// TestReplicasShareTheQueue runs two scanners, as two replicas would, over
// one PostgreSQL database and blob store: every manifest is scanned once.
func TestReplicasShareTheQueue(t *testing.T) {
	a := newEnvOn(t, openPostgres(t), func(o *Options) { o.Owner = "replica-a"; o.PollInterval = 5 * time.Millisecond })
	b := *a
	b.s = a.scanner(func(o *Options) { o.Owner = "replica-b"; o.PollInterval = 5 * time.Millisecond })
	base := alpineBase(t)
	var ms []*store.Manifest
	var tops []v1.Layer
	for i := range 8 {
		top := layer(t, "app", strconv.Itoa(i))
		tops = append(tops, top)
		ms = append(ms, a.push("p/app"+strconv.Itoa(i), "v1", image(t, "amd64", base, top)))
	}
	ctx, cancel := context.WithCancel(a.ctx)
	defer cancel()
	errc := make(chan error, 2)
	for _, s := range []*Scanner{a.s, b.s} {
		go func() { errc <- s.Run(ctx) }()
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, m := range ms {
		for {
			r, err := a.s.Report(a.ctx, m.Digest.String())
			if err == nil && r.Status == report.StatusDone {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not scanned: %+v, %v", m.Repository, r, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	cancel()
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range ms {
		j, err := a.st.ScanJob(a.ctx, store.ScanJobManifest, m.Digest.String())
		if err != nil || j.Status != store.ScanDone || j.Attempts != 1 {
			t.Errorf("job of %s: %+v, %v; want done in one attempt", m.Repository, j, err)
		}
	}
	for i, top := range tops {
		d, _ := top.Digest()
		if n := a.reads.count(digest.Digest(d.String())); n != 1 {
			t.Errorf("layer of image %d read %d times, want 1", i, n)
		}
	}
}

// TestRematchAfterChangeLogPruned: when the change log no longer reaches
// the last re-matched revision, every done report is matched again.
func TestRematchAfterChangeLogPruned(t *testing.T) {
	e := newEnv(t)
	e.advisory("ALPINE-CVE-2018-20679", busyboxAdvisory())
	m := e.push("p/alpine", "3.9", image(t, "amd64", alpineBase(t)))
	e.drain()
	readsBefore := e.reads.total()

	e.advisory("ALPINE-CVE-2019-14697", muslAdvisory("1.1.20-r5"))
	// The workers were away: the change log of the new revision is
	// pruned before they look.
	if _, err := e.st.PruneVulnChanges(e.ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.vdb.AffectedSince(e.ctx, 1); !errors.Is(err, vulndb.ErrTooOld) {
		t.Fatalf("AffectedSince after pruning: %v, want ErrTooOld", err)
	}
	if queued, err := e.s.CheckVulnDB(e.ctx); err != nil || !queued {
		t.Fatalf("CheckVulnDB = %v, %v; want the rematch queued", queued, err)
	}
	e.drain()
	r := e.report(m.Digest)
	if ids := findingIDs(r); len(ids) != 2 || ids[0] != "ALPINE-CVE-2019-14697 musl 1.1.20-r4" {
		t.Fatalf("findings after re-matching everything: %v", ids)
	}
	if r.VulnDBRevision != 2 {
		t.Errorf("report revision %d, want 2", r.VulnDBRevision)
	}
	if rm, _ := e.st.RematchedRevision(e.ctx); rm != 2 {
		t.Errorf("rematched revision %d, want 2", rm)
	}
	if n := e.reads.total() - readsBefore; n != 0 {
		t.Errorf("the rematch read %d blobs, want none", n)
	}
}
