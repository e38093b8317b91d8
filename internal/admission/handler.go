package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
)

// Handler serves the webhook: POST /validate and /mutate (AdmissionReview
// admission.k8s.io/v1), POST /imagereview (ImageReview
// imagepolicy.k8s.io/v1alpha1) and GET /healthz. A request's deadline is
// its `timeout` query parameter (the API server sets it from the webhook's
// timeoutSeconds), else Options.DefaultTimeout. A body that is not a
// review of the path's kind is answered 400 with the problem, which the API
// server shows (and, with failurePolicy Fail, refuses the object).
func (w *Webhook) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /validate", func(rw http.ResponseWriter, r *http.Request) {
		w.serveAdmission(rw, r, w.Validate)
	})
	mux.HandleFunc("POST /mutate", func(rw http.ResponseWriter, r *http.Request) {
		w.serveAdmission(rw, r, w.Mutate)
	})
	mux.HandleFunc("POST /imagereview", func(rw http.ResponseWriter, r *http.Request) {
		body, timeout, ok := readReview(rw, r)
		if !ok {
			return
		}
		review, err := DecodeImageReview(body)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(rw, w.ReviewImages(r.Context(), timeout, review))
	})
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/plain")
		io.WriteString(rw, "ok\n")
	})
	return mux
}

func (w *Webhook) serveAdmission(rw http.ResponseWriter, r *http.Request, answer func(context.Context, time.Duration, *admissionv1.AdmissionReview) *admissionv1.AdmissionReview) {
	body, timeout, ok := readReview(rw, r)
	if !ok {
		return
	}
	review, err := DecodeAdmissionReview(body)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(rw, answer(r.Context(), timeout, review))
}

// readReview reads a JSON body of at most MaxBodyBytes and the timeout
// query parameter; on a problem it answers and returns ok false.
func readReview(rw http.ResponseWriter, r *http.Request) (body []byte, timeout time.Duration, ok bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSON(ct) {
		http.Error(rw, fmt.Sprintf("Content-Type %q is not application/json", ct), http.StatusUnsupportedMediaType)
		return nil, 0, false
	}
	if t := r.URL.Query().Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			http.Error(rw, fmt.Sprintf("timeout %q is not a positive duration", t), http.StatusBadRequest)
			return nil, 0, false
		}
		timeout = d
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		http.Error(rw, fmt.Sprintf("review body is more than %d bytes", MaxBodyBytes), http.StatusRequestEntityTooLarge)
		return nil, 0, false
	}
	if err != nil {
		http.Error(rw, "reading the review: "+err.Error(), http.StatusBadRequest)
		return nil, 0, false
	}
	return body, timeout, true
}

// isJSON reports whether a Content-Type is application/json (parameters
// such as charset allowed).
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

func writeJSON(rw http.ResponseWriter, v any) {
	rw.Header().Set("Content-Type", "application/json")
	json.NewEncoder(rw).Encode(v)
}
