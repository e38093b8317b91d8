package kube_test

import (
	"testing"
)

// vaPolicy is seed 003's cluster-wide policy with va on (every finding
// refuses, an unscanned image is refused) or off.
func vaPolicy(name string, on bool, scope string) string {
	doc := "apiVersion: customs.dev/v1alpha1\nkind: Policy\nmetadata:\n  name: " + name + "\nspec:\n"
	if scope != "" {
		doc += "  scope:\n" + scope
	}
	if on {
		doc += "  vulnerabilities:\n    maxSeverity: none\n"
	} else if scope == "" {
		doc += "  mode: enforce\n"
	}
	return doc
}

// TestSeed003 is seed 003's cluster and namespace policies with va on and
// off: the cluster policy (va on) refuses the vulnerable image and admits
// the clean one; a namespace policy (va off) replaces it in its
// namespace; turning va off in the cluster policy admits the vulnerable
// image everywhere; kube-system is exempt even when labelled for the
// webhooks (the namespaceSelector excludes it by kubernetes.io/metadata.name).
func TestSeed003(t *testing.T) {
	t.Parallel()
	e := startCustoms(t, "seed003")
	e.importAlpineAdvisories(t)
	e.srv.CreateProject(t, "team", false)
	vulnerable, _ := e.pushAlpine(t, "team/tomcat", "latest", "1.1.20-r4")
	clean, _ := e.pushAlpine(t, "team/tomcat", "v2", "1.1.20-r5")
	e.applyPolicy(t, vaPolicy("cluster-default", true, ""))
	e.registerWebhooks(t)
	e.namespace(t, "va-team-a")
	e.namespace(t, "va-team-b")

	refused(t, e.run(t, "va-team-a", "tomcat", vulnerable), vulnerable, "CVE-2019-14697")
	admitted(t, e.run(t, "va-team-a", "tomcat-v2", clean))

	// kube-system is exempt: labelled like this test's namespaces, the
	// vulnerable image is still admitted there.
	e.kube.Kubectl(t, "label", "--overwrite", "namespace", "kube-system", testLabel+"="+e.label)
	t.Cleanup(func() { e.kube.Run(t, "", "label", "namespace", "kube-system", testLabel+"-") })
	admitted(t, e.run(t, "kube-system", "seed003-tomcat", vulnerable))
	t.Cleanup(func() { e.kube.Run(t, "", "delete", "pod", "-n", "kube-system", "seed003-tomcat", "--wait=false") })

	// A namespace policy with va off replaces the cluster policy in its
	// namespace only.
	e.applyPolicy(t, vaPolicy("team-b", false, "    namespaces: [va-team-b]\n"))
	admitted(t, e.run(t, "va-team-b", "tomcat", vulnerable))
	refused(t, e.run(t, "va-team-a", "tomcat", vulnerable), vulnerable, "CVE-2019-14697")

	// va off in the cluster policy: admitted everywhere.
	e.applyPolicy(t, vaPolicy("cluster-default", false, ""))
	admitted(t, e.run(t, "va-team-a", "tomcat", vulnerable))
}
