package e2e_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/test/e2e/harness"
)

// TestImageScanOnDemand: `customs image scan` asks the server to scan an
// image it holds (scan on push is off in the project), waits for the
// report and exits by --fail-on; `customs image report` reads it again.
func TestImageScanOnDemand(t *testing.T) {
	t.Parallel()
	harness.Tool(t, "crane")
	dataDir := t.TempDir()
	srv := harness.StartCustoms(t, harness.Options{DataDir: dataDir})
	if out, errOut, code := srv.CLI(t, "vulndb", "import", "--data-dir", dataDir,
		filepath.Join(repoRoot(), "testdata", "vulndata", "osv", "alpine-v3.9", "all.zip")); code != 0 {
		t.Fatalf("vulndb import: exit %d\n%s%s", code, out, errOut)
	}
	srv.CreateProject(t, "library", false)
	if out, errOut, code := srv.CLI(t, "project", "set-scan-on-push", "library", "--enabled=false", "--server", srv.URL()); code != 0 {
		t.Fatalf("set-scan-on-push: exit %d\n%s%s", code, out, errOut)
	}
	c := harness.NewClient(t)
	c.MustInput(t, srv.Password, "crane", "auth", "login", srv.Addr, "-u", srv.Username, "--password-stdin")
	dir := harness.AlpineLayout(t, "1.1.20-r4", "welcome ondemand")
	d, _ := layoutManifest(t, dir)
	c.Must(t, "crane", "push", "--insecure", dir, srv.Addr+"/library/alpine:3.9")

	// Not scanned on push: there is no report to read yet.
	if _, _, code := srv.CLI(t, "image", "report", "library/alpine@"+d, "--server", srv.URL()); code == 0 {
		t.Fatal("image report succeeded before any scan")
	}

	out, errOut, code := srv.CLI(t, "image", "scan", srv.Addr+"/library/alpine:3.9", "--server", srv.URL(),
		"--format", "json", "--fail-on", "unknown")
	if code != 1 {
		t.Fatalf("image scan --fail-on unknown: exit %d, want 1\n%s%s", code, out, errOut)
	}
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("image scan --format json: %v\n%s", err, out)
	}
	if r.Digest != d || r.Status != report.StatusDone || !strings.Contains(strings.Join(findingsOf(&r), "\n"), "ALPINE-CVE-2019-14697 musl 1.1.20-r4") {
		t.Fatalf("report %s %s, findings %v; want %s done with ALPINE-CVE-2019-14697 on musl", r.Digest, r.Status, findingsOf(&r), d)
	}
	if !strings.Contains(errOut, "queued") {
		t.Errorf("image scan did not say the scan was queued:\n%s", errOut)
	}

	out, errOut, code = srv.CLI(t, "image", "report", "library/alpine@"+d, "--server", srv.URL())
	if code != 0 || !strings.Contains(out, "upgrade musl from 1.1.20-r4 to 1.1.20-r5 or later") {
		t.Fatalf("image report: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := srv.CLI(t, "image", "scan", "library/missing:1", "--server", srv.URL()); code == 0 {
		t.Fatalf("image scan of a missing image succeeded:\n%s", errOut)
	}
}
