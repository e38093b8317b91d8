package kube_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/test/e2e/harness"
	kubeharness "github.com/customs-dev/customs/test/kube/harness"
)

// testLabel is the namespace label the webhooks of one test select.
const testLabel = "customs.dev/test"

// env is one test's customs, with its admission listener, and the API
// server it answers.
type env struct {
	kube *kubeharness.APIServer
	srv  *harness.Server
	// label is the value of testLabel on this test's namespaces.
	label string
	// admissionAddr is the admission listener's 127.0.0.1:PORT.
	admissionAddr string
	// caFile verifies the admission listener.
	caFile     string
	configFile string
	admin      *apiclient.Client
}

// admissionConfig is customs' configuration for the tests: the admission
// listener on addr, and environments for namespaces.
func admissionConfig(addr string) string {
	return fmt.Sprintf(`admission:
  addr: %s
  environments:
    development: [development]
    staging: [staging, test]
    production: [production, "prod-*"]
`, addr)
}

// startCustoms starts customs with its admission listener on a free port
// and waits until the listener answers /healthz with its generated CA.
func startCustoms(t *testing.T, label string) *env {
	t.Helper()
	kube := kubeharness.Get(t)
	harness.Tool(t, "crane")
	port := freePort(t)
	e := &env{kube: kube.APIServer, label: label, admissionAddr: fmt.Sprintf("127.0.0.1:%d", port)}
	e.configFile = filepath.Join(t.TempDir(), "customs.yaml")
	if err := os.WriteFile(e.configFile, []byte(admissionConfig(e.admissionAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	e.start(t, harness.Options{})
	return e
}

// start (re)starts customs; opts.DataDir and Password restart it on the
// same data.
func (e *env) start(t *testing.T, opts harness.Options) {
	t.Helper()
	opts.Args = append(opts.Args, "--config", e.configFile)
	e.srv = harness.StartCustoms(t, opts)
	e.caFile = filepath.Join(e.srv.DataDir, "admission-tls", "ca.crt")
	e.admin = &apiclient.Client{BaseURL: e.srv.URL(), Username: e.srv.Username, Password: e.srv.Password}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := e.healthz()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("customs' admission listener on %s does not answer: %v", e.admissionAddr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// healthz asks the admission listener's /healthz, trusting its CA.
func (e *env) healthz() error {
	pem, err := os.ReadFile(e.caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s: no certificate", e.caFile)
	}
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://" + e.admissionAddr + "/healthz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /healthz: %s", resp.Status)
	}
	return nil
}

// url is the admission listener's base URL.
func (e *env) url() string { return "https://" + e.admissionAddr }

// manifests runs `customs admission manifests` for this test's customs
// (outside the cluster: --url) with extra flags and returns its output.
func (e *env) manifests(t *testing.T, extra ...string) string {
	t.Helper()
	args := append([]string{"admission", "manifests", "--url", e.url(), "--ca", e.caFile,
		"--name", "customs-" + e.label, "--namespace", "customs-" + e.label,
		"--namespace-label", testLabel + "=" + e.label}, extra...)
	return e.srv.MustCLI(t, args...)
}

// registerWebhooks applies what `customs admission manifests --url` prints,
// and removes the webhook configurations when the test ends.
func (e *env) registerWebhooks(t *testing.T) {
	t.Helper()
	e.kube.KubectlInput(t, e.manifests(t), "apply", "-f", "-")
	t.Cleanup(func() {
		e.kube.Run(t, "", "delete", "--ignore-not-found", "validatingwebhookconfiguration,mutatingwebhookconfiguration", "customs-"+e.label)
		e.kube.Run(t, "", "delete", "--ignore-not-found", "--wait=false", "namespace", "customs-"+e.label)
	})
}

// namespace creates namespace name labelled for this test's webhooks.
func (e *env) namespace(t *testing.T, name string) {
	t.Helper()
	e.kube.Kubectl(t, "create", "namespace", name)
	e.kube.Kubectl(t, "label", "namespace", name, testLabel+"="+e.label)
	t.Cleanup(func() { e.kube.Run(t, "", "delete", "--ignore-not-found", "--wait=false", "namespace", name) })
}

// run is `kubectl run -n ns --restart=Never --image=image name`.
func (e *env) run(t *testing.T, ns, name, image string) kubeharness.Result {
	t.Helper()
	return e.kube.Run(t, "", "run", "-n", ns, "--restart=Never", "--image-pull-policy=Always", "--image="+image, name)
}

// admitted fails the test unless r shows a created object.
func admitted(t *testing.T, r kubeharness.Result) {
	t.Helper()
	if r.Err != nil {
		t.Fatalf("not admitted:\n%s", r)
	}
}

// refused fails the test unless r was refused by customs' validating
// webhook with a message holding every one of want.
func refused(t *testing.T, r kubeharness.Result, want ...string) {
	t.Helper()
	if r.Err == nil {
		t.Fatalf("admitted, want refused:\n%s", r)
	}
	want = append([]string{`admission webhook "validate.customs.dev" denied the request`}, want...)
	for _, w := range want {
		if !strings.Contains(r.Stderr, w) {
			t.Fatalf("the refusal does not say %q:\n%s", w, r)
		}
	}
}

// applyPolicy applies a policy document with the customs CLI.
func (e *env) applyPolicy(t *testing.T, doc string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	e.srv.MustCLI(t, "policy", "apply", "--server", e.srv.URL(), "-f", f)
}

// importAlpineAdvisories imports Alpine 3.9's advisories and the NVD
// record that rates CVE-2019-14697 critical.
func (e *env) importAlpineAdvisories(t *testing.T) {
	t.Helper()
	root := repoRoot()
	e.srv.MustCLI(t, "vulndb", "import", "--data-dir", e.srv.DataDir, filepath.Join(root, "testdata", "vulndata", "osv", "alpine-v3.9", "all.zip"))
	e.srv.MustCLI(t, "vulndb", "import", "--data-dir", e.srv.DataDir, "--name", "nvd", filepath.Join(root, "test", "scancli", "testdata", "nvd-CVE-2019-14697.json"))
}

// pushAlpine pushes an Alpine-style image with musl at muslVersion to
// repo:tag on customs with crane, waits for its scan and returns the image
// reference (127.0.0.1:PORT/repo:tag) and its digest.
func (e *env) pushAlpine(t *testing.T, repo, tag, muslVersion string) (ref, digest string) {
	t.Helper()
	dir := harness.AlpineLayout(t, muslVersion, repo+":"+tag)
	digest = harness.LayoutDigest(t, dir)
	c := harness.NewClient(t)
	c.MustInput(t, e.srv.Password, "crane", "auth", "login", e.srv.Addr, "-u", e.srv.Username, "--password-stdin")
	ref = e.srv.Addr + "/" + repo + ":" + tag
	c.Must(t, "crane", "push", "--insecure", dir, ref)
	rep := harness.WaitReport(t, e.admin, digest)
	t.Logf("%s (%s): scan %s, %d findings", ref, digest, rep.Status, len(rep.Findings))
	return ref, digest
}

// jsonpath is `kubectl get KIND NAME -n NS -o jsonpath=EXPR`.
func (e *env) jsonpath(t *testing.T, ns, kind, name, expr string) string {
	t.Helper()
	return e.kube.Kubectl(t, "get", kind, name, "-n", ns, "-o", "jsonpath="+expr)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

var _ = context.Background
