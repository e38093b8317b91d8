package kubeaudit

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/customs-dev/customs/internal/apperr"
)

func pod(ns, name string, phase corev1.PodPhase, images ...string) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Status: corev1.PodStatus{Phase: phase}}
	for i, img := range images {
		c := corev1.Container{Name: "c" + string(rune('0'+i)), Image: img}
		if i == 0 && len(images) > 2 {
			p.Spec.InitContainers = append(p.Spec.InitContainers, c)
			continue
		}
		p.Spec.Containers = append(p.Spec.Containers, c)
	}
	return p
}

// reviewerFunc answers by image, counting the calls.
type reviewerFunc struct {
	calls  int
	answer func(*corev1.Pod) *admissionv1.AdmissionResponse
}

func (r *reviewerFunc) Review(_ context.Context, p *corev1.Pod) (*admissionv1.AdmissionResponse, error) {
	r.calls++
	return r.answer(p), nil
}

// TestAudit: each namespace and image is decided once; refused and warned
// containers are listed in order with the answer's message; init
// containers are checked too.
func TestAudit(t *testing.T) {
	pods := []corev1.Pod{
		pod("prod", "web-2", corev1.PodRunning, "bad:1", "good:1"),
		pod("prod", "web-1", corev1.PodRunning, "bad:1"),
		pod("dev", "tool", corev1.PodPending, "bad:1", "warn:1", "good:1"),
	}
	r := &reviewerFunc{answer: func(p *corev1.Pod) *admissionv1.AdmissionResponse {
		if len(p.Spec.Containers) != 1 || p.Namespace == "" || p.Name == "" {
			t.Fatalf("review of %+v: want one container of a named pod", p)
		}
		switch img := p.Spec.Containers[0].Image; {
		case img == "bad:1" && p.Namespace == "prod":
			return &admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{Message: "bad:1 is refused"}}
		case img == "warn:1":
			return &admissionv1.AdmissionResponse{Allowed: true, Warnings: []string{"warn:1 is old"}}
		}
		return &admissionv1.AdmissionResponse{Allowed: true}
	}}
	rep, err := Audit(context.Background(), pods, r)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pods != 3 || rep.Containers != 6 || rep.Images != 5 || r.calls != 5 {
		t.Fatalf("counts: %d pods, %d containers, %d images, %d reviews", rep.Pods, rep.Containers, rep.Images, r.calls)
	}
	var refused []string
	for _, f := range rep.Refused {
		refused = append(refused, f.Namespace+"/"+f.Pod+"/"+f.Container.Container+" "+f.Message)
	}
	if got := strings.Join(refused, ", "); got != "prod/web-1/c0 bad:1 is refused, prod/web-2/c0 bad:1 is refused" {
		t.Fatalf("refused: %s", got)
	}
	if len(rep.Warned) != 1 || rep.Warned[0].Image != "warn:1" || rep.Warned[0].Kind != "container" || rep.Warned[0].Message != "warn:1 is old" {
		t.Fatalf("warned: %+v", rep.Warned)
	}
}

// TestWebhookReviewer checks the dry-run AdmissionReview sent to /validate
// and the handling of bad answers.
func TestWebhookReviewer(t *testing.T) {
	var answer func(req *admissionv1.AdmissionReview) string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/validate" || r.Method != http.MethodPost {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var req admissionv1.AdmissionReview
		if err := json.Unmarshal(b, &req); err != nil {
			t.Errorf("request: %v", err)
		}
		io.WriteString(w, answer(&req))
	}))
	defer srv.Close()
	rv := &WebhookReviewer{URL: srv.URL, Client: srv.Client()}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "web"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1"}}}}

	answer = func(req *admissionv1.AdmissionReview) string {
		q := req.Request
		var got corev1.Pod
		if err := json.Unmarshal(q.Object.Raw, &got); err != nil || got.Spec.Containers[0].Image != "nginx:1" ||
			q.Operation != admissionv1.Create || q.DryRun == nil || !*q.DryRun || q.Namespace != "prod" || q.Resource.Resource != "pods" {
			t.Errorf("review request: %+v (%v)", q, err)
		}
		b, _ := json.Marshal(admissionv1.AdmissionReview{TypeMeta: req.TypeMeta,
			Response: &admissionv1.AdmissionResponse{UID: q.UID, Allowed: false, Result: &metav1.Status{Message: "nope"}}})
		return string(b)
	}
	resp, err := rv.Review(context.Background(), p)
	if err != nil || resp.Allowed || resp.Result.Message != "nope" {
		t.Fatalf("Review: %+v, %v", resp, err)
	}

	for _, tt := range []struct {
		name, body, want string
	}{
		{"not json", "<html>", "not an AdmissionReview"},
		{"other uid", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"x","allowed":true}}`, "no response for request"},
		{"v1beta1", `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}`, "want admission.k8s.io/v1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			answer = func(*admissionv1.AdmissionReview) string { return tt.body }
			_, err := rv.Review(context.Background(), p)
			if err == nil || !strings.Contains(err.Error(), tt.want) || apperr.Code(err) != apperr.EINVALID {
				t.Fatalf("Review: %v; want %q", err, tt.want)
			}
		})
	}
}

// FuzzDecodeResponse: any bytes from the listener give a response for the
// request or an error, never a panic.
func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u1","allowed":false,"status":{"message":"m"}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := decodeResponse(b, types.UID("u1"))
		if err == nil && (resp == nil || resp.UID != "u1") {
			t.Fatalf("accepted %q as %+v", b, resp)
		}
	})
}
