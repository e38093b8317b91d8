package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/config"
	"github.com/customs-dev/customs/internal/store"
)

// alpine39Export is the repository's real Alpine v3.9 OSV export.
func alpine39Export() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "vulndata", "osv", "alpine-v3.9", "all.zip")
}

// call makes an API request as user:password ("" for anonymous) and
// returns the status and body.
func call(t *testing.T, method, url, user, password, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestVulnDBAPI updates the database through the API and reads it back:
// status, advisories and matching for users, updates for administrators.
func TestVulnDBAPI(t *testing.T) {
	addr, srv := startServer(t, func(c *config.Config) {
		c.Vulndb.Sources = config.VulnSources{{Name: "alpine-v3.9", Path: alpine39Export()}}
		c.Vulndb.UpdateInterval = 0
	})
	base := "http://" + addr + "/api/v1/vulndb"
	hash, err := srv.Auth.HashPassword("user-password")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Store.CreateUser(context.Background(), &store.User{Name: "dev", PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}

	if code, _ := call(t, "GET", base, "", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("anonymous status: %d", code)
	}
	if code, body := call(t, "POST", base+"/update", "dev", "user-password", ""); code != http.StatusForbidden || !strings.Contains(body, "administrators") {
		t.Fatalf("update by a user: %d %s", code, body)
	}
	if code, body := call(t, "POST", base+"/update", "admin", adminPassword, ""); code != http.StatusAccepted {
		t.Fatalf("update by the admin: %d %s", code, body)
	}
	var st struct {
		Revision int64 `json:"revision"`
		Sources  []struct {
			Name        string    `json:"name"`
			Configured  bool      `json:"configured"`
			LastSuccess time.Time `json:"lastSuccess"`
			Records     int       `json:"records"`
		} `json:"sources"`
		Ecosystems []struct {
			Ecosystem  string `json:"ecosystem"`
			Advisories int    `json:"advisories"`
		} `json:"ecosystems"`
		Running []json.RawMessage `json:"running"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := call(t, "GET", base, "dev", "user-password", "")
		if code != http.StatusOK {
			t.Fatalf("status: %d %s", code, body)
		}
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatal(err)
		}
		if st.Revision == 1 && len(st.Running) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the update did not finish: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(st.Sources) != 1 || !st.Sources[0].Configured || st.Sources[0].Records != 1554 || st.Sources[0].LastSuccess.IsZero() ||
		len(st.Ecosystems) != 2 || st.Ecosystems[1].Ecosystem != "Alpine:v3.9" || st.Ecosystems[1].Advisories != 1554 {
		t.Fatalf("status after the update: %+v", st)
	}

	code, body := call(t, "GET", base+"/advisories/ALPINE-CVE-2019-14697", "dev", "user-password", "")
	if code != http.StatusOK || !strings.Contains(body, `"upstream"`) || !strings.Contains(body, "CVE-2019-14697") {
		t.Fatalf("advisory: %d %s", code, body)
	}
	if code, _ := call(t, "GET", base+"/advisories/NOPE-1", "dev", "user-password", ""); code != http.StatusNotFound {
		t.Fatalf("unknown advisory: %d", code)
	}

	inv := `{"distro": {"id": "alpine", "versionID": "3.9.4"}, "packages": [{"ecosystem": "Alpine", "name": "musl", "version": "1.1.20-r4"}]}`
	code, body = call(t, "POST", base+"/match", "dev", "user-password", inv)
	var res struct {
		Revision int64 `json:"revision"`
		Findings []struct {
			AdvisoryID string   `json:"advisoryID"`
			Fixed      []string `json:"fixed"`
		} `json:"findings"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &res) != nil || res.Revision != 1 {
		t.Fatalf("match: %d %s", code, body)
	}
	found := false
	for _, f := range res.Findings {
		found = found || (f.AdvisoryID == "ALPINE-CVE-2019-14697" && len(f.Fixed) == 1 && f.Fixed[0] == "1.1.20-r5")
	}
	if !found {
		t.Fatalf("match found %+v", res.Findings)
	}
	for _, bad := range []string{"", "{", `{"packages": [{"name": "x"}]}`, `{"packages": [], "extra": 1}`, `{"packages": []} {}`} {
		if code, body := call(t, "POST", base+"/match", "dev", "user-password", bad); code != http.StatusBadRequest {
			t.Errorf("match of %q: %d %s", bad, code, body)
		}
	}
	if code, _ := call(t, "POST", base+"/match", "", "", inv); code != http.StatusUnauthorized {
		t.Errorf("anonymous match: %d", code)
	}
}
