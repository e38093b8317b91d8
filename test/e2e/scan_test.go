package e2e_test

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/test/e2e/harness"
)

// debianRecords are hand-written Debian:12 OSV records about packages of
// the test image, keyed by source package as Debian's are: glibc and zlib
// fixed above the installed versions, shadow without a fix, and glibc's
// real CVE-2023-4911, fixed in bookworm before the installed version.
var debianRecords = map[string]string{
	"DEBIAN-CVE-2099-0001": debianRecord("DEBIAN-CVE-2099-0001", "glibc", "2.36-9+deb12u99",
		`"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}],`),
	"DEBIAN-CVE-2099-0002": debianRecord("DEBIAN-CVE-2099-0002", "zlib", "1:1.2.13.dfsg-2", ""),
	"DEBIAN-CVE-2099-0003": debianRecord("DEBIAN-CVE-2099-0003", "shadow", "", ""),
	"DEBIAN-CVE-2023-4911": debianRecord("DEBIAN-CVE-2023-4911", "glibc", "2.36-9+deb12u3", ""),
}

// newDebianRecord is imported while the server runs: gzip, fixed above
// the installed version.
var newDebianRecord = debianRecord("DEBIAN-CVE-2099-0005", "gzip", "1.12-2", "")

func debianRecord(id, source, fixed, extra string) string {
	events := `{"introduced":"0"}`
	if fixed != "" {
		events += `,{"fixed":"` + fixed + `"}`
	}
	return `{"schema_version":"1.6.0","id":"` + id + `","modified":"2024-06-01T00:00:00Z","summary":"test advisory about ` + source + `",` +
		extra + `"affected":[{"package":{"ecosystem":"Debian:12","name":"` + source + `"},` +
		`"ranges":[{"type":"ECOSYSTEM","events":[` + events + `]}]}]}`
}

// dpkgPackage is a package of the image's dpkg status file.
type dpkgPackage struct{ name, version, source string }

// debianPackages reads the installed packages from the dpkg status file of
// the layout's single layer, independently of customs' extractors.
func debianPackages(t *testing.T, dir string) map[string]dpkgPackage {
	t.Helper()
	_, raw := layoutManifest(t, dir)
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 1 {
		t.Fatalf("the Debian test image has %d layers, want 1", len(m.Layers))
	}
	f, err := os.Open(filepath.Join(dir, "blobs", "sha256", m.Layers[0].Digest.Hex))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no var/lib/dpkg/status in the Debian image: %v", err)
		}
		if strings.TrimPrefix(h.Name, "./") != "var/lib/dpkg/status" {
			continue
		}
		out := map[string]dpkgPackage{}
		var p dpkgPackage
		installed := false
		sc := bufio.NewScanner(tr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		flush := func() {
			if p.name != "" && installed {
				if p.source == "" {
					p.source = p.name
				}
				out[p.name] = p
			}
			p, installed = dpkgPackage{}, false
		}
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				flush()
			case strings.HasPrefix(line, "Package: "):
				p.name = strings.TrimPrefix(line, "Package: ")
			case strings.HasPrefix(line, "Version: "):
				p.version = strings.TrimPrefix(line, "Version: ")
			case strings.HasPrefix(line, "Source: "):
				p.source = strings.Fields(strings.TrimPrefix(line, "Source: "))[0]
			case strings.HasPrefix(line, "Status: "):
				installed = strings.HasSuffix(line, " installed")
			}
		}
		flush()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
}

// metricValue returns the value of the sample of name whose labels
// include labels ("kind=\"layer\""), from the server's /metrics.
func metricValue(t *testing.T, srv *harness.Server, name, labels string) float64 {
	t.Helper()
	resp, err := http.Get(srv.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, labels) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		return v
	}
	t.Fatalf("/metrics has no %s{%s}", name, labels)
	return 0
}

