package kube_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/test/e2e/harness"
	kubeharness "github.com/customs-dev/customs/test/kube/harness"
)

// onlyCustomsPolicy lets nothing but customs' registry run in its
// namespaces.
func onlyCustomsPolicy(registry string, namespaces string) string {
	return `apiVersion: customs.dev/v1alpha1
kind: Policy
metadata:
  name: only-customs
spec:
  scope:
    namespaces: [` + namespaces + `]
  registries:
    allowed: ["` + registry + `"]
`
}

// TestDebugEphemeralContainer: `kubectl debug` adds an ephemeral container
// through the pods/ephemeralcontainers subresource; one with an image the
// policy refuses is refused, one with an allowed image is added.
func TestDebugEphemeralContainer(t *testing.T) {
	t.Parallel()
	e := startCustoms(t, "debug")
	e.srv.CreateProject(t, "tools", false)
	app, _ := e.pushAlpine(t, "tools/app", "1", "1.1.20-r5")
	e.applyPolicy(t, onlyCustomsPolicy(e.srv.Addr, "debug-prod"))
	e.registerWebhooks(t)
	e.namespace(t, "debug-prod")
	admitted(t, e.run(t, "debug-prod", "app", app))

	r := e.kube.Run(t, "", "debug", "-n", "debug-prod", "app", "--image=docker.io/library/busybox:1.36", "--container=shell")
	refused(t, r, "docker.io/library/busybox:1.36")
	if got := e.jsonpath(t, "debug-prod", "pod", "app", "{.spec.ephemeralContainers[*].name}"); got != "" {
		t.Fatalf("ephemeral containers after the refusal: %q", got)
	}
	admitted(t, e.kube.Run(t, "", "debug", "-n", "debug-prod", "app", "--image="+app, "--container=shell"))
	if got := e.jsonpath(t, "debug-prod", "pod", "app", "{.spec.ephemeralContainers[*].name}"); got != "shell" {
		t.Fatalf("ephemeral containers: %q, want shell", got)
	}
}

// TestFailurePolicyFail: with customs down, failurePolicy Fail refuses
// creations; once customs is back (same data, same admission address) they
// are admitted again.
func TestFailurePolicyFail(t *testing.T) {
	t.Parallel()
	e := startCustoms(t, "down")
	e.applyPolicy(t, `apiVersion: customs.dev/v1alpha1
kind: Policy
metadata:
  name: anything
spec:
  scope:
    namespaces: [down-dev]
`)
	e.registerWebhooks(t)
	e.namespace(t, "down-dev")
	admitted(t, e.run(t, "down-dev", "before", kuardUpstream))

	e.srv.Stop(t)
	r := e.run(t, "down-dev", "while-down", kuardUpstream)
	if r.Err == nil || !strings.Contains(r.Stderr, "failed calling webhook") {
		t.Fatalf("with customs down the pod was not refused by failurePolicy Fail:\n%s", r)
	}

	e.start(t, harness.Options{DataDir: e.srv.DataDir, Password: e.srv.Password})
	admitted(t, e.run(t, "down-dev", "after", kuardUpstream))
}

// TestSeed002ImagePolicyWebhook starts a second API server with the
// ImagePolicyWebhook admission plugin configured by the files `customs
// admission manifests --imagepolicy` writes (defaultAllow: false): images
// are admitted and refused as the policies say, customs' exempt namespace
// list applies (the plugin has no selector), and with customs down every
// pod is refused.
func TestSeed002ImagePolicyWebhook(t *testing.T) {
	t.Parallel()
	e := startCustoms(t, "seed002")
	e.srv.CreateProject(t, "library", false)
	opa, _ := e.pushAlpine(t, "library/opa", "0.4.10", "1.1.20-r5")
	// Seed 002's image enforcer: production must use the internal
	// registry, no latest, names are lower-case team/app.
	e.applyPolicy(t, `apiVersion: customs.dev/v1alpha1
kind: Policy
metadata:
  name: image-enforcer
spec:
  registries:
    allowed: ["`+e.srv.Addr+`"]
  tags:
    deny: [latest]
  names:
    pattern: '[a-z0-9-]+/[a-z0-9-]+'
`)
	dir := filepath.Join(t.TempDir(), "imagepolicy")
	e.manifests(t, "--imagepolicy", dir)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := kubeharness.Get(t)
	s, err := c.StartAPIServer(ctx, kubeharness.Options{AdmissionConfigFile: filepath.Join(dir, "admission-config.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	t.Logf("API server with ImagePolicyWebhook ready in %s", s.StartupTime)
	s.Kubectl(t, "create", "namespace", "apps")
	s.Kubectl(t, "create", "namespace", "apps-2")

	run := func(ns, name, image string) kubeharness.Result {
		return s.Run(t, "", "run", "-n", ns, "--restart=Never", "--image="+image, name)
	}
	deniedByPlugin := func(r kubeharness.Result, want ...string) {
		t.Helper()
		if r.Err == nil {
			t.Fatalf("admitted, want refused by ImagePolicyWebhook:\n%s", r)
		}
		for _, w := range append([]string{"image policy webhook backend denied one or more images"}, want...) {
			if !strings.Contains(r.Stderr, w) {
				t.Fatalf("the refusal does not say %q:\n%s", w, r)
			}
		}
	}
	if r := run("apps", "opa", opa); r.Err != nil {
		t.Fatalf("allowed image refused:\n%s", r)
	}
	deniedByPlugin(run("apps", "wordpress", "docker.io/library/wordpress:4-apache"), "not from an allowed registry")
	deniedByPlugin(run("apps", "latest", e.srv.Addr+"/library/opa:latest"), "latest")
	// customs exempts kube-system itself: the plugin sends every pod.
	if r := run("kube-system", "wordpress", "docker.io/library/wordpress:4-apache"); r.Err != nil {
		t.Fatalf("kube-system is exempt in customs, yet refused:\n%s", r)
	}

	// defaultAllow: false — customs down, images refused. (Another
	// namespace: the plugin caches answers per review for allowTTL.)
	e.srv.Stop(t)
	if r := run("apps-2", "opa", opa); r.Err == nil {
		t.Fatalf("with customs down and defaultAllow false the pod was admitted:\n%s", r)
	}
}
