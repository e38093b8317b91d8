package e2e_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/test/e2e/harness"
)

// TestScanSBOMReferrer turns SBOM referrers on (the project setting
// sbomReferrer, or the server's scan.pushSBOM): after the scan of a pushed
// image, oras discovers its CycloneDX SBOM through the referrers API and
// pulls it.
func TestScanSBOMReferrer(t *testing.T) {
	t.Parallel()
	harness.Tool(t, "crane")
	harness.Tool(t, "oras")
	t.Run("project setting", func(t *testing.T) {
		t.Parallel()
		srv := harness.StartCustoms(t)
		srv.CreateProject(t, "library", false)
		cmd := exec.Command(harness.CustomsBinary(t), "project", "set-sbom-referrer", "library", "--server", srv.URL())
		cmd.Env = append(os.Environ(), "CUSTOMS_USERNAME="+srv.Username, "CUSTOMS_PASSWORD="+srv.Password)
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "sbomReferrer=true") {
			t.Fatalf("customs project set-sbom-referrer: %v\n%s", err, out)
		}
		admin := &apiclient.Client{BaseURL: srv.URL(), Username: srv.Username, Password: srv.Password}
		if p, err := admin.Project(context.Background(), "library"); err != nil || p.SBOMReferrer == nil || !*p.SBOMReferrer {
			t.Fatalf("project after set-sbom-referrer: %+v, %v", p, err)
		}
		testSBOMReferrer(t, srv)
	})
	t.Run("scan.pushSBOM", func(t *testing.T) {
		t.Parallel()
		srv := harness.StartCustoms(t, harness.Options{Env: []string{"CUSTOMS_SCAN_PUSH_SBOM=true"}})
		srv.CreateProject(t, "library", false)
		testSBOMReferrer(t, srv)
	})
}

// testSBOMReferrer pushes an image to library/alpine of srv and checks
// that its SBOM referrer is stored.
func testSBOMReferrer(t *testing.T, srv *harness.Server) {
	c := harness.NewClient(t)
	c.Dir = t.TempDir()
	c.MustInput(t, srv.Password, "crane", "auth", "login", srv.Addr, "-u", srv.Username, "--password-stdin")
	c.MustInput(t, srv.Password, "oras", "login", "--plain-http", "-u", srv.Username, "--password-stdin", srv.Addr)
	dir := harness.AlpineLayout(t, "1.1.20-r4", "welcome sbom")
	d, _ := layoutManifest(t, dir)
	ref := srv.Addr + "/library/alpine@" + d
	c.Must(t, "crane", "push", "--insecure", dir, srv.Addr+"/library/alpine:3.9")
	admin := &apiclient.Client{BaseURL: srv.URL(), Username: srv.Username, Password: srv.Password}
	if r := harness.WaitReport(t, admin, d); r.Status != report.StatusDone {
		t.Fatalf("report %s (%s), want done", r.Status, r.Reason)
	}

	// The referrer is stored right after the report, in the same job.
	const cdx = "application/vnd.cyclonedx+json"
	var root orasDescriptor
	for deadline := time.Now().Add(30 * time.Second); ; {
		decode(t, c.Must(t, "oras", "discover", "--plain-http", "--format", "json", "--distribution-spec", "v1.1-referrers-api",
			"--artifact-type", cdx, ref), &root)
		if len(root.Referrers) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if root.Digest != d || len(root.Referrers) != 1 || root.Referrers[0].ArtifactType != cdx {
		t.Fatalf("oras discover: subject %s, referrers %+v; want one %s referrer of %s", root.Digest, root.Referrers, cdx, d)
	}

	out := t.TempDir()
	c.Must(t, "oras", "pull", "--plain-http", "-o", out, srv.Addr+"/library/alpine@"+root.Referrers[0].Digest)
	b, err := os.ReadFile(filepath.Join(out, "sbom.cdx.json"))
	if err != nil {
		t.Fatalf("the pulled referrer has no sbom.cdx.json: %v", err)
	}
	var bom struct {
		BOMFormat   string `json:"bomFormat"`
		SpecVersion string `json:"specVersion"`
		Metadata    struct {
			Component struct {
				Version string `json:"version"`
			} `json:"component"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(b, &bom); err != nil {
		t.Fatal(err)
	}
	if bom.BOMFormat != "CycloneDX" || bom.SpecVersion != "1.6" || bom.Metadata.Component.Version != d ||
		!strings.Contains(string(b), "pkg:apk/alpine/musl@1.1.20-r4") {
		t.Errorf("SBOM %q %q of %q, want CycloneDX 1.6 of %s listing musl 1.1.20-r4:\n%.600s", bom.BOMFormat, bom.SpecVersion,
			bom.Metadata.Component.Version, d, b)
	}
	if n := metricValue(t, srv, "customs_scan_sbom_referrers_total", `result="stored"`); n != 1 {
		t.Errorf("customs_scan_sbom_referrers_total{result=\"stored\"} = %v, want 1", n)
	}
}