// findingsOf lists a report's findings as "id package installed -> fix".
func findingsOf(r *report.Report) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, fmt.Sprintf("%s %s %s: %s", f.AdvisoryID, f.Package.Name, f.InstalledVersion, f.Fix))
	}
	slices.Sort(out)
	return out
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestScanOnPush pushes the Debian image with skopeo and an Alpine-style
// image with crane: their reports appear with no further action, with
// exactly the findings the imported advisories call for; then a new
// advisory imported with the CLI reaches the Debian report without a
// layer being read.
func TestScanOnPush(t *testing.T) {
	t.Parallel()
	harness.Tool(t, "skopeo")
	harness.Tool(t, "crane")
	src := harness.Image(t, debianImage)
	debDigest, _ := layoutManifest(t, src)
	pkgs := debianPackages(t, src)

	dataDir := t.TempDir()
	osvDir := filepath.Join(t.TempDir(), "debian-osv")
	if err := os.MkdirAll(osvDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for id, rec := range debianRecords {
		if err := os.WriteFile(filepath.Join(osvDir, id+".json"), []byte(rec), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv := harness.StartCustoms(t, harness.Options{DataDir: dataDir, Env: []string{"CUSTOMS_SCAN_REMATCH_INTERVAL=1s"}})
	for _, args := range [][]string{
		{"vulndb", "import", "--data-dir", dataDir, "--name", "debian-test", osvDir},
		{"vulndb", "import", "--data-dir", dataDir, filepath.Join(repoRoot(), "testdata", "vulndata", "osv", "alpine-v3.9", "all.zip")},
	} {
		if out, errOut, code := srv.CLI(t, args...); code != 0 {
			t.Fatalf("customs %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
	}
	srv.CreateProject(t, "library", false)
	admin := &apiclient.Client{BaseURL: srv.URL(), Username: srv.Username, Password: srv.Password}
	c := harness.NewClient(t)
	c.MustInput(t, srv.Password+"\n", "skopeo", "login", "--tls-verify=false", "--username", srv.Username, "--password-stdin", srv.Addr)
	c.Must(t, "skopeo", "--insecure-policy", "copy", "--preserve-digests", "--dest-tls-verify=false",
		"oci:"+src+":bookworm", "docker://"+srv.Addr+"/library/debian:bookworm")

	deb := harness.WaitReport(t, admin, debDigest)
	if deb.Status != report.StatusDone {
		t.Fatalf("Debian report: %s (%s)", deb.Status, deb.Reason)
	}
	if deb.Distro == nil || deb.Distro.ID != "debian" || deb.Distro.VersionID != "12" {
		t.Errorf("distro %+v, want debian 12", deb.Distro)
	}
	if deb.Packages != len(pkgs) || deb.Packages < 80 {
		t.Errorf("%d packages, the image's dpkg status lists %d installed", deb.Packages, len(pkgs))
	}
	var want []string
	add := func(id, src, fix string) {
		for _, p := range pkgs {
			if p.source != src {
				continue
			}
			f := "no fix available yet"
			if fix != "" {
				f = "upgrade " + p.name + " from " + p.version + " to " + fix + " or later"
			}
			want = append(want, fmt.Sprintf("%s %s %s: %s", id, p.name, p.version, f))
		}
	}
	add("DEBIAN-CVE-2099-0001", "glibc", "2.36-9+deb12u99")
	add("DEBIAN-CVE-2099-0002", "zlib", "1:1.2.13.dfsg-2")
	add("DEBIAN-CVE-2099-0003", "shadow", "")
	slices.Sort(want)
	if len(want) < 4 {
		t.Fatalf("the Debian image lacks glibc, zlib or shadow packages: %v", want)
	}
	if got := findingsOf(deb); !slices.Equal(got, want) {
		t.Errorf("Debian findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, f := range deb.Findings {
		if f.AdvisoryID == "DEBIAN-CVE-2099-0001" && (f.Severity.Level.String() != "high" || f.Layer == "" || f.FirstSeen.IsZero()) {
			t.Errorf("glibc finding: severity %+v, layer %q, firstSeen %v", f.Severity, f.Layer, f.FirstSeen)
		}
	}

	// The Alpine-style image, generated here and pushed with crane.
	alpine := harness.AlpineLayout(t, "1.1.20-r4", "welcome e2e")
	alpineDigest, _ := layoutManifest(t, alpine)
	c.MustInput(t, srv.Password, "crane", "auth", "login", srv.Addr, "-u", srv.Username, "--password-stdin")
	c.Must(t, "crane", "push", "--insecure", alpine, srv.Addr+"/library/alpine:3.9")
	alp := harness.WaitReport(t, admin, alpineDigest)
	if alp.Status != report.StatusDone || alp.Distro == nil || alp.Distro.ID != "alpine" {
		t.Fatalf("Alpine report: %s (%s), distro %+v", alp.Status, alp.Reason, alp.Distro)
	}
	found := false
	for _, f := range alp.Findings {
		if f.Package.Name != "musl" {
			t.Errorf("finding on %s: the image holds musl only", f.Package.Name)
		}
		if f.AdvisoryID == "ALPINE-CVE-2019-14697" {
			found = true
			if f.Fix != "upgrade musl from 1.1.20-r4 to 1.1.20-r5 or later" {
				t.Errorf("ALPINE-CVE-2019-14697 fix %q", f.Fix)
			}
		}
	}
	if !found {
		t.Errorf("no ALPINE-CVE-2019-14697 among %v", findingsOf(alp))
	}

	// Per repository and per project.
	rs, err := admin.RepositoryScans(context.Background(), "library/debian")
	if err != nil || len(rs.Tags) != 1 || rs.Tags[0].Report == nil || rs.Tags[0].Report.Counts.Total() != len(want) {
		t.Errorf("repository scans %+v, %v", rs, err)
	}
	ps, err := admin.ProjectScans(context.Background(), "library")
	if err != nil || ps.Manifests != 2 || ps.ByStatus["done"] != 2 {
		t.Errorf("project scans %+v, %v", ps, err)
	}
	sbom, err := admin.SBOM(context.Background(), debDigest, "spdx")
	if err != nil || !strings.Contains(string(sbom), "pkg:deb/debian/libc6@") {
		t.Errorf("SPDX SBOM of the Debian image: %v\n%.400s", err, sbom)
	}

	// A new advisory, imported with the CLI while the server runs, reaches
	// the report without a layer being read.
	layerReads := metricValue(t, srv, "customs_scan_blob_reads_total", `kind="layer"`)
	if err := os.WriteFile(filepath.Join(osvDir, "DEBIAN-CVE-2099-0005.json"), []byte(newDebianRecord), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := srv.CLI(t, "vulndb", "import", "--data-dir", dataDir, "--name", "debian-test", osvDir); code != 0 {
		t.Fatalf("customs vulndb import: exit %d\n%s%s", code, out, errOut)
	}
	gz := pkgs["gzip"]
	wantNew := fmt.Sprintf("DEBIAN-CVE-2099-0005 gzip %s: upgrade gzip from %s to 1.12-2 or later", gz.version, gz.version)
	deb2 := harness.WaitReportWhere(t, admin, debDigest, func(r *report.Report) bool { return slices.Contains(findingsOf(r), wantNew) })
	if got := findingsOf(deb2); len(got) != len(want)+1 {
		t.Errorf("findings after the import: %v", got)
	}
	if deb2.VulnDBRevision <= deb.VulnDBRevision {
		t.Errorf("report revision %d, was %d", deb2.VulnDBRevision, deb.VulnDBRevision)
	}
	if !deb2.ScannedAt.Equal(deb.ScannedAt) {
		t.Errorf("scannedAt moved from %v to %v: the image was scanned again instead of re-matched", deb.ScannedAt, deb2.ScannedAt)
	}
	if n := metricValue(t, srv, "customs_scan_blob_reads_total", `kind="layer"`); n != layerReads {
		t.Errorf("layer reads went from %v to %v while re-matching", layerReads, n)
	}
}

// TestScanQueueSurvivesRestart queues scans on a server that runs no scan
// workers, stops it, and starts it again with workers: the queued work is
// done.
func TestScanQueueSurvivesRestart(t *testing.T) {
	t.Parallel()
	harness.Tool(t, "crane")
	dataDir := t.TempDir()
	srv := harness.StartCustoms(t, harness.Options{DataDir: dataDir, Env: []string{"CUSTOMS_SCAN_WORKERS=0"}})
	srv.CreateProject(t, "library", false)
	c := harness.NewClient(t)
	c.MustInput(t, srv.Password, "crane", "auth", "login", srv.Addr, "-u", srv.Username, "--password-stdin")
	var digests []string
	for i := range 3 {
		dir := harness.AlpineLayout(t, "1.1.20-r4", "welcome "+strconv.Itoa(i))
		d, _ := layoutManifest(t, dir)
		digests = append(digests, d)
		c.Must(t, "crane", "push", "--insecure", dir, fmt.Sprintf("%s/library/alpine:v%d", srv.Addr, i))
	}
	admin := &apiclient.Client{BaseURL: srv.URL(), Username: srv.Username, Password: srv.Password}
	q, err := admin.ScanQueue(context.Background())
	if err != nil || q.Queued != 3 || q.Running != 0 {
		t.Fatalf("queue before the restart: %+v, %v", q, err)
	}
	for _, d := range digests {
		if r, err := admin.ScanReport(context.Background(), d); err != nil || r.Status != report.StatusQueued {
			t.Errorf("report of %s before the restart: %+v, %v", d, r, err)
		}
	}
	srv.Stop(t)

	srv = harness.StartCustoms(t, harness.Options{DataDir: dataDir, Password: srv.Password})
	admin = &apiclient.Client{BaseURL: srv.URL(), Username: srv.Username, Password: srv.Password}
	for _, d := range digests {
		if r := harness.WaitReport(t, admin, d); r.Status != report.StatusDone || r.Packages != 1 {
			t.Errorf("report of %s after the restart: %s (%s), %d packages", d, r.Status, r.Reason, r.Packages)
		}
	}
	q, err = admin.ScanQueue(context.Background())
	if err != nil || q.Queued != 0 || q.Done < 3 {
		t.Errorf("queue after the restart: %+v, %v", q, err)
	}
}
