package e2e_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/internal/rbac"
	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/test/e2e/harness"
)

// kuardPolicyFile is seed 000's project setting: prevent vulnerable images
// at severity high.
const kuardPolicyFile = `apiVersion: customs.dev/v1alpha1
kind: Policy
metadata:
  name: project-kuard
  description: kuard's images may not have high or critical findings
spec:
  scope:
    projects: [kuard]
  vulnerabilities:
    maxSeverity: high
`

// TestPullDoorSeed000 is seed 000's registry part: the kuard-like image
// (musl 1.1.20-r4, ALPINE-CVE-2019-14697 rated critical by an NVD feed
// record) in project kuard, whose policy sets maxSeverity high, is refused
// to a puller with skopeo with the Harbor-style message; after customs
// allowlist add it pulls; with an entry that expired it is refused again.
// Its pusher can pull it all along.
func TestPullDoorSeed000(t *testing.T) {
	t.Parallel()
	harness.Tool(t, "skopeo")
	harness.Tool(t, "crane")
	dataDir := t.TempDir()
	srv := harness.StartCustoms(t, harness.Options{DataDir: dataDir})
	for _, args := range [][]string{
		{"vulndb", "import", "--data-dir", dataDir, filepath.Join(repoRoot(), "testdata", "vulndata", "osv", "alpine-v3.9", "all.zip")},
		{"vulndb", "import", "--data-dir", dataDir, "--name", "nvd", filepath.Join(repoRoot(), "test", "scancli", "testdata", "nvd-CVE-2019-14697.json")},
	} {
		if out, errOut, code := srv.CLI(t, args...); code != 0 {
			t.Fatalf("customs %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
	}
	ctx := context.Background()
	srv.CreateProject(t, "kuard", false)
	admin := &apiclient.Client{BaseURL: srv.URL(), Username: srv.Username, Password: srv.Password}
	if _, err := admin.CreateUser(ctx, api.CreateUserRequest{Name: "reader", Password: "reader-password-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AddMember(ctx, "kuard", "", "reader", rbac.RoleGuest); err != nil {
		t.Fatal(err)
	}

	// The admin pushes the image and it is scanned on push.
	kuard := harness.AlpineLayout(t, "1.1.20-r4", "welcome kuard")
	kuardDigest, _ := layoutManifest(t, kuard)
	pusher := harness.NewClient(t)
	pusher.MustInput(t, srv.Password, "crane", "auth", "login", srv.Addr, "-u", srv.Username, "--password-stdin")
	pusher.Must(t, "crane", "push", "--insecure", kuard, srv.Addr+"/kuard/kuard-amd64:blue")
	rep := harness.WaitReport(t, admin, kuardDigest)
	critical := false
	for _, f := range rep.Findings {
		if f.AdvisoryID == "ALPINE-CVE-2019-14697" && f.Severity.Level.String() == "critical" {
			critical = true
		}
	}
	if rep.Status != report.StatusDone || !critical {
		t.Fatalf("kuard report: %s, findings %v; want ALPINE-CVE-2019-14697 rated critical by the NVD record", rep.Status, findingsOf(rep))
	}

	policyFile := filepath.Join(t.TempDir(), "kuard.yaml")
	if err := os.WriteFile(policyFile, []byte(kuardPolicyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := srv.CLI(t, "policy", "diff", "--server", srv.URL(), "-f", policyFile); code != 1 || !strings.Contains(out, "+  name: project-kuard") {
		t.Fatalf("policy diff before apply: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := srv.CLI(t, "policy", "apply", "--server", srv.URL(), "-f", policyFile); code != 0 || !strings.Contains(out, "policy project-kuard created") {
		t.Fatalf("policy apply: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := srv.CLI(t, "policy", "diff", "--server", srv.URL(), "-f", policyFile); code != 0 || out != "" {
		t.Fatalf("policy diff after apply: exit %d\n%s%s", code, out, errOut)
	}

	reader := harness.NewClient(t)
	reader.MustInput(t, "reader-password-1\n", "skopeo", "login", "--tls-verify=false", "--username", "reader", "--password-stdin", srv.Addr)
	pull := func(c *harness.Client) harness.Result {
		return c.Run(t, "skopeo", "--insecure-policy", "copy", "--src-tls-verify=false",
			"docker://"+srv.Addr+"/kuard/kuard-amd64:blue", "oci:"+filepath.Join(t.TempDir(), "out")+":blue")
	}
	refused := func(what string) {
		t.Helper()
		r := pull(reader)
		if r.Err == nil {
			t.Fatalf("%s: the pull was not refused:\n%s", what, r)
		}
		// skopeo's logger quotes the message: its quotes come escaped.
		stderr := strings.ReplaceAll(r.Stderr, `\"`, `"`)
		for _, want := range []string{
			`The severity of vulnerability of the image: "critical" is equal or higher than the threshold in project setting: "high"`,
			"CVE-2019-14697", "musl 1.1.20-r4", "1.1.20-r5", "customs allowlist add",
		} {
			if !strings.Contains(stderr, want) {
				t.Fatalf("%s: skopeo's error does not carry %q:\n%s", what, want, r)
			}
		}
	}
	refused("blocked image")
	if r := pull(pusher); r.Err != nil {
		// crane's credentials are Docker's config; skopeo reads them too.
		t.Fatalf("the pusher's pull of the blocked image: %s", r)
	}

	if out, errOut, code := srv.CLI(t, "allowlist", "add", "CVE-2019-14697", "--server", srv.URL(),
		"--project", "kuard", "--expires", "30d", "--reason", "test"); code != 0 {
		t.Fatalf("allowlist add: exit %d\n%s%s", code, out, errOut)
	}
	if r := pull(reader); r.Err != nil {
		t.Fatalf("pull after allowlist add: %s", r)
	}
	out, _, _ := srv.CLI(t, "allowlist", "list", "--server", srv.URL(), "--project", "kuard")
	if !strings.Contains(out, "CVE-2019-14697") || !strings.Contains(out, "test") {
		t.Fatalf("allowlist list:\n%s", out)
	}

	// An entry that expired no longer allows it.
	if out, errOut, code := srv.CLI(t, "allowlist", "add", "CVE-2019-14697", "--server", srv.URL(),
		"--project", "kuard", "--expires", "2s", "--reason", "short"); code != 0 {
		t.Fatalf("allowlist add: exit %d\n%s%s", code, out, errOut)
	}
	time.Sleep(3 * time.Second)
	refused("entry expired")
	out, _, _ = srv.CLI(t, "allowlist", "list", "--server", srv.URL(), "--project", "kuard")
	if !strings.Contains(out, "(expired)") {
		t.Fatalf("allowlist list does not show the expired entry:\n%s", out)
	}

	// The policy as stored now: the allowlist entry is in it, with its
	// history; a bad file is refused with its line; deleting the policy
	// lets the image through.
	out, _, _ = srv.CLI(t, "policy", "get", "project-kuard", "--server", srv.URL())
	if !strings.Contains(out, "id: CVE-2019-14697") || !strings.Contains(out, "reason: short") || !strings.Contains(out, "addedBy: admin") {
		t.Fatalf("policy get:\n%s", out)
	}
	out, _, _ = srv.CLI(t, "policy", "get", "project-kuard", "--history", "--server", srv.URL())
	if n := strings.Count(out, "apply"); n != 3 {
		t.Fatalf("policy get --history lists %d applies, want 3:\n%s", n, out)
	}
	out, _, _ = srv.CLI(t, "policy", "list", "--server", srv.URL())
	if !strings.Contains(out, "project-kuard") || !strings.Contains(out, "kuard") {
		t.Fatalf("policy list:\n%s", out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte(strings.Replace(kuardPolicyFile, "maxSeverity: high", "maxSeverity: severe", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := srv.CLI(t, "policy", "apply", "--server", srv.URL(), "-f", bad); code != 2 ||
		!strings.Contains(errOut, "bad.yaml:10: spec.vulnerabilities.maxSeverity") {
		t.Fatalf("policy apply of a bad file: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := srv.CLI(t, "policy", "delete", "project-kuard", "--server", srv.URL()); code != 0 {
		t.Fatalf("policy delete: exit %d\n%s%s", code, out, errOut)
	}
	if r := pull(reader); r.Err != nil {
		t.Fatalf("pull after the policy was deleted: %s", r)
	}
}
