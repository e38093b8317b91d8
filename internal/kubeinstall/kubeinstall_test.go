package kubeinstall

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"

	"github.com/customs-dev/customs/internal/apperr"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n%s", path, got)
	}
}

func fixtureOptions(t *testing.T) Options {
	o := DefaultOptions("registry.corp.example/customs:1.0")
	o.CAPEM, o.CertPEM, o.KeyPEM = readFile(t, "ca.crt"), readFile(t, "tls.crt"), readFile(t, "tls.key")
	return o
}

// TestBuildGolden pins the in-cluster install and the --url variant.
func TestBuildGolden(t *testing.T) {
	for _, tt := range []struct {
		name   string
		golden string
		opts   func(*Options)
	}{
		{name: "in cluster", golden: "in-cluster.yaml", opts: func(*Options) {}},
		{name: "url, labels, exemptions", golden: "url.yaml", opts: func(o *Options) {
			o.URL = "https://127.0.0.1:8443/"
			o.CertPEM, o.KeyPEM = nil, nil
			o.Name = "customs-test"
			o.ExemptNamespaces = []string{"kube-system", "monitoring"}
			o.NamespaceLabels = map[string]string{"customs.dev/admission": "enforce"}
			o.TimeoutSeconds = 10
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := fixtureOptions(t)
			tt.opts(&o)
			m, err := Build(o)
			if err != nil {
				t.Fatal(err)
			}
			out, err := m.YAML()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.golden, out)
		})
	}
}

// TestWebhookContract checks, on the decoded objects, what the issue asks
// of the webhooks whatever the options.
func TestWebhookContract(t *testing.T) {
	m, err := Build(fixtureOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.YAML()
	if err != nil {
		t.Fatal(err)
	}
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	for _, doc := range strings.Split(string(out), "\n---\n") {
		switch {
		case strings.Contains(doc, "kind: ValidatingWebhookConfiguration"):
			if err := yaml.UnmarshalStrict([]byte(doc), &vwc); err != nil {
				t.Fatal(err)
			}
		case strings.Contains(doc, "kind: MutatingWebhookConfiguration"):
			if err := yaml.UnmarshalStrict([]byte(doc), &mwc); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(vwc.Webhooks) != 1 || len(mwc.Webhooks) != 1 {
		t.Fatalf("webhooks: %d validating, %d mutating; want 1 each", len(vwc.Webhooks), len(mwc.Webhooks))
	}
	v, mu := vwc.Webhooks[0], mwc.Webhooks[0]
	for _, w := range []struct {
		name    string
		fail    *admissionregistrationv1.FailurePolicyType
		side    *admissionregistrationv1.SideEffectClass
		timeout *int32
		ca      []byte
		path    *string
		rules   []admissionregistrationv1.RuleWithOperations
		exempt  []string
		want    string
	}{
		{v.Name, v.FailurePolicy, v.SideEffects, v.TimeoutSeconds, v.ClientConfig.CABundle, v.ClientConfig.Service.Path, v.Rules, v.NamespaceSelector.MatchExpressions[0].Values, ValidatePath},
		{mu.Name, mu.FailurePolicy, mu.SideEffects, mu.TimeoutSeconds, mu.ClientConfig.CABundle, mu.ClientConfig.Service.Path, mu.Rules, mu.NamespaceSelector.MatchExpressions[0].Values, MutatePath},
	} {
		if *w.fail != admissionregistrationv1.Fail || *w.side != admissionregistrationv1.SideEffectClassNone || *w.timeout != 5 {
			t.Errorf("%s: failurePolicy %s, sideEffects %s, timeout %d", w.name, *w.fail, *w.side, *w.timeout)
		}
		if !bytes.Equal(w.ca, readFile(t, "ca.crt")) || *w.path != w.want {
			t.Errorf("%s: caBundle or path %q wrong", w.name, *w.path)
		}
		if strings.Join(w.exempt, ",") != "kube-system,customs" {
			t.Errorf("%s: exempt %v", w.name, w.exempt)
		}
		var resources []string
		for _, r := range w.rules {
			resources = append(resources, r.Resources...)
		}
		for _, want := range []string{"pods", "pods/ephemeralcontainers", "deployments", "replicasets", "statefulsets",
			"daemonsets", "jobs", "cronjobs", "replicationcontrollers", "podtemplates"} {
			if !strings.Contains(","+strings.Join(resources, ",")+",", ","+want+",") {
				t.Errorf("%s: no rule for %s", w.name, want)
			}
		}
	}
}

// TestGenerated checks that without certificates a CA and a serving
// certificate for the Service are generated, and the caBundle is that CA.
func TestGenerated(t *testing.T) {
	m, err := Build(DefaultOptions("customs:1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkCA(m.CAPEM); err != nil {
		t.Fatal(err)
	}
	out, _ := m.YAML()
	if !strings.Contains(string(out), "kind: Secret") || !strings.Contains(string(out), "type: kubernetes.io/tls") {
		t.Fatalf("no TLS secret:\n%s", out)
	}
}

func TestBuildErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts func(*Options)
		want string
	}{
		{"http url", func(o *Options) { o.URL = "http://127.0.0.1:8443" }, "want https://HOST[:PORT]"},
		{"url with path", func(o *Options) { o.URL = "https://127.0.0.1:8443/validate" }, "want https://HOST[:PORT]"},
		{"url without ca", func(o *Options) { o.URL = "https://127.0.0.1:8443"; o.CAPEM = nil }, "--url needs --ca"},
		{"cert without key", func(o *Options) { o.KeyPEM = nil }, "--ca, --cert and --key go together"},
		{"ca not pem", func(o *Options) { o.CAPEM = []byte("hello") }, "--ca: no PEM CERTIFICATE block"},
		{"bad namespace", func(o *Options) { o.Namespace = "Customs" }, `--namespace "Customs"`},
		{"bad exempt", func(o *Options) { o.ExemptNamespaces = []string{"kube_system"} }, `--exempt-namespace "kube_system"`},
		{"bad label", func(o *Options) { o.NamespaceLabels = map[string]string{"a b": "c"} }, "--namespace-label a b=c"},
		{"timeout", func(o *Options) { o.TimeoutSeconds = 31 }, "--timeout 31"},
		{"no image", func(o *Options) { o.Image = "" }, "--image"},
		{"replicas without database", func(o *Options) { o.Replicas = 2 }, "--replicas 2 needs --config-secret"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := fixtureOptions(t)
			tt.opts(&o)
			_, err := Build(o)
			if err == nil || !strings.Contains(err.Error(), tt.want) || apperr.Code(err) != apperr.EINVALID {
				t.Fatalf("Build: %v; want EINVALID containing %q", err, tt.want)
			}
		})
	}
}

func TestImagePolicy(t *testing.T) {
	ip, err := BuildImagePolicy(ImagePolicyOptions{URL: "https://127.0.0.1:8443", CAPEM: readFile(t, "ca.crt"),
		KubeconfigPath: "/etc/kubernetes/customs/imagepolicy.kubeconfig", AllowTTL: 50, DenyTTL: 50, RetryBackoff: 500})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "admission-config.yaml", ip.AdmissionConfig)
	golden(t, "imagepolicy.kubeconfig", ip.Kubeconfig)
	if _, err := BuildImagePolicy(ImagePolicyOptions{URL: "https://127.0.0.1:8443", CAPEM: readFile(t, "ca.crt"), KubeconfigPath: "rel"}); err == nil ||
		!strings.Contains(err.Error(), "must be absolute") {
		t.Fatalf("relative kubeconfig path: %v", err)
	}
}
