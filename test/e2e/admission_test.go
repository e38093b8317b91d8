package e2e_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/customs-dev/customs/test/e2e/harness"
)

// TestAdmissionWebhookCurl runs `customs serve` with the admission listener
// configured from the environment (CUSTOMS_ADMISSION_ADDR,
// CUSTOMS_ADMISSION_ENVIRONMENTS) and asks it with curl, trusting only the
// generated CA: seed 002's ImageReview is answered as the applied policy
// says (an image no policy matches in production refused with "no
// matching image policy"), seed 000's production Pod from gcr.io too, a plain-HTTP or untrusted client gets nothing, and a
// restart on the same data keeps the CA (caBundles stay valid).
func TestAdmissionWebhookCurl(t *testing.T) {
	t.Parallel()
	harness.Tool(t, "curl")
	harness.Tool(t, "jq")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	env := []string{"CUSTOMS_ADMISSION_ADDR=" + addr, "CUSTOMS_ADMISSION_ENVIRONMENTS=production=production,prod-*;staging=staging"}
	srv := harness.StartCustoms(t, harness.Options{Env: env})
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(policyFile, []byte(`apiVersion: customs.dev/v1alpha1
kind: Policy
metadata: {name: image-enforcer}
spec:
  scope: {environments: [production], repositories: ["registry.corp.example/**"]}
  tags: {deny: [latest]}
`), 0o644)
	srv.MustCLI(t, "policy", "apply", "-f", policyFile, "--server", srv.URL())

	ca := filepath.Join(srv.DataDir, "admission-tls", "ca.crt")
	c := harness.NewClient(t)
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	reviews := filepath.Join(root, "internal", "admission", "testdata", "reviews")
	ask := func(path, file, filter string) string {
		t.Helper()
		out := c.Must(t, "bash", "-c", fmt.Sprintf(
			`curl -sS --fail-with-body --cacert %q -H 'Content-Type: application/json' --data-binary @%q 'https://%s%s?timeout=5s' | jq -r %q`,
			ca, file, addr, path, filter))
		return strings.TrimSpace(out)
	}
	irFile := filepath.Join(t.TempDir(), "ir.json")
	for _, tc := range []struct {
		image, ns, want string
	}{
		{"registry.corp.example/openpolicyagent/opa:0.4.9", "prod-eu", "true"},
		{"registry.corp.example/library/wordpress:latest", "production", "false"},
		{"docker.io/library/wordpress:4-apache", "production", "false"},
	} {
		os.WriteFile(irFile, []byte(fmt.Sprintf(`{"apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"ImageReview","spec":{"containers":[{"image":%q}],"namespace":%q}}`, tc.image, tc.ns)), 0o644)
		if got := ask("/imagereview", irFile, ".status.allowed"); got != tc.want {
			t.Errorf("ImageReview of %s in %s: allowed %s, want %s", tc.image, tc.ns, got, tc.want)
		}
	}
	if got := ask("/imagereview", irFile, ".status.reason"); !strings.Contains(got, "Forbidden: no matching image policy") {
		t.Errorf("reason %q", got)
	}
	// Seed 000: production refuses what no policy there matches.
	msg := ask("/validate", filepath.Join(reviews, "validate-pod-production-no-matching-policy.request.json"), ".response.status.message")
	if !strings.Contains(msg, `spec.containers[0].image (container "kuard")`) || !strings.Contains(msg, "Forbidden: no matching image policy") {
		t.Errorf("production pod: %q", msg)
	}
	// kube-system is exempt by default.
	if got := ask("/validate", filepath.Join(reviews, "validate-pod-kube-system-exempt.request.json"), ".response.auditAnnotations.outcome"); got != "exempt" {
		t.Errorf("kube-system: outcome %q", got)
	}
	// Only TLS, and only for clients trusting the CA.
	if r := c.Run(t, "curl", "-sS", "http://"+addr+"/healthz"); r.Err == nil && strings.Contains(r.Stdout, "ok") {
		t.Errorf("plain HTTP answered: %s", r)
	}
	if r := c.Run(t, "curl", "-sS", "https://"+addr+"/healthz"); r.Err == nil {
		t.Errorf("a client without the CA connected: %s", r)
	}

	// A restart on the same data serves with the same CA.
	before, _ := os.ReadFile(ca)
	srv.Stop(t)
	srv = harness.StartCustoms(t, harness.Options{Env: env, DataDir: srv.DataDir, Password: srv.Password})
	after, _ := os.ReadFile(ca)
	if string(before) != string(after) {
		t.Error("the admission CA changed across a restart")
	}
	if got := ask("/imagereview", irFile, ".status.allowed"); got != "false" {
		t.Errorf("after restart: allowed %s", got)
	}
}
