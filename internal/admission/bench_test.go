package admission

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

// BenchmarkValidateWarm measures a validating review answered from warm
// caches (resolution and decision), through the HTTP handler: decoding the
// AdmissionReview and the Pod, the environment, the decision and the
// response. The review is seed 000's production Pod from customs'
// registry (allowed) or gcr.io (refused: no matching image policy).
func BenchmarkValidateWarm(b *testing.B) {
	for _, tc := range []struct{ name, file string }{
		{"allowed", "testdata/reviews/validate-pod-production-clean.request.json"},
		{"denied", "testdata/reviews/validate-pod-production-no-matching-policy.request.json"},
		{"deployment-2-images", "testdata/reviews/validate-deployment-production-denied.request.json"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			w, _, _ := newFixtureWebhook(b)
			w.opts.Resolver = NewCachingResolver(w.opts.Resolver, time.Hour, time.Hour, nil)
			body, err := os.ReadFile(tc.file)
			if err != nil {
				b.Fatal(err)
			}
			h := w.Handler()
			serve := func() *httptest.ResponseRecorder {
				req := httptest.NewRequest(http.MethodPost, "/validate?timeout=5s", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				return rec
			}
			if rec := serve(); rec.Code != http.StatusOK {
				b.Fatalf("status %d", rec.Code)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if rec := serve(); rec.Code != http.StatusOK {
						b.Errorf("status %d", rec.Code)
					}
				}
			})
		})
	}
}

// BenchmarkImageReviewWarm measures a warm ImageReview (seed 002's Rego
// policy) without HTTP.
func BenchmarkImageReviewWarm(b *testing.B) {
	w, _, _ := newFixtureWebhook(b)
	body, _ := os.ReadFile("testdata/reviews/imagereview-denied-latest.request.json")
	review, err := DecodeImageReview(body)
	if err != nil {
		b.Fatal(err)
	}
	w.ReviewImages(context.Background(), 0, review)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out := w.ReviewImages(context.Background(), 0, review)
		if out.Status.Allowed {
			b.Fatal("allowed")
		}
	}
}
