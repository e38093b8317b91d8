package vulndb

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/store"
)

// recordSnapshot is every stored record as "source kind id hash", and the
// revision.
func recordSnapshot(t *testing.T, s *Service) ([]string, int64) {
	t.Helper()
	var out []string
	rev, err := s.st.ScanVulnRecords(context.Background(), func(r store.VulnRecord) error {
		out = append(out, r.Source+" "+r.Kind+" "+r.ID+" "+r.Hash)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, rev
}

// unchangedBy runs fn and fails t if it changed any stored record or the
// revision.
func unchangedBy(t *testing.T, s *Service, fn func()) {
	t.Helper()
	before, rev := recordSnapshot(t, s)
	fn()
	after, rev2 := recordSnapshot(t, s)
	if rev2 != rev || !slices.Equal(before, after) {
		t.Fatalf("records changed (revision %d -> %d, %d -> %d records)", rev, rev2, len(before), len(after))
	}
}

// lastError is the stored last error of the named source.
func lastError(t *testing.T, s *Service, name string) string {
	t.Helper()
	st, err := s.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range st.Sources {
		if src.Name == name {
			return src.LastError
		}
	}
	t.Fatalf("no source %q in the status", name)
	return ""
}

// TestHostileSources feeds sources that are broken as a whole: each fails
// with an error naming it, and the source's previous data stays.
func TestHostileSources(t *testing.T) {
	dir := t.TempDir()
	good := vulndata(t, "alpine-v3.3")
	zipBytes, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	s := newService(t, Options{MaxRecordSize: 64 << 10, MaxSourceSize: 8 << 20})
	importOK(t, s, Source{Name: "alpine", Location: good})

	// A zip whose middle was overwritten: entries fail their CRC or inflate.
	corrupt := slices.Clone(zipBytes)
	for i := len(corrupt) / 3; i < len(corrupt)/3+4096; i++ {
		corrupt[i] ^= 0x5a
	}
	writeFiles(t, dir, map[string]string{
		"corrupt/all.zip":   string(corrupt),
		"truncated/all.zip": string(zipBytes[:len(zipBytes)/2]),
		"notzip/all.zip":    "this is not a zip archive",
	})
	for _, tc := range []struct {
		name, loc string
		mentions  []string
	}{
		{"corrupted zip", filepath.Join(dir, "corrupt", "all.zip"), []string{"corrupt/all.zip", "corrupted zip archive: entry"}},
		{"truncated zip", filepath.Join(dir, "truncated", "all.zip"), []string{"truncated/all.zip", "not a readable zip archive"}},
		{"not a zip", filepath.Join(dir, "notzip", "all.zip"), []string{"notzip/all.zip", "not a readable zip archive"}},
		{"missing file", filepath.Join(dir, "nothing.zip"), []string{"nothing.zip", "no such file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unchangedBy(t, s, func() {
				r := importFails(t, s, Source{Name: "alpine", Location: tc.loc}, tc.mentions...)
				if r.Source != "alpine" {
					t.Errorf("failure reported for source %q", r.Source)
				}
			})
			if e := lastError(t, s, "alpine"); !strings.Contains(e, tc.mentions[0]) {
				t.Errorf("the source's last error %q does not name %s", e, tc.mentions[0])
			}
			// The previous data still matches.
			if got := matchIDs(t, s, &inventory.Distro{ID: "alpine", VersionID: "3.3.1"},
				inventory.Package{Ecosystem: "Alpine", Name: "musl", Version: "1.1.12-r0"}); len(got) == 0 {
				t.Error("Alpine 3.3 musl matches nothing after a failed import")
			}
		})
	}

	t.Run("unreadable directory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root reads every directory")
		}
		locked := filepath.Join(dir, "locked")
		writeFiles(t, locked, map[string]string{"sub/GO-1.json": goRecord("GO-1", "example.com/a", "1.0.0")})
		if err := os.Chmod(filepath.Join(locked, "sub"), 0); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(filepath.Join(locked, "sub"), 0o755) })
		unchangedBy(t, s, func() { importFails(t, s, Source{Name: "alpine", Location: locked}, "sub", "permission denied") })
	})

	t.Run("zip bomb", func(t *testing.T) {
		// One entry inflating to 100 MiB of zeros from ~100 KiB: over the
		// record limit it is skipped, read no further than the limit.
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.Create("BOMB-1.json")
		chunk := make([]byte, 1<<20)
		for range 100 {
			w.Write(chunk)
		}
		w, _ = zw.Create("GO-1.json")
		w.Write([]byte(goRecord("GO-1", "example.com/a", "1.0.0")))
		zw.Close()
		p := filepath.Join(dir, "bomb.zip")
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		r := importOK(t, s, Source{Name: "bomb", Location: p})[0]
		if r.Added != 1 || len(r.Skipped) != 1 {
			t.Fatalf("bomb import = %+v, skipped %v", r, r.Skipped)
		}
		skippedMention(t, r, "bomb: BOMB-1.json", "larger than 65536 bytes (vulndb.maxRecordSize)")

		// Many entries under the record limit that add up past the
		// source's total fail the source.
		many := map[string]string{}
		big := strings.Repeat(" ", 60<<10)
		for i := range 200 {
			many[fmt.Sprintf("GO-%03d.json", i)] = goRecord(fmt.Sprintf("GO-%03d", i), "example.com/a", "1.0.0") + big
		}
		p2 := filepath.Join(dir, "total.zip")
		if err := os.WriteFile(p2, zipOf(t, many), 0o644); err != nil {
			t.Fatal(err)
		}
		unchangedBy(t, s, func() { importFails(t, s, Source{Name: "bomb", Location: p2}, "total.zip", "vulndb.maxSourceSize") })
	})
}

