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

	"github.com/customs-dev/customs/internal/apperr"
)

// TestUnavailableSaysWhat: a 503 carries the error's caller-safe message
// (what is down, try again), while its cause only goes to the log.
func TestUnavailableSaysWhat(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	w := httptest.NewRecorder()
	cause := errors.New("dial tcp 10.1.2.3:389: connection refused")
	writeError(w, log, apperr.Wrap(cause, apperr.EUNAVAILABLE, "the LDAP directory cannot check credentials now; try again later"))
	var body errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 {
		t.Fatalf("body = %s (%v)", w.Body, err)
	}
	if w.Code != http.StatusServiceUnavailable || body.Errors[0].Message != "the LDAP directory cannot check credentials now; try again later" {
		t.Errorf("answer = %d %+v", w.Code, body.Errors[0])
	}
	if strings.Contains(w.Body.String(), "10.1.2.3") || !strings.Contains(logs.String(), "10.1.2.3") {
		t.Errorf("the cause must be logged, not answered: body %s, log %s", w.Body, logs.String())
	}
}
