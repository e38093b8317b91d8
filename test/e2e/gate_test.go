package e2e_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"

	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/internal/vulndb/severity"
	"github.com/customs-dev/customs/test/e2e/harness"
)

// gateImageLayout writes an Alpine 3.9 image whose apk database holds
// musl, busybox and zlib at the versions test/e2e/testdata/gate/osv
// rates Medium, Low and Low (no fix), as an OCI layout.
func gateImageLayout(t *testing.T) string {
	t.Helper()
	apk := ""
	for _, p := range [][2]string{{"musl", "1.1.20-r4"}, {"busybox", "1.29.3-r10"}, {"zlib", "1.2.11-r1"}} {
		apk += "C:Q1vB4eLrQvK0p2mF3o1gq6x1o4Hm0=\nP:" + p[0] + "\nV:" + p[1] + "\nA:x86_64\no:" + p[0] + "\nF:lib\n\n"
	}
	files := []string{
		"etc/os-release", "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.9.6\nPRETTY_NAME=\"Alpine Linux v3.9\"\n",
		"lib/apk/db/installed", apk,
	}
	return harness.WriteLayout(t, harness.BuildImage(t, harness.Layer(t, files...)))
}

// gateEnv runs the customs binary against an HTTPS server with the CA it
// generated trusted (SSL_CERT_FILE) and the given credentials.
type gateEnv struct {
	srv        *harness.Server
	user, pass string
}

func (g gateEnv) cmd(ctx context.Context, t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, harness.CustomsBinary(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "SSL_CERT_FILE=" + g.srv.CAFile,
		"CUSTOMS_SERVER=" + g.srv.URL(), "CUSTOMS_USERNAME=" + g.user, "CUSTOMS_PASSWORD=" + g.pass}
	return cmd
}

// run runs customs with args and returns its outputs and exit code.
func (g gateEnv) run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := g.cmd(ctx, t, args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	code = exitOf(t, cmd.Run())
	t.Logf("$ customs %s (exit %d)", strings.Join(args, " "), code)
	return out.String(), errOut.String(), code
}

func exitOf(t *testing.T, err error) int {
	t.Helper()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	}
	t.Fatal(err)
	return -1
}

// tektonScript returns the script of the first step of the first Task in
// examples/ci/tekton/task.yaml (seed 004's Task), as Tekton would run it
// for image: $(params.image) substituted, and the CA mount path
// /var/cert/caCrt replaced by caFile.
func tektonScript(t *testing.T, image, caFile string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "examples", "ci", "tekton", "task.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "script: |":
			in = true
		case in && strings.HasPrefix(line, "        "):
			lines = append(lines, strings.TrimPrefix(line, "        "))
		case in && strings.TrimSpace(line) == "":
			lines = append(lines, "")
		case in:
			in = false
		}
		if !in && len(lines) > 0 {
			break
		}
	}
	script := strings.Join(lines, "\n")
	if !strings.Contains(script, `jq '[.Packages[].Vulnerabilities[] | select(.Ratings[].Severity | contains("High"))] | unique | length'`) {
		t.Fatalf("the Task's script is not seed 004's:\n%s", script)
	}
	script = strings.ReplaceAll(script, "$(params.image)", image)
	return strings.ReplaceAll(script, "/var/cert/caCrt", caFile)
}

// runTekton runs seed 004's Task script with bash, curl and jq for GATE
// gate and returns its output and exit code (-1 when it was still waiting
// at timeout).
func runTekton(t *testing.T, script, gate, host, token string, timeout time.Duration) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, harness.Tool(t, "bash"), "-c", script)
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "GATE=" + gate, "METADATA_STORE_URL=" + host, "ACCESS_TOKEN=" + token}
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), -1
	}
	code := exitOf(t, err)
	t.Logf("Tekton script GATE=%s: exit %d", gate, code)
	return string(out), code
}

// gateJSON is the part of customs gate --format json the test reads.
type gateJSON struct {
	Image     string `json:"image"`
	Digest    string `json:"digest"`
	Outcome   string `json:"outcome"`
	ExitCode  int    `json:"exitCode"`
	Decisions []struct {
		Source   string `json:"source"`
		Decision struct {
			Outcome    string `json:"outcome"`
			Violations []struct {
				Rule     string `json:"rule"`
				Remedy   string `json:"remedy"`
				Findings []struct {
					ID        string   `json:"id"`
					Package   string   `json:"package"`
					Installed string   `json:"installed"`
					Fixed     []string `json:"fixed"`
				} `json:"findings"`
			} `json:"violations"`
		} `json:"decision"`
	} `json:"decisions"`
	Report *report.Report `json:"report"`
}

