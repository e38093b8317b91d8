package policy

import (
	"context"
	"strings"
	"testing"
)

// TestExternalImages: the vulnerabilities and signatures rules on an image
// customs does not hold follow the policy's externalImages setting, and
// the message says so; registry rules still apply.
func TestExternalImages(t *testing.T) {
	rules := "vulnerabilities: {maxSeverity: high}\nsignatures: {required: true}\nregistries: {allowed: [gcr.io, registry.corp.example]}\n"
	e := mustEngine(t, Config{},
		doc("deny-env", "scope: {environments: [production]}\n"+rules),
		doc("warn-env", "scope: {environments: [staging]}\nexternalImages: warn\n"+rules),
		doc("allow-env", "scope: {environments: [development]}\nexternalImages: allow\n"+rules),
	)
	for _, tc := range []struct {
		name, env, image string
		external         bool
		want             Outcome
		contains         []string
	}{
		{"deny by default", "production", "gcr.io/kuar-demo/kuard-amd64:blue", true, Denied, []string{
			`gcr.io/kuar-demo/kuard-amd64 is not in customs, so its vulnerabilities cannot be checked, and policy "deny-env" requires a scan (threshold: "high") (externalImages: deny)`,
			`policy "deny-env", rule signatures: gcr.io/kuar-demo/kuard-amd64 is not in customs, so its signatures cannot be checked (externalImages: deny).`,
			`set spec.externalImages: warn or allow in policy "deny-env"`}},
		{"warn", "staging", "gcr.io/kuar-demo/kuard-amd64:blue", true, Warned, []string{"Warning: ", "(externalImages: warn)"}},
		{"allow", "development", "gcr.io/kuar-demo/kuard-amd64:blue", true, Allowed, nil},
		{"registry rule still applies", "development", "docker.io/library/nginx:1", true, Denied, []string{"is not from an allowed registry"}},
		{"held image: scan required as usual", "development", "registry.corp.example/kuard/kuard-amd64:blue", false, Denied, []string{"scan pending"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := eval(t, e, &Input{Image: mustImage(t, tc.image), Environment: tc.env, External: tc.external})
			if d.Outcome != tc.want {
				t.Fatalf("outcome %s, want %s: %s", d.Outcome, tc.want, d.Message())
			}
			for _, c := range tc.contains {
				if !strings.Contains(d.Message(), c) {
					t.Errorf("message %q lacks %q", d.Message(), c)
				}
			}
			if tc.want == Allowed && tc.external && !strings.Contains(strings.Join(d.Notes, " "), "externalImages: allow") {
				t.Errorf("notes %q do not say externalImages: allow applied", d.Notes)
			}
		})
	}
	// An outside image whose digest customs has scanned: the scan counts.
	d := eval(t, e, &Input{Image: mustImage(t, "gcr.io/a/b:1"), Environment: "production", External: true,
		Scan: done(finding("CVE-1", High, "musl", "1"))})
	if d.Outcome != Denied || !strings.Contains(d.Message(), "CVE-1") || !strings.Contains(d.Message(), "its signatures cannot be checked") {
		t.Errorf("outside image with a scan: %s %s", d.Outcome, d.Message())
	}
}

// TestNoMutate: a policy with admission.mutate: false marks the decisions
// of the images it applies to.
func TestNoMutate(t *testing.T) {
	e := mustEngine(t, Config{},
		doc("gitops", "scope: {namespaces: [argo]}\nadmission: {mutate: false}"),
		doc("default", ""),
	)
	if d := eval(t, e, &Input{Image: mustImage(t, "nginx:1"), Namespace: "argo"}); !d.NoMutate {
		t.Error("namespace argo: NoMutate false, want true")
	}
	if d := eval(t, e, &Input{Image: mustImage(t, "nginx:1"), Namespace: "web"}); d.NoMutate {
		t.Error("namespace web: NoMutate true, want false")
	}
}

// TestAnnotationsInRego: ImagePolicyWebhook annotations reach Rego as
// input.annotations (a break-glass rule), and the cache keeps decisions
// with different annotations apart.
func TestAnnotationsInRego(t *testing.T) {
	e := mustEngine(t, Config{}, regoDoc("breakglass", `package customs

deny contains msg if {
  not input.annotations["break-glass.image-policy.k8s.io/ticket"]
  input.image.tag == "latest"
  msg := "latest is not allowed without a break-glass ticket"
}`))
	c := NewCache(CacheConfig{})
	in := &Input{Image: mustImage(t, "nginx")}
	d, err := c.Evaluate(context.Background(), e, in)
	if err != nil || d.Outcome != Denied {
		t.Fatalf("without annotation: %v %v, want denied", d, err)
	}
	in2 := &Input{Image: mustImage(t, "nginx"), Annotations: map[string]string{"break-glass.image-policy.k8s.io/ticket": "INC-1"}}
	d, err = c.Evaluate(context.Background(), e, in2)
	if err != nil || d.Outcome != Allowed {
		t.Fatalf("with annotation: %+v %v, want allowed", d, err)
	}
}
