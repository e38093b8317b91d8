package admission

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/customs-dev/customs/internal/policy"
)

// TestDecidePod: the workload audit's entry point answers what Validate
// answers for the same pod — exemption, environment, refusals with the
// same text, warnings — container by container.
func TestDecidePod(t *testing.T) {
	w, _, _ := newFixtureWebhook(t)
	pod := func(ns string, images ...string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns}}
		for i, im := range images {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: string(rune('a' + i)), Image: im})
		}
		p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "registry.local:5000/kuard/kuard-clean:1"}}
		return p
	}
	for _, tc := range []struct {
		name, ns    string
		images      []string
		exempt, env string
		outcomes    []string // per use: init first
	}{
		{"production refuses gcr.io and the vulnerable image", "production",
			[]string{"gcr.io/kuar-demo/kuard-amd64:blue", "registry.local:5000/kuard/kuar-demo/kuard-amd64:blue", "registry.local:5000/kuard/kuard-clean:1"},
			"", "production", []string{"allowed", "denied", "denied", "allowed"}},
		{"staging trusts gcr.io", "staging", []string{"gcr.io/kuar-demo/kuard-amd64:blue"}, "", "staging", []string{"allowed", "allowed"}},
		{"warn mode", "warned", []string{"registry.local:5000/kuard/kuard-clean:latest"}, "", "", []string{"", "warned"}},
		{"kube-system exempt", "kube-system", []string{"gcr.io/x:1"}, "kube-system", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pod(tc.ns, tc.images...)
			got, err := w.DecidePod(context.Background(), 0, p)
			if err != nil {
				t.Fatal(err)
			}
			if got.ExemptBy != tc.exempt || got.Environment != tc.env {
				t.Fatalf("exempt %q environment %q, want %q %q", got.ExemptBy, got.Environment, tc.exempt, tc.env)
			}
			if len(got.Images) != len(tc.outcomes) {
				t.Fatalf("%d decisions, want %d", len(got.Images), len(tc.outcomes))
			}
			var refused []string
			for i, d := range got.Images {
				o := "denied"
				if !d.Denied() {
					o = string(d.Decision.Outcome)
				}
				if tc.outcomes[i] != "" && o != tc.outcomes[i] {
					t.Errorf("%s: %s (%s), want %s", d.Use.Field, o, d.Reason(), tc.outcomes[i])
				}
				if d.Denied() {
					refused = append(refused, d.Text())
				}
				if d.Decision != nil && d.Decision.Outcome == policy.Warned && d.Reason() == "" {
					t.Errorf("%s: warned without a reason", d.Use.Field)
				}
			}
			// Validate refuses exactly these texts.
			out := w.Validate(context.Background(), 0, podReviewOf(t, p))
			if len(refused) == 0 != out.Response.Allowed {
				t.Fatalf("Validate allowed=%v, DecidePod refused %q", out.Response.Allowed, refused)
			}
			for _, r := range refused {
				if !strings.Contains(out.Response.Result.Message, r) {
					t.Errorf("Validate's message %q lacks DecidePod's %q", out.Response.Result.Message, r)
				}
			}
		})
	}
}

// podReviewOf is a CREATE AdmissionReview of p.
func podReviewOf(t testing.TB, p *corev1.Pod) *admissionv1.AdmissionReview {
	t.Helper()
	obj, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return &admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: AdmissionReviewAPIVersion, Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "uid-1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: p.Namespace, Name: p.Name,
			Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: obj}},
	}
}
