package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
)

func TestClassify(t *testing.T) {
	e := func(code, detail string) error { return apperr.Errorf(code, "m").WithDetail(detail) }
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"blob unknown", e(apperr.ENOTFOUND, codeBlobUnknown), 404, codeBlobUnknown},
		{"upload invalid", e(apperr.EINVALID, codeBlobUploadInvalid), 400, codeBlobUploadInvalid},
		{"upload unknown", e(apperr.ENOTFOUND, codeBlobUploadUnknown), 404, codeBlobUploadUnknown},
		{"digest invalid", e(apperr.EINVALID, codeDigestInvalid), 400, codeDigestInvalid},
		{"manifest blob unknown", e(apperr.EINVALID, codeManifestBlobUnknown), 400, codeManifestBlobUnknown},
		{"manifest invalid", e(apperr.EINVALID, codeManifestInvalid), 400, codeManifestInvalid},
		{"manifest unknown", e(apperr.ENOTFOUND, codeManifestUnknown), 404, codeManifestUnknown},
		{"name invalid", e(apperr.EINVALID, codeNameInvalid), 400, codeNameInvalid},
		{"name unknown", e(apperr.ENOTFOUND, codeNameUnknown), 404, codeNameUnknown},
		{"size invalid", e(apperr.EINVALID, codeSizeInvalid), 400, codeSizeInvalid},
		{"unauthorized", e(apperr.EUNAUTHORIZED, ""), 401, codeUnauthorized},
		{"unauthorized token scope", e(apperr.EUNAUTHORIZED, "DENIED"), 401, codeDenied},
		{"denied", e(apperr.EDENIED, ""), 403, codeDenied},
		{"method unsupported", e(apperr.EUNSUPPORTED, codeUnsupported), 405, codeUnsupported},
		{"media type unsupported", e(apperr.EUNSUPPORTED, detailMediaType), 415, codeUnsupported},
		{"too many requests", e(apperr.EUNAVAILABLE, codeTooManyRequests), 429, codeTooManyRequests},
		{"unavailable", e(apperr.EUNAVAILABLE, ""), 503, codeUnknown},
		{"manifest too large", e(apperr.ETOOLARGE, codeManifestInvalid), 413, codeManifestInvalid},
		{"body too large", e(apperr.ETOOLARGE, ""), 413, codeSizeInvalid},
		{"range", e(apperr.ERANGE, codeBlobUploadInvalid), 416, codeBlobUploadInvalid},
		{"pagination", e(apperr.EINVALID, codePaginationInvalid), 400, codePaginationInvalid},
		{"store not found without detail", e(apperr.ENOTFOUND, ""), 404, codeNameUnknown},
		{"invalid without detail", e(apperr.EINVALID, ""), 400, codeBlobUploadInvalid},
		{"conflict", e(apperr.ECONFLICT, ""), 409, codeBlobUploadInvalid},
		{"internal", e(apperr.EINTERNAL, ""), 500, codeUnknown},
		{"plain error", errors.New("disk on fire"), 500, codeUnknown},
		{"wrapped detail", apperr.Wrap(errors.New("x"), apperr.ENOTFOUND, "m").WithDetail(codeManifestUnknown), 404, codeManifestUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, code := classify(tt.err)
			if status != tt.status || code != tt.code {
				t.Errorf("classify = %d %s, want %d %s", status, code, tt.status, tt.code)
			}
		})
	}
}

func TestWriteErrorHidesInternalCauses(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	w := httptest.NewRecorder()
	w.Header().Set("Docker-Content-Digest", "sha256:x")
	writeError(w, log, apperr.Wrap(errors.New("open /secret/path: permission denied"), apperr.EINTERNAL, "cannot read blob"))
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d", w.Code)
	}
	if strings.Contains(w.Body.String(), "/secret/path") || strings.Contains(w.Body.String(), "cannot read blob") {
		t.Errorf("body leaks the cause: %s", w.Body)
	}
	if !strings.Contains(logs.String(), "/secret/path") {
		t.Errorf("cause not logged: %s", logs.String())
	}
	if w.Header().Get("Docker-Content-Digest") != "" {
		t.Error("error response kept Docker-Content-Digest")
	}
	var body errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 || body.Errors[0].Code != codeUnknown {
		t.Errorf("body = %s (%v)", w.Body, err)
	}

	w = httptest.NewRecorder()
	writeError(w, log, apperr.Errorf(apperr.EUNAVAILABLE, "busy").WithDetail(codeTooManyRequests))
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Errorf("429 answer: status %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}

	w = httptest.NewRecorder()
	limited := &apperr.Error{Code: apperr.EUNAVAILABLE, Detail: codeTooManyRequests, Message: "too many failed logins",
		RetryAfter: 89500 * time.Millisecond}
	writeError(w, log, limited)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "90" {
		t.Errorf("429 answer with a delay: status %d, Retry-After %q, want 90", w.Code, w.Header().Get("Retry-After"))
	}
}