// TestBadRecords imports sources with bad records among good ones: each bad
// one is skipped with an error naming it, the rest imports.
func TestBadRecords(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"GO-GOOD.json": goRecord("GO-GOOD", "example.com/good", "1.0.0"),
		"bad-range.json": `{"id": "GO-BADRANGE", "modified": "2024-01-01T00:00:00Z", "affected": [{"package": {"ecosystem": "Go", "name": "example.com/x"},
			"ranges": [{"type": "SEMVER", "events": [{"fixed": "1.0.0"}]}]}]}`,
		"bad-version.json": `{"id": "GO-BADVERSION", "modified": "2024-01-01T00:00:00Z", "affected": [{"package": {"ecosystem": "Go", "name": "example.com/x"},
			"ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "one.two"}]}]}]}`,
		"unknown-eco.json": `{"id": "XX-1", "modified": "2024-01-01T00:00:00Z", "affected": [{"package": {"ecosystem": "Nonexistent", "name": "x"},
			"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}`,
		"half-known.json": `{"id": "MIX-1", "modified": "2024-01-01T00:00:00Z", "affected": [
			{"package": {"ecosystem": "Nonexistent", "name": "x"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]},
			{"package": {"ecosystem": "Go", "name": "example.com/mix"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "2.0.0"}]}]}]}`,
		"not-osv.json":     `{"name": "package.json", "version": "1.0.0"}`,
		"broken.json":      `{"id": "GO-BROKEN", "modified": `,
		"trailing.json":    goRecord("GO-TRAIL", "example.com/t", "1.0.0") + " garbage",
		"array.json":       `[1, 2, 3]`,
		"dup/GO-GOOD.json": goRecord("GO-GOOD", "example.com/other", "9.0.0"),
		"bad.yaml":         "id: [unclosed",
	})
	s := newService(t, Options{})
	r := importOK(t, s, Source{Name: "mixed", Location: dir})[0]
	if r.Added != 2 {
		t.Errorf("added %d records, want GO-GOOD and MIX-1", r.Added)
	}
	for _, want := range [][]string{
		{"mixed: bad-range.json: GO-BADRANGE", "affected[0].ranges[0] has no introduced event"},
		{"mixed: bad-version.json: GO-BADVERSION", "events[1].fixed", `"one.two"`},
		{"mixed: unknown-eco.json: XX-1", "Nonexistent"},
		{"mixed: half-known.json: MIX-1", "Nonexistent", "entry ignored"},
		{"mixed: not-osv.json", "not an OSV record (no id)"},
		{"mixed: broken.json", "not an OSV record"},
		{"mixed: trailing.json: GO-TRAIL", "not valid JSON"},
		{"mixed: array.json", "not an OSV record"},
		{"mixed: dup/GO-GOOD.json", "record GO-GOOD is also in GO-GOOD.json"},
		{"mixed: unknown-eco.json: XX-1", "no affected entry is left to match: record left out"},
		{"mixed: bad.yaml", "not a YAML OSV record"},
	} {
		skippedMention(t, r, want...)
	}
	if len(r.Skipped) != 11 {
		t.Errorf("%d problems reported, want 11: %v", len(r.Skipped), r.Skipped)
	}
	if got := matchIDs(t, s, nil, inventory.Package{Ecosystem: "Go", Name: "example.com/good", Version: "0.1.0"},
		inventory.Package{Ecosystem: "Go", Name: "example.com/mix", Version: "1.0.0"}); !slices.Equal(got, []string{"GO-GOOD", "MIX-1"}) {
		t.Errorf("matched %v", got)
	}

	// A source with nothing but bad records fails as a whole, rather than
	// emptying the source.
	only := t.TempDir()
	writeFiles(t, only, map[string]string{"x.json": `{"not": "osv"}`})
	unchangedBy(t, s, func() {
		importFails(t, s, Source{Name: "mixed", Location: only}, "no readable record", "not an OSV record")
	})
}

