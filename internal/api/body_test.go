package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestRequestBodyLimits checks how a JSON body the API cannot take is
// refused: one over the 1 MiB limit with 413 too_large, an empty or
// malformed one with 400 invalid, each with a message saying which.
func TestRequestBodyLimits(t *testing.T) {
	e := newAPIEnv(t, nil)
	huge := `{"name":"` + strings.Repeat("a", 1<<20) + `"}`
	for _, tc := range []struct {
		name, body string
		status     int
		code, msg  string
	}{
		{"over the limit", huge, http.StatusRequestEntityTooLarge, "too_large", "larger than 1048576 bytes"},
		{"empty", "", http.StatusBadRequest, "invalid", "request body is empty"},
		{"not JSON", "{name:", http.StatusBadRequest, "invalid", "not valid JSON"},
		{"unknown field", `{"name":"x","colour":"red"}`, http.StatusBadRequest, "invalid", "colour"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, e.url+"/api/v1/projects", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.SetBasicAuth("admin", adminPW)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error struct{ Code, Message string }
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("decoding the error body: %v", err)
			}
			if resp.StatusCode != tc.status || body.Error.Code != tc.code || !strings.Contains(body.Error.Message, tc.msg) {
				t.Errorf("POST /api/v1/projects (%s): %d %s %q, want %d %s containing %q",
					tc.name, resp.StatusCode, body.Error.Code, body.Error.Message, tc.status, tc.code, tc.msg)
			}
		})
	}
}
