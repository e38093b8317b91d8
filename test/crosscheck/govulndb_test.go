package crosscheck_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/vulndb/osv"
	"github.com/customs-dev/customs/test/crosscheck"
)

func record(t *testing.T, js string) crosscheck.Record {
	t.Helper()
	v, err := osv.Parse("rec.json", []byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return crosscheck.Record{Name: v.ID + ".json", Raw: []byte(js), V: v}
}

func readJSON(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestWriteGoVulnDB checks the index documents against fixes worked out by
// hand from x/vuln's rules (NonSupersededFix per affected entry).
func TestWriteGoVulnDB(t *testing.T) {
	recs := []crosscheck.Record{
		// A fix re-opened by a later introduction: no fix.
		record(t, `{"id":"GO-2000-0001","modified":"2024-05-01T00:00:00Z","aliases":["CVE-2000-1"],
			"affected":[{"package":{"ecosystem":"Go","name":"example.com/a"},
			"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.0"},{"introduced":"1.5.0"}]}]}]}`),
		// Two stdlib entries: the greater fix (1.21.5) wins; modified is the
		// zero time, so the index takes published.
		record(t, `{"id":"GO-2000-0002","modified":"0001-01-01T00:00:00Z","published":"2023-12-05T00:00:00Z",
			"affected":[
			{"package":{"ecosystem":"Go","name":"stdlib"},
			 "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.20.11"},{"introduced":"1.21.0-0"},{"fixed":"1.21.4"}]}]},
			{"package":{"ecosystem":"Go","name":"stdlib"},
			 "ranges":[{"type":"SEMVER","events":[{"introduced":"1.20.11"},{"fixed":"1.20.12"},{"introduced":"1.21.4"},{"fixed":"1.21.5"}]}]},
			{"package":{"ecosystem":"Go","name":"example.com/a"},
			 "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"0.9.0"}]}]}]}`),
		// One entry without a fix makes the module's fix empty.
		record(t, `{"id":"GO-2000-0003","modified":"2024-06-01T00:00:00Z",
			"affected":[
			{"package":{"ecosystem":"Go","name":"example.com/b"},
			 "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"2.0.0"}]}]},
			{"package":{"ecosystem":"Go","name":"example.com/b"},
			 "ranges":[{"type":"SEMVER","events":[{"introduced":"3.0.0"}]}]}]}`),
		// Not Go: left out.
		record(t, `{"id":"PYSEC-2000-1","modified":"2024-07-01T00:00:00Z",
			"affected":[{"package":{"ecosystem":"PyPI","name":"requests"},
			"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.0"}]}]}]}`),
	}
	dir := t.TempDir()
	n, err := crosscheck.WriteGoVulnDB(dir, recs)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("wrote %d records, want 3", n)
	}

	var db crosscheck.DBMeta
	readJSON(t, filepath.Join(dir, "index", "db.json"), &db)
	if want := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC); !db.Modified.Equal(want) {
		t.Errorf("db.json modified = %v, want %v", db.Modified, want)
	}

	var mods []crosscheck.ModuleMeta
	readJSON(t, filepath.Join(dir, "index", "modules.json"), &mods)
	may := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	dec := time.Date(2023, 12, 5, 0, 0, 0, 0, time.UTC)
	june := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	wantMods := []crosscheck.ModuleMeta{
		{Path: "example.com/a", Vulns: []crosscheck.ModuleVuln{
			{ID: "GO-2000-0001", Modified: may},
			{ID: "GO-2000-0002", Modified: dec, Fixed: "0.9.0"},
		}},
		{Path: "example.com/b", Vulns: []crosscheck.ModuleVuln{{ID: "GO-2000-0003", Modified: june}}},
		{Path: "stdlib", Vulns: []crosscheck.ModuleVuln{{ID: "GO-2000-0002", Modified: dec, Fixed: "1.21.5"}}},
	}
	if !reflect.DeepEqual(mods, wantMods) {
		t.Errorf("modules.json =\n%+v\nwant\n%+v", mods, wantMods)
	}

	var vulns []crosscheck.VulnMeta
	readJSON(t, filepath.Join(dir, "index", "vulns.json"), &vulns)
	wantVulns := []crosscheck.VulnMeta{
		{ID: "GO-2000-0001", Modified: may, Aliases: []string{"CVE-2000-1"}},
		{ID: "GO-2000-0002", Modified: dec},
		{ID: "GO-2000-0003", Modified: june},
	}
	if !reflect.DeepEqual(vulns, wantVulns) {
		t.Errorf("vulns.json =\n%+v\nwant\n%+v", vulns, wantVulns)
	}

	// Records are stored as they came, and only Go ones.
	for _, r := range recs[:3] {
		b, err := os.ReadFile(filepath.Join(dir, "ID", r.V.ID+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, r.Raw) {
			t.Errorf("ID/%s.json is not the record as stored", r.V.ID)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "ID", "PYSEC-2000-1.json")); !os.IsNotExist(err) {
		t.Errorf("a PyPI record was written to the Go database (stat: %v)", err)
	}
}

func TestWriteGoVulnDBRejects(t *testing.T) {
	goRec := func(id string) string {
		return `{"id":"` + id + `","modified":"2024-05-01T00:00:00Z",
			"affected":[{"package":{"ecosystem":"Go","name":"example.com/a"},
			"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`
	}
	for name, tc := range map[string]struct {
		recs []string
		want string
	}{
		"path in id":   {[]string{goRec("../GO-2000-0001")}, `record id "../GO-2000-0001" cannot name a file`},
		"duplicate id": {[]string{goRec("GO-2000-0001"), goRec("GO-2000-0001")}, "GO-2000-0001 is also the id of"},
		"bad fixed version": {[]string{`{"id":"GO-2000-0004","modified":"2024-05-01T00:00:00Z",
			"affected":[{"package":{"ecosystem":"Go","name":"example.com/a"},
			"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"not.a.version"}]}]}]}`},
			"GO-2000-0004: affected[0]"},
	} {
		t.Run(name, func(t *testing.T) {
			var recs []crosscheck.Record
			for _, js := range tc.recs {
				recs = append(recs, record(t, js))
			}
			dir := t.TempDir()
			_, err := crosscheck.WriteGoVulnDB(dir, recs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "GO-2000-0001.json")); err == nil {
				t.Errorf("a record was written outside the database directory")
			}
		})
	}
}

// TestReadZipRealGo checks that the repository's Go export reads whole.
func TestReadZipRealGo(t *testing.T) {
	recs := goRecords(t)
	if len(recs) != 4291 {
		t.Errorf("read %d Go records, want 4291 (testdata/vulndata/README.md)", len(recs))
	}
	for _, r := range recs {
		if r.Name != r.V.ID+".json" {
			t.Fatalf("%s holds record %s", r.Name, r.V.ID)
		}
	}
}
