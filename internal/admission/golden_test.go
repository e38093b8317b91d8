package admission

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden response files under testdata/reviews")

// TestGolden sends each testdata/reviews/*.request.json to the webhook's
// handler (validate-*, mutate-* and imagereview-* to /validate, /mutate and
// /imagereview) and compares the response with the .response.json beside
// it; a mutation's JSON patch is shown decoded under "patch".
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/reviews/*.request.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no request files: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".request.json")
		t.Run(name, func(t *testing.T) {
			w, _, _ := newFixtureWebhook(t)
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			path := "/" + strings.SplitN(name, "-", 2)[0]
			req := httptest.NewRequest(http.MethodPost, path+"?timeout=5s", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			w.Handler().ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var resp map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatal(err)
			}
			out := map[string]any{"review": resp}
			if r, ok := resp["response"].(map[string]any); ok {
				if p, ok := r["patch"].(string); ok {
					var raw []byte
					if err := json.Unmarshal([]byte(`"`+p+`"`), &raw); err != nil {
						t.Fatal(err)
					}
					var patch any
					if err := json.Unmarshal(raw, &patch); err != nil {
						t.Fatalf("patch is not JSON: %v", err)
					}
					out["patch"] = patch
				}
			}
			got, _ := json.MarshalIndent(out, "", "  ")
			got = append(got, '\n')
			golden := strings.TrimSuffix(f, ".request.json") + ".response.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("response differs from %s (run go test -update after checking):\n%s", golden, got)
			}
		})
	}
}
