package kube_test

import (
	"fmt"
	"strings"
	"testing"
)

// kuardUpstream is seed 000's image, from a registry outside customs. No
// network is needed: registry rules decide it by name.
const kuardUpstream = "gcr.io/kuar-demo/kuard-amd64:blue"

// seed000Policies are seed 000's environments: development runs anything,
// staging trusts gcr.io and customs, production has a policy only for
// customs' own registry (so gcr.io matches none there), and the kuard
// project prevents images with high or critical findings.
func seed000Policies(registry string) []string {
	return []string{
		`apiVersion: customs.dev/v1alpha1
kind: Policy
metadata:
  name: development
  description: development runs anything
spec:
  scope:
    environments: [development]
`,
		fmt.Sprintf(`apiVersion: customs.dev/v1alpha1
kind: Policy
metadata:
  name: staging
spec:
  scope:
    environments: [staging]
  registries:
    allowed: [gcr.io, %q]
`, registry),
		fmt.Sprintf(`apiVersion: customs.dev/v1alpha1
kind: Policy
metadata:
  name: production
  description: production runs images from customs only
spec:
  scope:
    environments: [production]
    repositories: ["%s/**"]
  tags:
    deny: [latest]
`, registry),
		`apiVersion: customs.dev/v1alpha1
kind: Policy
metadata:
  name: project-kuard
spec:
  scope:
    projects: [kuard]
  vulnerabilities:
    maxSeverity: high
`,
	}
}

// TestSeed000 is seed 000 through kubectl: kuard from gcr.io is admitted in
// development and staging and refused in production with "no matching
// image policy"; the same image replicated into customs is refused in
// production for CVE-2019-14697 until allowlisted, a clean one is admitted
// at once (and pinned to its digest by the mutating webhook), and a
// Deployment with the refused image is refused at creation, and an update
// to it later.
func TestSeed000(t *testing.T) {
	t.Parallel()
	e := startCustoms(t, "seed000")
	e.importAlpineAdvisories(t)
	e.srv.CreateProject(t, "kuard", false)
	vulnerable, _ := e.pushAlpine(t, "kuard/kuard-amd64", "blue", "1.1.20-r4")
	clean, cleanDigest := e.pushAlpine(t, "kuard/kuard-clean", "1", "1.1.20-r5")
	for _, p := range seed000Policies(e.srv.Addr) {
		e.applyPolicy(t, p)
	}
	e.registerWebhooks(t)
	for _, ns := range []string{"development", "staging", "production"} {
		e.namespace(t, ns)
	}

	admitted(t, e.run(t, "development", "kuard", kuardUpstream))
	admitted(t, e.run(t, "staging", "kuard", kuardUpstream))
	refused(t, e.run(t, "production", "kuard", kuardUpstream), kuardUpstream, "no matching image policy")

	// From customs' own project: refused while CVE-2019-14697 blocks it,
	// with the command that would allow it.
	refused(t, e.run(t, "production", "kuard", vulnerable), vulnerable, "CVE-2019-14697", "customs allowlist add")
	// A Deployment with the refused image is refused at creation, not
	// when its pods would be.
	r := e.kube.Run(t, "", "create", "deployment", "kuard", "-n", "production", "--image="+kuardUpstream)
	refused(t, r, "no matching image policy")
	if g := e.kube.Run(t, "", "get", "deployment", "kuard", "-n", "production"); g.Err == nil {
		t.Fatalf("the refused Deployment exists:\n%s", g)
	}

	// Clean: admitted, and the mutating webhook pinned the tag to the
	// digest that was checked.
	admitted(t, e.run(t, "production", "kuard-clean", clean))
	if got, want := e.jsonpath(t, "production", "pod", "kuard-clean", "{.spec.containers[0].image}"), clean+"@"+cleanDigest; got != want {
		t.Fatalf("the admitted pod's image is %q, want the tag pinned to its digest %q", got, want)
	}

	// Allowlisted in the project: admitted in production.
	e.srv.MustCLI(t, "allowlist", "add", "CVE-2019-14697", "--server", e.srv.URL(), "--project", "kuard",
		"--expires", "30d", "--reason", "seed 000: not reachable")
	admitted(t, e.run(t, "production", "kuard", vulnerable))
	if got := e.jsonpath(t, "production", "pod", "kuard", "{.spec.containers[0].image}"); !strings.HasPrefix(got, vulnerable+"@sha256:") {
		t.Fatalf("the admitted kuard pod's image is %q, want %s pinned to a digest", got, vulnerable)
	}
	// And a Deployment of it too, its pod template pinned to the digest.
	admitted(t, e.kube.Run(t, "", "create", "deployment", "kuard", "-n", "production", "--image="+vulnerable))
	if got := e.jsonpath(t, "production", "deployment", "kuard", "{.spec.template.spec.containers[0].image}"); !strings.HasPrefix(got, vulnerable+"@sha256:") {
		t.Fatalf("the Deployment's image is %q, want %s pinned to a digest", got, vulnerable)
	}
	// An UPDATE is decided too: switching the Deployment to the gcr.io
	// image is refused, and the Deployment keeps its image.
	refused(t, e.kube.Run(t, "", "set", "image", "-n", "production", "deployment/kuard", "*="+kuardUpstream), "no matching image policy")
	if got := e.jsonpath(t, "production", "deployment", "kuard", "{.spec.template.spec.containers[0].image}"); !strings.HasPrefix(got, vulnerable+"@sha256:") {
		t.Fatalf("after the refused update the Deployment's image is %q", got)
	}
}