// TestGateSeed004 is seed 004 against the real server over HTTPS: an image
// with a Medium and two Low findings, pushed with crane while no server
// scans, is pending for `customs gate` (exit 2, "scan pending", its queue
// position) and for the seed's Tekton script (which keeps waiting); a gate
// started with --wait shows the queue position, waits through a restart of
// the server that now scans, and then decides. At each threshold the gate
// and the seed's Task script (curl and jq against GET /api/v1/images, with
// a pull-only robot's credentials as bearer token) exit as the findings
// imply; every --format parses; policy files, a bad threshold and unknown
// images behave.
func TestGateSeed004(t *testing.T) {
	t.Parallel()
	harness.Tool(t, "crane")
	harness.Tool(t, "curl")
	harness.Tool(t, "jq")
	dataDir := t.TempDir()
	addr := freeLoopbackAddr(t)
	opts := harness.Options{DataDir: dataDir, Password: "gate-admin-password-1", HTTPS: true,
		Args: []string{"--tls-generate", "--addr", addr}}
	noScan := opts
	noScan.Env = []string{"CUSTOMS_SCAN_WORKERS=0"}
	srv := harness.StartCustoms(t, noScan)
	if out, errOut, code := srv.CLI(t, "vulndb", "import", "--data-dir", dataDir, "--name", "gate",
		filepath.Join(repoRoot(), "test", "e2e", "testdata", "gate", "osv")); code != 0 {
		t.Fatalf("vulndb import: exit %d\n%s%s", code, out, errOut)
	}
	srv.CreateProject(t, "gate", false)
	admin := gateEnv{srv: srv, user: srv.Username, pass: srv.Password}
	out, errOut, code := admin.run(t, "robot", "create", "tekton", "--project", "gate", "--action", "pull", "--json")
	if code != 0 {
		t.Fatalf("robot create: exit %d\n%s%s", code, out, errOut)
	}
	var robot struct{ Name, Secret string }
	if err := json.Unmarshal([]byte(out), &robot); err != nil || robot.Secret == "" {
		t.Fatalf("robot create --json: %v\n%s", err, out)
	}
	ci := gateEnv{srv: srv, user: robot.Name, pass: robot.Secret}
	token := base64.StdEncoding.EncodeToString([]byte(robot.Name + ":" + robot.Secret))

	dir := gateImageLayout(t)
	digest, _ := layoutManifest(t, dir)
	pusher := harness.NewClient(t)
	pusher.Env("SSL_CERT_FILE=" + srv.CAFile)
	pusher.MustInput(t, srv.Password, "crane", "auth", "login", srv.Addr, "-u", srv.Username, "--password-stdin")
	pusher.Must(t, "crane", "push", dir, srv.Addr+"/gate/app:1.0")
	image := srv.Addr + "/gate/app:1.0"
	script := tektonScript(t, srv.Addr+"/gate/app@"+digest, srv.CAFile)

	// No server scans: the scan stays queued.
	out, errOut, code = ci.run(t, "gate", image, "--threshold", "high")
	if code != 2 || !strings.Contains(errOut, "scan pending") || !strings.Contains(errOut, "queued (position 1 in the scan queue)") {
		t.Fatalf("gate of a queued scan without --wait: exit %d, want 2 with scan pending and the queue position\n%s%s", code, out, errOut)
	}
	if out, code := runTekton(t, script, "high", srv.Addr, token, 4*time.Second); code != -1 ||
		!strings.Contains(out, "Vulnerabilities data is not available in AMR, waiting...") {
		t.Fatalf("the seed's Task did not keep waiting for a queued scan (exit %d):\n%s", code, out)
	}

	// A gate that waits, through a restart of the server into one that
	// scans.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	waiting := ci.cmd(ctx, t, "gate", image, "--threshold", "medium", "--wait", "2m", "--format", "json")
	var waitOut strings.Builder
	waiting.Stdout = &waitOut
	stderr, err := waiting.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := waiting.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var waitErr strings.Builder
	queued := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			waitErr.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.Contains(sc.Text(), "queued (position 1") {
				once.Do(func() { close(queued) })
			}
		}
	}()
	select {
	case <-queued:
	case <-time.After(time.Minute):
		t.Fatal("the waiting gate did not show the scan queued")
	}
	srv.Stop(t)
	srv = harness.StartCustoms(t, opts)
	code = exitOf(t, waiting.Wait())
	mu.Lock()
	progress := waitErr.String()
	mu.Unlock()
	var waited gateJSON
	if err := json.Unmarshal([]byte(waitOut.String()), &waited); err != nil {
		t.Fatalf("gate --wait --format json: %v\n%s\n%s", err, waitOut.String(), progress)
	}
	if code != 1 || waited.Outcome != "denied" || waited.Digest != digest || waited.Report == nil || waited.Report.Status != report.StatusDone {
		t.Fatalf("gate --wait --threshold medium: exit %d, outcome %s, digest %s; want 1, denied, %s with a done report\nstderr:\n%s",
			code, waited.Outcome, waited.Digest, digest, progress)
	}
	t.Logf("progress of the waiting gate:\n%s", progress)

	// The report, and what it implies at each threshold.
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(srv.CAFile)
	if err != nil || !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("CA %s: %v", srv.CAFile, err)
	}
	api := &apiclient.Client{BaseURL: srv.URL(), Username: srv.Username, Password: srv.Password,
		HTTP: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
	rep := harness.WaitReport(t, api, digest)
	want := []string{
		"GATE-2026-0001 musl 1.1.20-r4: upgrade musl from 1.1.20-r4 to 1.1.20-r5 or later",
		"GATE-2026-0002 busybox 1.29.3-r10: upgrade busybox from 1.29.3-r10 to 1.29.3-r11 or later",
		"GATE-2026-0003 zlib 1.2.11-r1: no fix available yet",
	}
	if got := findingsOf(rep); strings.Join(got, "\n") != strings.Join(want, "\n") ||
		rep.Counts != (report.Counts{Medium: 1, Low: 2}) {
		t.Fatalf("report findings %q, counts %+v; want %q, 1 medium and 2 low", got, rep.Counts, want)
	}
	denies := func(threshold severity.Level) bool {
		for _, f := range rep.Findings {
			if !f.Severity.Level.Known() || f.Severity.Level >= threshold {
				return true
			}
		}
		return false
	}
	levels := map[string]severity.Level{"low": severity.Low, "medium": severity.Medium, "high": severity.High, "critical": severity.Critical}
	wantExit := map[string]int{"none": 0, "low": 1, "medium": 1, "high": 0, "critical": 0}
	for th, lvl := range levels {
		if got := map[bool]int{true: 1, false: 0}[denies(lvl)]; got != wantExit[th] {
			t.Fatalf("the report implies exit %d at %s, the test expects %d", got, th, wantExit[th])
		}
	}
	for _, th := range []string{"none", "low", "medium", "high", "critical"} {
		out, errOut, code := ci.run(t, "gate", image, "--threshold", th)
		if code != wantExit[th] {
			t.Errorf("gate --threshold %s: exit %d, want %d\n%s%s", th, code, wantExit[th], out, errOut)
			continue
		}
		switch {
		case th == "none":
		case code == 1:
			if th == "medium" {
				t.Logf("customs gate --threshold medium:\n%s%s", out, errOut)
			}
			for _, w := range []string{"gate FAIL", "DENIED", "GATE-2026-0001", "CVE-2026-10001", "musl 1.1.20-r4", "fixed in 1.1.20-r5",
				`The severity of vulnerability of the image: "medium" is equal or higher than the threshold`, "to allow:"} {
				if !strings.Contains(out, w) {
					t.Errorf("gate --threshold %s: output lacks %q:\n%s", th, w, out)
				}
			}
		default:
			if !strings.Contains(out, "gate PASS") || !strings.Contains(out, "1 medium, 2 low") {
				t.Errorf("gate --threshold %s: output lacks the pass and the counts:\n%s", th, out)
			}
		}
		// The seed's Task, unchanged, against GET /api/v1/images.
		tout, tcode := runTekton(t, script, th, srv.Addr, token, time.Minute)
		if tcode != wantExit[th] {
			t.Errorf("seed 004's Task script at GATE=%s: exit %d, want %d\n%s", th, tcode, wantExit[th], tout)
		}
	}

	// Each --format parses.
	out, errOut, code = ci.run(t, "gate", image, "--threshold", "low", "--format", "json")
	var gj gateJSON
	if err := json.Unmarshal([]byte(out), &gj); err != nil || code != 1 || gj.ExitCode != 1 || len(gj.Decisions) != 1 ||
		len(gj.Decisions[0].Decision.Violations) != 1 || len(gj.Decisions[0].Decision.Violations[0].Findings) != 3 {
		t.Fatalf("gate --format json at low: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if f := gj.Decisions[0].Decision.Violations[0].Findings[0]; f.ID != "CVE-2026-10001" || f.Package != "musl" || f.Installed != "1.1.20-r4" ||
		len(f.Fixed) != 1 || f.Fixed[0] != "1.1.20-r5" {
		t.Errorf("first blocking finding %+v, want CVE-2026-10001 musl 1.1.20-r4 fixed in 1.1.20-r5", f)
	}
	out, errOut, code = ci.run(t, "gate", image, "--threshold", "low", "--format", "junit")
	t.Logf("customs gate --format junit:\n%s", out)
	ju, err := harness.ParseJUnit(strings.NewReader(out))
	if err != nil || code != 1 {
		t.Fatalf("gate --format junit: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if fails := ju.Failures(); len(fails) != 3 || !strings.Contains(fails[0].Name+fails[1].Name+fails[2].Name, "CVE-2026-10003 zlib 1.2.11-r1") {
		t.Errorf("junit failures %+v, want one per finding at or above low", fails)
	}
	out, errOut, code = ci.run(t, "gate", image, "--threshold", "high", "--format", "junit")
	if ju, err := harness.ParseJUnit(strings.NewReader(out)); err != nil || code != 0 || len(ju.Failures()) != 0 || ju.Count("passed") != 1 {
		t.Errorf("gate --format junit at high: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	out, errOut, code = ci.run(t, "gate", image, "--threshold", "medium", "--format", "sarif")
	var sarif struct {
		Version string `json:"version"`
		Runs    []struct {
			Results []struct {
				RuleID string `json:"ruleId"`
				Level  string `json:"level"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &sarif); err != nil || code != 1 || sarif.Version != "2.1.0" || len(sarif.Runs) != 1 || len(sarif.Runs[0].Results) != 3 {
		t.Fatalf("gate --format sarif: exit %d, %v\n%s%s", code, err, out, errOut)
	}

	// Policy files: an allowlist entry lets the Medium finding through;
	// a policy for production only leaves staging to the default (deny).
	policyFile := filepath.Join(t.TempDir(), "gate.yaml")
	if err := os.WriteFile(policyFile, []byte(`apiVersion: customs.dev/v1alpha1
kind: Policy
metadata:
  name: ci-medium
spec:
  scope:
    environments: [production]
  vulnerabilities:
    maxSeverity: medium
    allowlist:
      - id: CVE-2026-10001
        reason: fixed upstream, image rebuilt next sprint
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := ci.run(t, "gate", image, "--policy", policyFile, "--environment", "production"); code != 0 || !strings.Contains(out, "gate PASS") {
		t.Errorf("gate --policy (allowlisted medium) in production: exit %d, want 0\n%s%s", code, out, errOut)
	}
	if out, errOut, code := ci.run(t, "gate", image, "--policy", policyFile, "--threshold", "medium", "--environment", "production"); code != 1 {
		t.Errorf("gate --policy --threshold medium: exit %d, want 1 (the threshold has no allowlist)\n%s%s", code, out, errOut)
	}
	if out, errOut, code := ci.run(t, "gate", image, "--policy", policyFile, "--environment", "staging"); code != 1 || !strings.Contains(out, "No policy applies") {
		t.Errorf("gate --policy in staging: exit %d, want 1 by the default\n%s%s", code, out, errOut)
	}

	// The project's CVE allowlist applies to the threshold, as the denial
	// says.
	out, errOut, code = ci.run(t, "gate", image, "--threshold", "medium")
	if code != 1 || !strings.Contains(out, `customs allowlist add CVE-2026-10001 --project gate`) {
		t.Fatalf("gate --threshold medium: exit %d, want 1 suggesting the project allowlist\n%s%s", code, out, errOut)
	}
	if out, errOut, code := admin.run(t, "allowlist", "add", "CVE-2026-10001", "--project", "gate", "--expires", "30d", "--reason", "gate test"); code != 0 {
		t.Fatalf("allowlist add: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := ci.run(t, "gate", image, "--threshold", "medium"); code != 0 || !strings.Contains(out, "gate PASS") {
		t.Errorf("gate --threshold medium after allowlist add: exit %d, want 0\n%s%s", code, out, errOut)
	}
	if out, errOut, code := ci.run(t, "gate", image, "--threshold", "low"); code != 1 || strings.Contains(out, "customs allowlist add CVE-2026-10001") ||
		!strings.Contains(out, "customs allowlist add CVE-2026-10002 CVE-2026-10003 --project gate") {
		t.Errorf("gate --threshold low after allowlisting CVE-2026-10001: exit %d, want 1 for the two Low findings only\n%s%s", code, out, errOut)
	}

	// An image the scanner cannot read is denied (fail closed), and the
	// seed's Task keeps waiting rather than pass it.
	odd, err := mutate.AppendLayers(empty.Image, static.NewLayer([]byte("not a tar"), "application/vnd.example.unknown.layer"))
	if err != nil {
		t.Fatal(err)
	}
	oddDigest, err := odd.Digest()
	if err != nil {
		t.Fatal(err)
	}
	oddRef, err := name.ParseReference(srv.Addr + "/gate/odd:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(oddRef, odd, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: srv.Username, Password: srv.Password})),
		remote.WithTransport(&http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}})); err != nil {
		t.Fatal(err)
	}
	if r := harness.WaitReport(t, api, oddDigest.String()); r.Status == report.StatusDone {
		t.Fatalf("a layer that is not a tar scanned done: %+v", r)
	}
	if out, errOut, code := ci.run(t, "gate", srv.Addr+"/gate/odd:1", "--threshold", "critical"); code != 1 || !strings.Contains(out, "scan") ||
		!strings.Contains(out, "gate FAIL") {
		t.Errorf("gate of an image that cannot be scanned: exit %d, want 1 (fail closed)\n%s%s", code, out, errOut)
	} else {
		t.Logf("customs gate of an image that cannot be scanned:\n%s%s", out, errOut)
	}
	if out, code := runTekton(t, tektonScript(t, srv.Addr+"/gate/odd@"+oddDigest.String(), srv.CAFile), "critical", srv.Addr, token, 4*time.Second); code != -1 {
		t.Errorf("the seed's Task passed an image that cannot be scanned (exit %d):\n%s", code, out)
	}

	// Errors exit 2.
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad threshold", []string{"gate", image, "--threshold", "severe"}, `threshold "severe" is not one of none, low, medium, high, critical`},
		{"unknown tag", []string{"gate", srv.Addr + "/gate/app:2.0", "--threshold", "high"}, "unknown image"},
		{"unknown repository", []string{"gate", "gate/missing:1", "--threshold", "high"}, "unknown image"},
		{"unknown digest", []string{"gate", "sha256:" + strings.Repeat("0", 64), "--threshold", "high"}, "unknown image"},
		{"bad format", []string{"gate", image, "--threshold", "high", "--format", "xml"}, `--format "xml"`},
		{"no threshold", []string{"gate", image}, "give --threshold"},
		{"bad policy file", []string{"gate", image, "--policy", filepath.Join(t.TempDir(), "none.yaml")}, "no such file"},
	} {
		if out, errOut, code := ci.run(t, tc.args...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, want 2 with %q\n%s%s", tc.name, code, tc.want, out, errOut)
		}
	}
	// Credentials refused: exit 2.
	bad := gateEnv{srv: srv, user: robot.Name, pass: "wrong-secret"}
	if out, errOut, code := bad.run(t, "gate", image, "--threshold", "high"); code != 2 {
		t.Errorf("gate with a wrong secret: exit %d, want 2\n%s%s", code, out, errOut)
	}
	// --threshold none passes at once, as the seed's Task, whatever the
	// image.
	if out, errOut, code := bad.run(t, "gate", "gate/missing:1", "--threshold", "none"); code != 0 {
		t.Errorf("gate --threshold none: exit %d, want 0\n%s%s", code, out, errOut)
	}
}
