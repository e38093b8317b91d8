package kube_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestAuditWorkloads: pods created while no webhook is registered (so
// nothing checked them) are audited by `customs audit workloads` against
// the current policy: the refused images are listed with customs' reason
// and it exits 1; once the policy allows them it exits 0.
func TestAuditWorkloads(t *testing.T) {
	t.Parallel()
	e := startCustoms(t, "audit")
	e.importAlpineAdvisories(t)
	e.srv.CreateProject(t, "shop", false)
	vulnerable, _ := e.pushAlpine(t, "shop/cart", "1", "1.1.20-r4")
	clean, _ := e.pushAlpine(t, "shop/cart", "2", "1.1.20-r5")
	// No webhook: these are what ran before customs was installed.
	e.kube.Kubectl(t, "create", "namespace", "audit-prod")
	t.Cleanup(func() { e.kube.Run(t, "", "delete", "--ignore-not-found", "--wait=false", "namespace", "audit-prod") })
	for name, image := range map[string]string{"cart-1": vulnerable, "cart-2": clean, "upstream": kuardUpstream} {
		admitted(t, e.run(t, "audit-prod", name, image))
	}
	e.applyPolicy(t, `apiVersion: customs.dev/v1alpha1
kind: Policy
metadata:
  name: audit-prod
spec:
  scope:
    namespaces: [audit-prod]
  registries:
    allowed: ["`+e.srv.Addr+`"]
  vulnerabilities:
    maxSeverity: high
`)
	audit := func(format string) (string, string, int) {
		return e.srv.CLI(t, "audit", "workloads", "--kubeconfig", e.kube.Kubeconfig, "--namespace", "audit-prod",
			"--admission-url", e.url(), "--admission-ca", e.caFile, "--format", format)
	}
	out, errOut, code := audit("table")
	t.Logf("audit workloads:\n%s", out)
	if code != 1 {
		t.Fatalf("audit workloads: exit %d, want 1\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"cart-1", vulnerable, "CVE-2019-14697", "upstream", kuardUpstream, "not from an allowed registry",
		"3 pods, 3 containers, 3 images checked: 2 containers refused"} {
		if !strings.Contains(out, want) {
			t.Fatalf("audit workloads does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "cart-2") {
		t.Fatalf("the clean pod is listed:\n%s", out)
	}
	out, errOut, code = audit("json")
	var rep struct {
		Pods    int `json:"pods"`
		Refused []struct {
			Pod, Image, Message string
		} `json:"refused"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || rep.Pods != 3 || len(rep.Refused) != 2 {
		t.Fatalf("audit workloads --format json: exit %d, %v\n%s%s", code, err, out, errOut)
	}

	// The policy relaxed: nothing refused, exit 0.
	e.applyPolicy(t, `apiVersion: customs.dev/v1alpha1
kind: Policy
metadata:
  name: audit-prod
spec:
  scope:
    namespaces: [audit-prod]
`)
	if out, errOut, code := audit("table"); code != 0 || !strings.Contains(out, "0 containers refused") {
		t.Fatalf("audit workloads after relaxing the policy: exit %d\n%s%s", code, out, errOut)
	}
	// A bad admission URL is an error (exit 2), not a clean audit.
	if out, errOut, code := e.srv.CLI(t, "audit", "workloads", "--kubeconfig", e.kube.Kubeconfig,
		"--admission-url", "https://127.0.0.1:1", "--admission-ca", e.caFile); code != 2 {
		t.Fatalf("audit workloads against nothing: exit %d\n%s%s", code, out, errOut)
	}
}
