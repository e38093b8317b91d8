package admission

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
)

// seedReviews adds the golden request files of one door to f's corpus.
func seedReviews(f *testing.F, prefix string) {
	files, _ := filepath.Glob("testdata/reviews/" + prefix + "*.request.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","object":null}}`))
	f.Add([]byte(`{"apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"ImageReview","spec":{"containers":[{"image":"A/B"}],"annotations":{"x.image-policy.k8s.io/y":"1"}}}`))
	f.Add([]byte(`[]`))
}

// FuzzAdmissionReview: any body either fails to decode with an error or
// is answered (validated and mutated) without panicking, with the
// request's uid and, when refused, a message.
func FuzzAdmissionReview(f *testing.F) {
	seedReviews(f, "validate-")
	seedReviews(f, "mutate-")
	w, _, _ := newFixtureWebhook(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		review, err := DecodeAdmissionReview(body)
		if err != nil {
			if review != nil || !strings.HasPrefix(err.Error(), "AdmissionReview: ") {
				t.Fatalf("error %v with review %v", err, review)
			}
			return
		}
		for _, answer := range []func() *admissionv1.AdmissionReview{
			func() *admissionv1.AdmissionReview { return w.Validate(context.Background(), 0, review) },
			func() *admissionv1.AdmissionReview { return w.Mutate(context.Background(), 0, review) },
		} {
			out := answer()
			if out.Response == nil || out.Response.UID != review.Request.UID {
				t.Fatalf("response %+v does not answer uid %q", out.Response, review.Request.UID)
			}
			if !out.Response.Allowed && (out.Response.Result == nil || out.Response.Result.Message == "") {
				t.Fatalf("refused without a message: %+v", out.Response)
			}
		}
	})
}

// FuzzImageReview: any body either fails to decode with an error or gets
// an answer; a refusal has a reason.
func FuzzImageReview(f *testing.F) {
	seedReviews(f, "imagereview-")
	w, _, _ := newFixtureWebhook(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		review, err := DecodeImageReview(body)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "ImageReview: ") {
				t.Fatalf("error %v", err)
			}
			return
		}
		out := w.ReviewImages(context.Background(), 0, review)
		if !out.Status.Allowed && out.Status.Reason == "" {
			t.Fatalf("refused without a reason: %+v", out.Status)
		}
	})
}