// TestURLSource imports over HTTP with conditional requests, and survives
// servers answering errors and garbage.
func TestURLSource(t *testing.T) {
	export, err := os.ReadFile(vulndata(t, "alpine-v3.3"))
	if err != nil {
		t.Fatal(err)
	}
	lastMod := time.Date(2020, 6, 8, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat)
	var mode atomic.Value
	mode.Store("ok")
	var requests, conditional atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		switch mode.Load() {
		case "500":
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		case "garbage":
			w.Write([]byte("<html>this is a login page, not a zip</html>"))
			return
		case "badzip":
			w.Write(append([]byte("PK\x03\x04"), bytes.Repeat([]byte{0xff}, 1000)...))
			return
		case "lastmod":
			if r.Header.Get("If-Modified-Since") == lastMod {
				conditional.Add(1)
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.Header().Set("Last-Modified", lastMod)
			w.Write(export)
			return
		}
		if r.URL.Path == "/GO-1.yaml" {
			w.Write([]byte("id: GO-1\nmodified: 2024-01-02T03:04:05Z\naffected:\n  - package: {ecosystem: Go, name: example.com/y}\n    ranges: [{type: SEMVER, events: [{introduced: '0'}, {fixed: 1.0.0}]}]\n"))
			return
		}
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			conditional.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write(export)
	}))
	defer srv.Close()
	s := newService(t, Options{HTTPClient: srv.Client()})
	src := Source{Name: "mirror", Location: srv.URL + "/alpine/v3.3/all.zip"}
	r := importOK(t, s, src)[0]
	if r.Added != 453 || r.Unchanged {
		t.Fatalf("first download: %+v", r)
	}
	st, _ := s.Status(context.Background())
	if st.Sources[0].ETag != `"v1"` {
		t.Fatalf("stored ETag = %q", st.Sources[0].ETag)
	}
	r = importOK(t, s, src)[0]
	if !r.Unchanged || r.Changed() || r.Read != 0 || conditional.Load() != 1 || r.Revision != 1 {
		t.Fatalf("second download (If-None-Match): %+v, %d conditional answers", r, conditional.Load())
	}
	for _, tc := range []struct{ mode, mention string }{
		{"500", "500 Internal Server Error"},
		{"garbage", "not an OSV record"},
		{"badzip", "not a readable zip archive"},
	} {
		mode.Store(tc.mode)
		unchangedBy(t, s, func() { importFails(t, s, src, srv.URL, tc.mention) })
		if e := lastError(t, s, "mirror"); !strings.Contains(e, tc.mention) {
			t.Errorf("%s: last error %q", tc.mode, e)
		}
	}
	// After failures the validators are still those of the stored data.
	mode.Store("ok")
	if r := importOK(t, s, src)[0]; !r.Unchanged {
		t.Fatalf("download after failures: %+v", r)
	}
	if e := lastError(t, s, "mirror"); e != "" {
		t.Fatalf("last error after a success: %q", e)
	}
	// Last-Modified / If-Modified-Since.
	mode.Store("lastmod")
	lm := Source{Name: "lastmod", Location: srv.URL + "/lm/all.zip"}
	importOK(t, s, lm)
	if r := importOK(t, s, lm)[0]; !r.Unchanged || conditional.Load() != 3 {
		t.Fatalf("If-Modified-Since: %+v, %d conditional answers", r, conditional.Load())
	}
	// A single record file.
	mode.Store("ok")
	if r := importOK(t, s, Source{Name: "one", Location: srv.URL + "/GO-1.yaml"})[0]; r.Added != 1 {
		t.Fatalf("single record URL: %+v %v", r, r.Skipped)
	}
}

// TestProgress watches an import while its download is under way.
func TestProgress(t *testing.T) {
	export, err := os.ReadFile(vulndata(t, "alpine-v3.3"))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(export[:1000])
		w.(http.Flusher).Flush()
		<-release
		w.Write(export[1000:])
	}))
	defer srv.Close()
	s := newService(t, Options{HTTPClient: srv.Client()})
	done := make(chan []Result)
	go func() {
		rs, _ := s.Import(context.Background(), Source{Name: "slow", Location: srv.URL + "/all.zip"})
		done <- rs
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if run := s.Running(); len(run) == 1 && run[0].Phase == "downloading" && run[0].Bytes == 1000 {
			if !s.Busy() {
				t.Error("Busy is false during an import")
			}
			st, err := s.Status(context.Background())
			if err != nil || len(st.Running) != 1 || st.Running[0].Source != "slow" {
				t.Errorf("status during the import: %+v, %v", st, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no download progress; running: %+v", s.Running())
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	if rs := <-done; len(rs) != 1 || rs[0].Added != 453 {
		t.Fatalf("import = %+v", rs)
	}
	if run := s.Running(); len(run) != 0 || s.Busy() {
		t.Fatalf("running after the import: %+v", run)
	}
}
