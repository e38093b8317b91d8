package e2e_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/internal/rbac"
	"github.com/customs-dev/customs/test/e2e/harness"
)

// apkImage builds a linux/amd64 Alpine 3.9 image of two layers: a base
// layer every apkImage shares (os-release), and a layer with the apk
// database listing pkgs (name, version pairs) and an /etc/motd of its own.
// With test/e2e/testdata/seed001's advisories: zlib 1.2.11-r1 has a medium
// finding, busybox 1.29.3-r10 a low one, openssl 1.1.1a-r0 a high one.
func apkImage(t *testing.T, motd string, pkgs ...string) v1.Image {
	t.Helper()
	var db strings.Builder
	for i := 0; i < len(pkgs); i += 2 {
		db.WriteString("P:" + pkgs[i] + "\nV:" + pkgs[i+1] + "\nA:x86_64\no:" + pkgs[i] + "\n\n")
	}
	base := harness.Layer(t, "etc/os-release", "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.9.6\nPRETTY_NAME=\"Alpine Linux v3.9\"\n")
	top := harness.Layer(t, "lib/apk/db/installed", db.String(), "etc/motd", motd+"\n")
	return harness.BuildImage(t, base, top)
}

// writeLayout writes an image or index as the one entry of a new OCI
// layout and returns its directory and the entry's digest.
func writeLayout(t *testing.T, img v1.Image, idx v1.ImageIndex) (string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	var d v1.Hash
	if img != nil {
		err, d = p.AppendImage(img), mustDigest(t, img.Digest)
	} else {
		err, d = p.AppendIndex(idx), mustDigest(t, idx.Digest)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir, d.String()
}

func mustDigest(t *testing.T, f func() (v1.Hash, error)) v1.Hash {
	t.Helper()
	h, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// seed001 is a server with seed 001's advisories, project testproject, a
// guest "guest" (pull only), and the admin as pusher.
type seed001 struct {
	srv           *harness.Server
	admin         *apiclient.Client
	pusher, guest *harness.Client
}

func newSeed001(t *testing.T, opts harness.Options) *seed001 {
	t.Helper()
	harness.Tool(t, "skopeo")
	harness.Tool(t, "crane")
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	srv := harness.StartCustoms(t, opts)
	if out, errOut, code := srv.CLI(t, "vulndb", "import", "--data-dir", opts.DataDir, "--name", "seed001",
		filepath.Join(repoRoot(), "test", "e2e", "testdata", "seed001")); code != 0 {
		t.Fatalf("vulndb import: exit %d\n%s%s", code, out, errOut)
	}
	ctx := context.Background()
	srv.CreateProject(t, "testproject", false)
	admin := &apiclient.Client{BaseURL: srv.URL(), Username: srv.Username, Password: srv.Password}
	if _, err := admin.CreateUser(ctx, api.CreateUserRequest{Name: "guest", Password: "guest-password-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AddMember(ctx, "testproject", "", "guest", rbac.RoleGuest); err != nil {
		t.Fatal(err)
	}
	s := &seed001{srv: srv, admin: admin, pusher: harness.NewClient(t), guest: harness.NewClient(t)}
	s.pusher.MustInput(t, srv.Password, "skopeo", "login", "--tls-verify=false", "-u", srv.Username, "--password-stdin", srv.Addr)
	s.pusher.MustInput(t, srv.Password, "crane", "auth", "login", srv.Addr, "-u", srv.Username, "--password-stdin")
	s.guest.MustInput(t, "guest-password-1", "skopeo", "login", "--tls-verify=false", "-u", "guest", "--password-stdin", srv.Addr)
	s.guest.MustInput(t, "guest-password-1", "crane", "auth", "login", srv.Addr, "-u", "guest", "--password-stdin")
	return s
}

// push copies the layout's entry (all platforms of an index) to ref with
// skopeo as the admin and waits for its scan.
func (s *seed001) push(t *testing.T, dir, digest, ref string) {
	t.Helper()
	s.pusher.Must(t, "skopeo", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false", "oci:"+dir, "docker://"+s.srv.Addr+"/"+ref)
	harness.WaitReport(t, s.admin, digest)
}

// pull copies ref out of the registry with skopeo as c.
func (s *seed001) pull(t *testing.T, c *harness.Client, ref string) harness.Result {
	t.Helper()
	return c.Run(t, "skopeo", "--insecure-policy", "copy", "--all", "--src-tls-verify=false",
		"docker://"+s.srv.Addr+"/"+ref, "oci:"+filepath.Join(t.TempDir(), "out"))
}

// refused checks that the guest's pull of ref fails with every one of
// wants in skopeo's error.
func (s *seed001) refused(t *testing.T, ref string, wants ...string) {
	t.Helper()
	r := s.pull(t, s.guest, ref)
	if r.Err == nil {
		t.Fatalf("the guest's pull of %s was not refused:\n%s", ref, r)
	}
	stderr := strings.ReplaceAll(r.Stderr, `\"`, `"`)
	for _, want := range wants {
		if !strings.Contains(stderr, want) {
			t.Fatalf("pull of %s: skopeo's error does not carry %q:\n%s", ref, want, r)
		}
	}
}

func (s *seed001) pulls(t *testing.T, ref string) {
	t.Helper()
	if r := s.pull(t, s.guest, ref); r.Err != nil {
		t.Fatalf("the guest's pull of %s: %s", ref, r)
	}
}

// projectSet runs customs project set testproject ARGS.
func (s *seed001) projectSet(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := s.srv.CLI(t, append([]string{"project", "set", "testproject", "--server", s.srv.URL()}, args...)...)
	if code != 0 {
		t.Fatalf("customs project set %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

// eval runs customs policy eval and returns its output and exit code.
func (s *seed001) eval(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return s.srv.CLI(t, append([]string{"policy", "eval", "--server", s.srv.URL()}, args...)...)
}

// TestSeed001 is seed 001 end to end with skopeo: the project setting
// "prevent vulnerable images from running" at low refuses the ubuntu-like
// image (a medium and a low finding) with Harbor's "medium … low" message;
// at high the ubuntu-like image pulls and the elasticsearch-like one (a
// high finding) is refused. Along the way: the admin (a pusher) still
// pulls, blobs of the refused image are refused while a base layer shared
// with an allowed image is served, customs policy eval answers as the door
// does (exit 0/1/2), the system allowlist lets the image through, and
// every change is in the audit log.
func TestSeed001(t *testing.T) {
	t.Parallel()
	s := newSeed001(t, harness.Options{})
	ubuntu := apkImage(t, "ubuntu-like", "busybox", "1.29.3-r10", "zlib", "1.2.11-r1")
	elastic := apkImage(t, "elasticsearch-like", "openssl", "1.1.1a-r0", "zlib", "1.2.11-r1")
	ubuntuDir, ubuntuDigest := writeLayout(t, ubuntu, nil)
	elasticDir, elasticDigest := writeLayout(t, elastic, nil)
	s.push(t, ubuntuDir, ubuntuDigest, "testproject/ubuntu:latest")
	s.push(t, elasticDir, elasticDigest, "testproject/elasticsearch:latest")
	// The elasticsearch-like image also under a tag of the ubuntu
	// repository: both share the base layer there.
	s.push(t, elasticDir, elasticDigest, "testproject/ubuntu:es")

	// Before any setting: nothing is prevented.
	s.pulls(t, "testproject/elasticsearch:latest")

	out := s.projectSet(t, "--prevent-vulnerable", "--severity", "low", "--content-trust=false")
	if !strings.Contains(out, "prevent vulnerable images:   true (severity low)") || !strings.Contains(out, "scan on push:                true") {
		t.Fatalf("project set:\n%s", out)
	}
	s.refused(t, "testproject/ubuntu:latest",
		`The severity of vulnerability of the image: "medium" is equal or higher than the threshold in project setting: "low".`,
		"Blocked by CUSTOMS-TEST-0001 (zlib 1.2.11-r1, fixed in 1.2.11-r2), CUSTOMS-TEST-0002 (busybox 1.29.3-r10, fixed in 1.29.3-r11)",
		"To allow, fix the image or run: customs allowlist add CUSTOMS-TEST-0001 CUSTOMS-TEST-0002 --project testproject --expires 30d")
	// The pusher may still read what it could overwrite.
	if r := s.pull(t, s.pusher, "testproject/ubuntu:latest"); r.Err != nil {
		t.Fatalf("the admin's pull of the blocked image: %s", r)
	}
	if r := s.pusher.Run(t, "crane", "manifest", "--insecure", s.srv.Addr+"/testproject/ubuntu:latest"); r.Err != nil {
		t.Fatalf("the admin's crane manifest of the blocked image: %s", r)
	}
	// customs policy eval answers as the door: denied, exit 1.
	evalOut, errOut, code := s.eval(t, "--image", s.srv.Addr+"/testproject/ubuntu:latest")
	if code != 1 || !strings.Contains(evalOut, "denied (registry door)") || !strings.Contains(evalOut, "digest: "+ubuntuDigest) ||
		!strings.Contains(evalOut, `"medium" is equal or higher than the threshold in project setting: "low"`) {
		t.Fatalf("policy eval at low: exit %d\n%s%s", code, evalOut, errOut)
	}

	s.projectSet(t, "--severity", "high")
	s.pulls(t, "testproject/ubuntu:latest")
	s.refused(t, "testproject/elasticsearch:latest",
		`The severity of vulnerability of the image: "high" is equal or higher than the threshold in project setting: "high".`,
		"Blocked by CUSTOMS-TEST-0003 (openssl 1.1.1a-r0, fixed in 1.1.1b-r1)")

	// Blobs: the refused image's own layer is refused to the guest; the
	// base layer it shares with the allowed ubuntu-like image is served
	// (in the ubuntu repository, which holds both); the pusher gets all.
	layers, err := elastic.Layers()
	if err != nil {
		t.Fatal(err)
	}
	baseDigest, topDigest := mustDigest(t, layers[0].Digest).String(), mustDigest(t, layers[1].Digest).String()
	blob := func(c *harness.Client, repo, d string) harness.Result {
		return c.Run(t, "crane", "blob", "--insecure", s.srv.Addr+"/testproject/"+repo+"@"+d)
	}
	if r := blob(s.guest, "elasticsearch", topDigest); r.Err == nil || !strings.Contains(r.Stderr, "DENIED") {
		t.Fatalf("the guest's GET of the refused image's layer: %s", r)
	}
	if r := blob(s.guest, "ubuntu", topDigest); r.Err == nil || !strings.Contains(r.Stderr, "belongs only to images you may not pull") {
		t.Fatalf("the guest's GET of the refused image's layer in the shared repository: %s", r)
	}
	if r := blob(s.guest, "ubuntu", baseDigest); r.Err != nil {
		t.Fatalf("the guest's GET of the shared base layer: %s", r)
	}
	if r := blob(s.pusher, "elasticsearch", topDigest); r.Err != nil {
		t.Fatalf("the admin's GET of the refused image's layer: %s", r)
	}

	// policy eval: allowed exit 0, denied exit 1, a policy file that
	// replaces the project's settings exit 0, a bad reference exit 2.
	if out, errOut, code := s.eval(t, "--image", s.srv.Addr+"/testproject/ubuntu:latest"); code != 0 || !strings.Contains(out, "allowed") {
		t.Fatalf("policy eval of the ubuntu-like image at high: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = s.eval(t, "--image", s.srv.Addr+"/testproject/elasticsearch:latest", "--format", "json")
	var res api.EvaluateResult
	if code != 1 || json.Unmarshal([]byte(out), &res) != nil || res.Decision.Outcome != "denied" || res.Input.Digest != elasticDigest ||
		res.Input.Scan == nil || res.Input.Scan.Counts().High != 1 || res.Door != "registry" {
		t.Fatalf("policy eval --format json of the elasticsearch-like image: exit %d\n%s%s", code, out, errOut)
	}
	whatIf := filepath.Join(t.TempDir(), "whatif.yaml")
	if err := os.WriteFile(whatIf, []byte(`apiVersion: customs.dev/v1alpha1
kind: Policy
metadata:
  name: project-testproject
spec:
  scope:
    projects: [testproject]
  vulnerabilities:
    maxSeverity: critical
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := s.eval(t, "--image", s.srv.Addr+"/testproject/elasticsearch:latest", "--policy", whatIf); code != 0 {
		t.Fatalf("policy eval with a what-if policy: exit %d\n%s%s", code, out, errOut)
	}
	s.refused(t, "testproject/elasticsearch:latest", "CUSTOMS-TEST-0003") // the what-if stored nothing
	if out, errOut, code := s.eval(t, "--image", "Not A Reference"); code != 2 || !strings.Contains(errOut, "image") {
		t.Fatalf("policy eval of a bad reference: exit %d\n%s%s", code, out, errOut)
	}

	// The system allowlist lets the high finding through everywhere the
	// project lets it apply; removing the entry refuses again.
	if out, errOut, code := s.srv.CLI(t, "allowlist", "add", "CUSTOMS-TEST-0003", "--system", "--server", s.srv.URL(),
		"--expires", "30d", "--reason", "seed 001 test"); code != 0 || !strings.Contains(out, "the system allowlist") {
		t.Fatalf("allowlist add --system: exit %d\n%s%s", code, out, errOut)
	}
	s.pulls(t, "testproject/elasticsearch:latest")
	if out, _, _ := s.srv.CLI(t, "allowlist", "list", "--system", "--server", s.srv.URL()); !strings.Contains(out, "CUSTOMS-TEST-0003") || !strings.Contains(out, "seed 001 test") {
		t.Fatalf("allowlist list --system:\n%s", out)
	}
	s.projectSet(t, "--use-system-allowlist=false")
	s.refused(t, "testproject/elasticsearch:latest", "CUSTOMS-TEST-0003")
	s.projectSet(t, "--use-system-allowlist")
	s.pulls(t, "testproject/elasticsearch:latest")
	if out, errOut, code := s.srv.CLI(t, "allowlist", "remove", "CUSTOMS-TEST-0003", "--system", "--server", s.srv.URL()); code != 0 {
		t.Fatalf("allowlist remove --system: exit %d\n%s%s", code, out, errOut)
	}
	s.refused(t, "testproject/elasticsearch:latest", "CUSTOMS-TEST-0003")
	// Only administrators change the system allowlist.
	guestAPI := &apiclient.Client{BaseURL: s.srv.URL(), Username: "guest", Password: "guest-password-1"}
	if _, err := guestAPI.AddSystemAllowlistEntry(context.Background(), api.AllowlistEntry{ID: "CUSTOMS-TEST-0003"}); err == nil {
		t.Fatal("a guest added a system allowlist entry")
	}

	// Every change is audited.
	for _, action := range []string{"project.update", "system_allowlist.add", "system_allowlist.remove"} {
		out, errOut, code := s.srv.CLI(t, "audit", "query", "--server", s.srv.URL(), "--action", action, "--output", "json")
		if code != 0 || !strings.Contains(out, action) {
			t.Fatalf("audit query --action %s: exit %d\n%s%s", action, code, out, errOut)
		}
	}
	out, _, _ = s.srv.CLI(t, "audit", "query", "--server", s.srv.URL(), "--action", "project.update", "--output", "json")
	if !strings.Contains(out, `"severity":"high"`) && !strings.Contains(out, `"severity": "high"`) {
		t.Fatalf("the project update's audit event does not carry the severity:\n%s", out)
	}
}

// TestPullDoorIndexAndDefault: an index is refused when one of its
// platform images is (naming it), while the allowed platform pulls by
// digest; with policy.registryDefault deny, an image of a project without
// a project policy is refused and the message says how to allow it.
func TestPullDoorIndexAndDefault(t *testing.T) {
	t.Parallel()
	s := newSeed001(t, harness.Options{Env: []string{"CUSTOMS_POLICY_REGISTRY_DEFAULT=deny"}})
	clean := apkImage(t, "amd64", "busybox", "1.29.3-r11")
	vulnerable := apkImage(t, "arm64", "openssl", "1.1.1a-r0")
	cf, err := vulnerable.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture = "arm64"
	if vulnerable, err = mutate.ConfigFile(vulnerable, cf); err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: clean, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: vulnerable, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	dir, _ := writeLayout(t, nil, idx)
	// skopeo writes the index in its own form (so its digest is read back).
	s.pusher.Must(t, "skopeo", "copy", "--all", "--dest-tls-verify=false", "oci:"+dir, "docker://"+s.srv.Addr+"/testproject/multi:v1")
	idxDigest := strings.TrimSpace(s.pusher.Must(t, "crane", "digest", "--insecure", s.srv.Addr+"/testproject/multi:v1"))
	cleanDigest, vulnDigest := mustDigest(t, clean.Digest).String(), mustDigest(t, vulnerable.Digest).String()
	for _, d := range []string{cleanDigest, vulnDigest, idxDigest} {
		harness.WaitReport(t, s.admin, d)
	}

	// No project policy and the registry default is deny.
	s.refused(t, "testproject/multi@"+cleanDigest, "No policy applies", "and the default is to deny")

	s.projectSet(t, "--prevent-vulnerable", "--severity", "high")
	s.refused(t, "testproject/multi:v1", "Platform manifest "+vulnDigest+" of the index",
		`"high" is equal or higher than the threshold in project setting: "high"`)
	s.pulls(t, "testproject/multi@"+cleanDigest)
	s.refused(t, "testproject/multi@"+vulnDigest, "CUSTOMS-TEST-0003")
	// The what-if view judges the index as the door does.
	if out, errOut, code := s.eval(t, "--image", s.srv.Addr+"/testproject/multi:v1"); code != 1 ||
		!strings.Contains(out, "Platform manifest "+vulnDigest+" of the index") || !strings.Contains(out, "digest: "+idxDigest) {
		t.Fatalf("policy eval of the index: exit %d\n%s%s", code, out, errOut)
	}
	// Content trust: no signature can be verified yet, so it fails closed,
	// saying so.
	s.projectSet(t, "--content-trust")
	s.refused(t, "testproject/multi@"+cleanDigest, "signature verification not available")
	s.projectSet(t, "--content-trust=false")
	s.pulls(t, "testproject/multi@"+cleanDigest)
}
