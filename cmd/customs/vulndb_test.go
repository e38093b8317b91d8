package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/apperr"
)

// TestVulndbCLI imports the real Alpine v3.9 export with the CLI into a
// fresh data directory and reads the counts back with vulndb status; then
// a corrupted copy fails without changing them, and overrides are set,
// listed and deleted.
func TestVulndbCLI(t *testing.T) {
	dataDir := t.TempDir()
	export := filepath.Join("..", "..", "testdata", "vulndata", "osv", "alpine-v3.9", "all.zip")
	abs, err := filepath.Abs(export)
	if err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "", "vulndb", "import", "--data-dir", dataDir, export)
	if err != nil {
		t.Fatal(err)
	}
	want := abs + ": 1558 records read, 1554 added, 0 updated, 0 removed, 4 skipped; revision 1"
	if !strings.HasPrefix(out, want) {
		t.Fatalf("import printed %q, want it to start with %q", out, want)
	}

	out, err = run(t, "", "vulndb", "import", "--data-dir", dataDir, export)
	if err != nil || !strings.HasPrefix(out, abs+": unchanged since its last import") {
		t.Fatalf("second import: %v %q", err, out)
	}
	out, err = run(t, "", "vulndb", "import", "--force", "--data-dir", dataDir, export)
	if err != nil || !strings.HasPrefix(out, abs+": 1558 records read, 0 added, 0 updated, 0 removed, 4 skipped; revision 1") {
		t.Fatalf("forced import: %v %q", err, out)
	}

	out, err = run(t, "", "vulndb", "status", "--data-dir", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"revision 1, last change ", "1554 advisories, 0 CVE ratings, 0 overrides", abs + " (not configured)  1554"} {
		if !strings.Contains(out, line) {
			t.Errorf("status does not say %q:\n%s", line, out)
		}
	}
	for _, re := range []string{`(?m)^Alpine +1554$`, `(?m)^ +Alpine:v3\.9 +1554$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("status lacks a line matching %s:\n%s", re, out)
		}
	}
	out, err = run(t, "", "vulndb", "status", "--json", "--data-dir", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Revision   int64 `json:"revision"`
		Advisories int   `json:"advisories"`
		Ecosystems []struct {
			Ecosystem  string `json:"ecosystem"`
			Base       string `json:"base"`
			Release    string `json:"release"`
			Advisories int    `json:"advisories"`
		} `json:"ecosystems"`
		Sources []struct {
			Name    string `json:"name"`
			Records int    `json:"records"`
		} `json:"sources"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if st.Revision != 1 || st.Advisories != 1554 || len(st.Ecosystems) != 2 ||
		st.Ecosystems[0].Ecosystem != "Alpine" || st.Ecosystems[0].Advisories != 1554 ||
		st.Ecosystems[1].Ecosystem != "Alpine:v3.9" || st.Ecosystems[1].Release != "v3.9" || st.Ecosystems[1].Advisories != 1554 ||
		len(st.Sources) != 1 || st.Sources[0].Records != 1554 {
		t.Fatalf("status --json = %+v", st)
	}

	// The same source, corrupted: the import fails, naming the archive,
	// and the counts stay.
	b, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 2; i < len(b)/2+2048; i++ {
		b[i] ^= 0xff
	}
	bad := filepath.Join(t.TempDir(), "all.zip")
	if err := os.WriteFile(bad, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "", "vulndb", "import", "--data-dir", dataDir, "--name", abs, bad)
	if err == nil || exitCode(err) != 1 || !strings.Contains(out, "FAILED, previous data kept") || !strings.Contains(out, "corrupted zip archive") {
		t.Fatalf("import of a corrupted zip: %v\n%s", err, out)
	}
	out, _ = run(t, "", "vulndb", "status", "--data-dir", dataDir)
	if !strings.Contains(out, "1554 advisories") || !strings.Contains(out, "corrupted zip archive") {
		t.Fatalf("status after the failure:\n%s", out)
	}

	// Overrides.
	out, err = run(t, "", "vulndb", "override", "set", "CVE-2019-14697", "--severity", "moderate", "--reason", "not exposed", "--by", "alice", "--data-dir", dataDir)
	if err != nil || !strings.Contains(out, "CVE-2019-14697 is now medium (set by alice); revision 2") {
		t.Fatalf("override set: %v %q", err, out)
	}
	out, err = run(t, "", "vulndb", "override", "list", "--data-dir", dataDir)
	if err != nil || !strings.Contains(out, "CVE-2019-14697") || !strings.Contains(out, "not exposed") || !strings.Contains(out, "alice") {
		t.Fatalf("override list: %v\n%s", err, out)
	}
	if _, err := run(t, "", "vulndb", "override", "set", "CVE-1", "--severity", "dire", "--data-dir", dataDir); apperr.Code(err) != apperr.EINVALID {
		t.Fatalf("override with a bad severity: %v", err)
	}
	if out, err := run(t, "", "vulndb", "override", "delete", "CVE-2019-14697", "--data-dir", dataDir); err != nil || !strings.Contains(out, "revision 3") {
		t.Fatalf("override delete: %v %q", err, out)
	}
	if _, err := run(t, "", "vulndb", "override", "delete", "CVE-2019-14697", "--data-dir", dataDir); apperr.Code(err) != apperr.ENOTFOUND {
		t.Fatalf("deleting a missing override: %v", err)
	}
	if _, err := run(t, "", "vulndb", "update", "--data-dir", dataDir); apperr.Code(err) != apperr.EINVALID {
		t.Fatalf("update without configured sources: %v", err)
	}
}
