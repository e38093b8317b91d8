package registry

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
)

// OCI error codes (distribution-spec "Error Codes"), used as apperr Detail.
const (
	codeBlobUnknown         = "BLOB_UNKNOWN"
	codeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	codeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	codeDigestInvalid       = "DIGEST_INVALID"
	codeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	codeManifestInvalid     = "MANIFEST_INVALID"
	codeManifestUnknown     = "MANIFEST_UNKNOWN"
	codeNameInvalid         = "NAME_INVALID"
	codeNameUnknown         = "NAME_UNKNOWN"
	codeSizeInvalid         = "SIZE_INVALID"
	codeUnauthorized        = "UNAUTHORIZED"
	codeDenied              = "DENIED"
	codeUnsupported         = "UNSUPPORTED"
	codeTooManyRequests     = "TOOMANYREQUESTS"
	// Codes outside the spec's list, for responses it leaves open.
	codePaginationInvalid = "PAGINATION_NUMBER_INVALID" // distribution's code for a bad n
	codeNotFound          = "NOT_FOUND"                 // a path that is no endpoint
	codeUnknown           = "UNKNOWN"                   // 5xx
	// detailMediaType refines UNSUPPORTED into 415 Unsupported Media Type.
	detailMediaType = "UNSUPPORTED_MEDIA_TYPE"
)

// ociStatus is the HTTP status of each OCI code when the apperr code does
// not decide it.
var ociStatus = map[string]int{
	codeBlobUnknown:         http.StatusNotFound,
	codeBlobUploadInvalid:   http.StatusBadRequest,
	codeBlobUploadUnknown:   http.StatusNotFound,
	codeDigestInvalid:       http.StatusBadRequest,
	codeManifestBlobUnknown: http.StatusBadRequest,
	codeManifestInvalid:     http.StatusBadRequest,
	codeManifestUnknown:     http.StatusNotFound,
	codeNameInvalid:         http.StatusBadRequest,
	codeNameUnknown:         http.StatusNotFound,
	codeSizeInvalid:         http.StatusBadRequest,
	codeUnauthorized:        http.StatusUnauthorized,
	codeDenied:              http.StatusForbidden,
	codeUnsupported:         http.StatusMethodNotAllowed,
	codeTooManyRequests:     http.StatusTooManyRequests,
	codePaginationInvalid:   http.StatusBadRequest,
	codeNotFound:            http.StatusNotFound,
	detailMediaType:         http.StatusUnsupportedMediaType,
}

// errorBody is the spec's JSON error document.
type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// classify maps an error to the HTTP status and OCI code of its response.
// It is the one place where application errors become protocol errors.
func classify(err error) (status int, code string) {
	detail := apperr.Detail(err)
	switch apperr.Code(err) {
	case apperr.EUNAUTHORIZED:
		if detail == codeDenied {
			// An authenticated client whose token lacks the scope: 401, so
			// that it may fetch a token for the challenged scope, but with
			// the DENIED code, which clients show as "denied: requested
			// access to the resource is denied".
			return http.StatusUnauthorized, codeDenied
		}
		return http.StatusUnauthorized, codeUnauthorized
	case apperr.EDENIED:
		return http.StatusForbidden, codeDenied
	case apperr.ETOOLARGE:
		return http.StatusRequestEntityTooLarge, orDefault(detail, codeSizeInvalid)
	case apperr.ERANGE:
		return http.StatusRequestedRangeNotSatisfiable, orDefault(detail, codeBlobUploadInvalid)
	case apperr.EUNSUPPORTED:
		if detail == detailMediaType {
			return http.StatusUnsupportedMediaType, codeUnsupported
		}
		return http.StatusMethodNotAllowed, codeUnsupported
	case apperr.EUNAVAILABLE:
		if detail == codeTooManyRequests {
			return http.StatusTooManyRequests, codeTooManyRequests
		}
		return http.StatusServiceUnavailable, codeUnknown
	case apperr.ENOTFOUND:
		if s, ok := ociStatus[detail]; ok {
			return s, detail
		}
		return http.StatusNotFound, codeNameUnknown
	case apperr.EINVALID:
		if s, ok := ociStatus[detail]; ok {
			return s, detail
		}
		return http.StatusBadRequest, codeBlobUploadInvalid
	case apperr.ECONFLICT:
		if s, ok := ociStatus[detail]; ok {
			return s, detail
		}
		return http.StatusConflict, codeBlobUploadInvalid
	}
	return http.StatusInternalServerError, codeUnknown
}

func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// writeError answers a request with err as the spec's JSON error body.
// Internal errors are logged with the cause and answered generically;
// an unavailable dependency (503: the database, an LDAP directory) is
// logged and answered with its caller-safe message, which tells the client
// what is down and to retry. Headers already set on w (Location, Range,
// WWW-Authenticate) are kept.
func writeError(w http.ResponseWriter, log *slog.Logger, err error) {
	status, code := classify(err)
	msg := apperr.Message(err)
	if status >= 500 {
		log.Error("registry request failed", "err", err)
		if status != http.StatusServiceUnavailable {
			msg = "internal error"
		}
	} else {
		log.Debug("registry request refused", "status", status, "code", code, "err", err)
	}
	if status == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(err)))
	}
	body, _ := json.Marshal(errorBody{Errors: []errorEntry{{Code: code, Message: msg}}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Del("Docker-Content-Digest")
	h.Del("Etag")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// retrySeconds is err's apperr.RetryAfter in whole seconds, rounded up, and
// at least 1.
func retrySeconds(err error) int {
	d := apperr.RetryAfter(err)
	return max(1, int((d+time.Second-1)/time.Second))
}
