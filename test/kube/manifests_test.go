package kube_test

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/test/e2e/harness"
	kubeharness "github.com/customs-dev/customs/test/kube/harness"
)

// customs runs the customs binary (no server needed) and returns stdout.
func customs(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, harness.CustomsBinary(t), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("customs %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// TestManifestsApply: everything `customs admission manifests` prints —
// in-cluster with a generated CA, and the --url variant — is accepted by
// the real API server's validation (kubectl apply --dry-run=server).
func TestManifestsApply(t *testing.T) {
	t.Parallel()
	c := kubeharness.Get(t)
	c.Kubectl(t, "create", "namespace", "customs-dryrun")
	out := customs(t, "admission", "manifests", "--namespace", "customs-dryrun", "--name", "customs-dryrun",
		"--image", "registry.corp.example/customs:1.0")
	applied := c.KubectlInput(t, out, "apply", "--dry-run=server", "-f", "-")
	for _, want := range []string{
		"namespace/customs-dryrun", "serviceaccount/customs-dryrun-admission", "clusterrole.rbac.authorization.k8s.io/customs-dryrun-admission",
		"clusterrolebinding.rbac.authorization.k8s.io/customs-dryrun-admission", "secret/customs-dryrun-admission-tls",
		"service/customs-admission", "deployment.apps/customs-dryrun",
		"validatingwebhookconfiguration.admissionregistration.k8s.io/customs-dryrun",
		"mutatingwebhookconfiguration.admissionregistration.k8s.io/customs-dryrun",
	} {
		if !strings.Contains(applied, want) {
			t.Errorf("kubectl apply --dry-run=server did not apply %s:\n%s", want, applied)
		}
	}
	if n := strings.Count(applied, "(server dry run)"); n != 9 {
		t.Errorf("%d objects applied, want 9:\n%s", n, applied)
	}
	// Nothing was created by the dry run.
	if r := c.Run(t, "", "get", "validatingwebhookconfiguration", "customs-dryrun"); r.Err == nil {
		t.Fatalf("the dry run created the webhook configuration:\n%s", r)
	}

	// The --url variant, with the CA of the first: webhooks and RBAC
	// only.
	ca := filepath.Join(t.TempDir(), "ca.crt")
	writeCA(t, out, ca)
	out = customs(t, "admission", "manifests", "--namespace", "customs-dryrun", "--name", "customs-dryrun-url",
		"--url", "https://127.0.0.1:8443", "--ca", ca, "--namespace-label", "customs.dev/enforce=true", "--timeout", "10")
	applied = c.KubectlInput(t, out, "apply", "--dry-run=server", "-f", "-")
	if n := strings.Count(applied, "(server dry run)"); n != 6 || strings.Contains(applied, "deployment") {
		t.Errorf("--url: %d objects applied, want 6 and no Deployment:\n%s", n, applied)
	}
}

// writeCA writes the ca.crt of the TLS Secret in manifests to path.
func writeCA(t *testing.T, manifests, path string) {
	t.Helper()
	for _, line := range strings.Split(manifests, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "ca.crt: "); ok {
			pem, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, pem, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no ca.crt in the manifests:\n%s", manifests)
}
