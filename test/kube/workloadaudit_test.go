package kube_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/test/e2e/harness"
	kubeharness "github.com/customs-dev/customs/test/kube/harness"
)

// TestWorkloadAuditJob: customs serve with cluster credentials audits the
// running workloads itself. Pods created while no webhook is registered
// (nothing checked them) are listed by GET /api/v1/workloads/refused
// seconds after a policy change refuses one of their images — the interval
// is an hour, so only the policy change can have triggered it — with the
// digest and customs' reason, and so is a running pod a newly imported
// CVE refuses, seconds after the scanner re-matched its report; the refusal is a workload.refused audit
// event; `customs audit workloads --server` prints it without cluster
// credentials and exits 1; a restart keeps the result.
func TestWorkloadAuditJob(t *testing.T) {
	t.Parallel()
	kube := kubeharness.Get(t)
	harness.Tool(t, "crane")
	e := &env{kube: kube.APIServer, label: "wlaudit", admissionAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	e.configFile = filepath.Join(t.TempDir(), "customs.yaml")
	cfg := admissionConfig(e.admissionAddr) + "  kubeconfig: " + e.kube.Kubeconfig + "\n  workloadAudit: {interval: 1h, debounce: 1s}\n"
	if err := os.WriteFile(e.configFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	e.start(t, harness.Options{})
	ctx := context.Background()

	// No advisories yet: musl 1.1.20-r4 has no known vulnerability.
	e.srv.CreateProject(t, "shop", false)
	clean, cleanDigest := e.pushAlpine(t, "shop/cart", "2", "1.1.20-r5")
	old, _ := e.pushAlpine(t, "shop/cart", "1", "1.1.20-r4")
	const ns, nsVA = "wlaudit-prod", "wlaudit-va"
	for _, n := range []string{ns, nsVA} {
		e.kube.Kubectl(t, "create", "namespace", n)
		t.Cleanup(func() { e.kube.Run(t, "", "delete", "--ignore-not-found", "--wait=false", "namespace", n) })
	}
	for name, image := range map[string]string{"cart": clean, "upstream": kuardUpstream} {
		admitted(t, e.run(t, ns, name, image))
	}
	admitted(t, e.run(t, nsVA, "old", old))
	in := func(namespace string, l []api.WorkloadContainer) []api.WorkloadContainer {
		var out []api.WorkloadContainer
		for _, w := range l {
			if w.Namespace == namespace {
				out = append(out, w)
			}
		}
		return out
	}
	ours := func(l []api.WorkloadContainer) []api.WorkloadContainer { return in(ns, l) }
	e.applyPolicy(t, `apiVersion: customs.dev/v1alpha1
kind: Policy
metadata:
  name: wlaudit-va
spec:
  scope:
    namespaces: [`+nsVA+`]
  vulnerabilities:
    maxSeverity: high
`)
	// wait polls the server's result until ok accepts it.
	wait := func(what string, within time.Duration, ok func(*api.WorkloadAudit) bool) *api.WorkloadAudit {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			a, err := e.admin.RefusedWorkloads(ctx)
			if err == nil && ok(a) {
				return a
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s (last answer %+v, %v)\n%s", what, within, a, err, tail(e.srv.Logs(), 30))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// A policy allowing everything in the namespace: the audit after it
	// lists nothing of ours.
	e.applyPolicy(t, `apiVersion: customs.dev/v1alpha1
kind: Policy
metadata:
  name: wlaudit
spec:
  scope:
    namespaces: [`+ns+`]
`)
	rev := policyRevision(t, e.admin)
	wait("an audit after the permissive policy", 30*time.Second, func(a *api.WorkloadAudit) bool {
		return a.PolicyRevision >= rev && len(ours(a.Refused)) == 0 && len(in(nsVA, a.Refused)) == 0 && a.Pods >= 3
	})

	// Tightened: only customs' registry. The result lists the upstream pod
	// within seconds, triggered by the policy change.
	e.applyPolicy(t, `apiVersion: customs.dev/v1alpha1
kind: Policy
metadata:
  name: wlaudit
spec:
  scope:
    namespaces: [`+ns+`]
  registries:
    allowed: ["`+e.srv.Addr+`"]
`)
	changed := time.Now()
	a := wait("the refused upstream pod", 20*time.Second, func(a *api.WorkloadAudit) bool { return len(ours(a.Refused)) > 0 })
	t.Logf("listed %s after the policy change (trigger %s): %+v", time.Since(changed).Round(time.Millisecond), a.Trigger, ours(a.Refused))
	if a.Trigger != "policy" {
		t.Errorf("trigger %q, want policy", a.Trigger)
	}
	got := ours(a.Refused)
	if len(got) != 1 || got[0].Pod != "upstream" || got[0].Image != kuardUpstream || got[0].Container == "" ||
		!strings.Contains(got[0].Reason, "not from an allowed registry") {
		t.Fatalf("refused in %s: %+v, want only the upstream pod, not from an allowed registry", ns, got)
	}
	// Tightened further, customs' own image is refused too: listed with
	// the digest its tag resolved to.
	e.applyPolicy(t, `apiVersion: customs.dev/v1alpha1
kind: Policy
metadata:
  name: wlaudit
spec:
  scope:
    namespaces: [`+ns+`]
  registries:
    allowed: [registry.example]
`)
	a = wait("both pods refused", 20*time.Second, func(a *api.WorkloadAudit) bool { return len(ours(a.Refused)) == 2 })
	for _, w := range ours(a.Refused) {
		if w.Pod == "cart" && (w.Image != clean || w.Digest != cleanDigest) {
			t.Errorf("cart: %+v, want image %s digest %s", w, clean, cleanDigest)
		}
	}

	// A new CVE: the advisories imported now rate musl 1.1.20-r4's
	// CVE-2019-14697 critical; once the scanner re-matched the reports the
	// running pod is listed, without a policy change.
	e.importAlpineAdvisories(t)
	imported := time.Now()
	a = wait("the pod the new CVE refuses", 30*time.Second, func(a *api.WorkloadAudit) bool { return len(in(nsVA, a.Refused)) > 0 })
	t.Logf("listed %s after the import (trigger %s): %+v", time.Since(imported).Round(time.Millisecond), a.Trigger, in(nsVA, a.Refused))
	if got := in(nsVA, a.Refused); a.Trigger != "vulndb" || len(got) != 1 || got[0].Pod != "old" || !strings.Contains(got[0].Reason, "CVE-2019-14697") {
		t.Fatalf("after the new CVE: trigger %s, refused in %s %+v", a.Trigger, nsVA, got)
	}

	// A newly refused container is an audit event.
	page, err := e.admin.AuditEvents(ctx, apiclient.AuditQuery{Action: "workload.refused", Resource: "pod:" + ns + "/upstream"})
	if err != nil || len(page.Events) == 0 {
		t.Fatalf("no workload.refused event for %s/upstream: %+v, %v", ns, page, err)
	}

	// The CLI, without cluster credentials.
	out, errOut, code := e.srv.CLI(t, "audit", "workloads", "--server", e.srv.URL(), "-n", ns)
	t.Logf("customs audit workloads --server:\n%s", out)
	if code != 1 || !strings.Contains(out, "upstream") || !strings.Contains(out, kuardUpstream) || !strings.Contains(out, cleanDigest) ||
		!strings.Contains(out, "trigger vulndb") {
		t.Fatalf("audit workloads --server: exit %d\n%s%s", code, out, errOut)
	}

	// A restart keeps the result (served from the store before any new
	// run could finish).
	e.srv.Stop(t)
	e.start(t, harness.Options{DataDir: e.srv.DataDir, Password: e.srv.Password})
	if a2, err := e.admin.RefusedWorkloads(ctx); err != nil || len(ours(a2.Refused)) != 2 || len(in(nsVA, a2.Refused)) != 1 {
		t.Fatalf("after a restart: %+v, %v", a2, err)
	}
}

// policyRevision reads the global policy revision.
func policyRevision(t *testing.T, c *apiclient.Client) int64 {
	t.Helper()
	_, rev, err := c.Policies(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
