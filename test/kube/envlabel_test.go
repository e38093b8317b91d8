package kube_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/customs-dev/customs/test/e2e/harness"
)

// TestEnvironmentLabel: with cluster credentials customs reads a
// namespace's customs.dev/environment label (over the config's mapping).
// The credentials are a token of the service account `customs admission
// manifests` creates, so this also checks that its RBAC is enough: a
// namespace labelled development runs gcr.io images by the development
// policy, an unlabelled one matches no policy.
func TestEnvironmentLabel(t *testing.T) {
	t.Parallel()
	e := startCustoms(t, "envlabel")
	e.applyPolicy(t, `apiVersion: customs.dev/v1alpha1
kind: Policy
metadata:
  name: development
spec:
  scope:
    environments: [development]
`)
	e.registerWebhooks(t)
	ns, sa := "customs-"+e.label, "customs-"+e.label+"-admission"
	token := strings.TrimSpace(e.kube.Kubectl(t, "create", "token", sa, "-n", ns, "--duration", "1h"))
	if token == "" {
		t.Fatal("kubectl create token printed nothing")
	}
	// The ClusterRole the manifests bind lets the service account read
	// namespaces (the API server's own answer).
	if out := strings.TrimSpace(e.kube.Kubectl(t, "auth", "can-i", "get", "namespaces", "--as", "system:serviceaccount:"+ns+":"+sa)); out != "yes" {
		t.Fatalf("the admission service account may not get namespaces: %q", out)
	}
	ca, err := os.ReadFile(e.kube.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "customs.kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: %q, certificate-authority-data: %s}
users:
- name: customs
  user: {token: %q}
contexts:
- name: test
  context: {cluster: test, user: customs}
current-context: test
`, e.kube.URL, base64.StdEncoding.EncodeToString(ca), token)), 0o600); err != nil {
		t.Fatal(err)
	}
	// Restart customs with the credentials (same data, same address).
	cfg := admissionConfig(e.admissionAddr) + "  kubeconfig: " + kubeconfig + "\n"
	if err := os.WriteFile(e.configFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	e.srv.Stop(t)
	e.start(t, harness.Options{DataDir: e.srv.DataDir, Password: e.srv.Password})

	e.namespace(t, "env-labelled")
	e.kube.Kubectl(t, "label", "namespace", "env-labelled", "customs.dev/environment=development")
	e.namespace(t, "env-plain")
	admitted(t, e.run(t, "env-labelled", "kuard", kuardUpstream))
	refused(t, e.run(t, "env-plain", "kuard", kuardUpstream), "no matching image policy")
}
