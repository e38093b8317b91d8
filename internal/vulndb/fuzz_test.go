package vulndb

import (
	"bytes"
	"os"
	"testing"

	"github.com/customs-dev/customs/internal/store"
)

// FuzzRecordFile feeds arbitrary bytes to the reader of one source file
// (OSV JSON/YAML, NVD 2.0, CVE 5): it must not panic, every problem must be
// a *RecordError naming the file, and what it keeps must be well-formed.
func FuzzRecordFile(f *testing.F) {
	f.Add("GO-1.json", []byte(goRecord("GO-1", "example.com/a", "1.0.0", "CVE-2024-1")))
	f.Add("x.yaml", []byte("id: GO-3\nmodified: 2024-01-02T03:04:05Z\naffected:\n  - package: {ecosystem: Go, name: c}\n"))
	f.Add("x.json", []byte(`{"vulnerabilities": [{"cve": {"id": "CVE-1", "metrics": {}}}]}`))
	f.Add("x.json", []byte(`{"dataType": "CVE_RECORD", "cveMetadata": {"cveId": "CVE-1", "state": "PUBLISHED"}}`))
	f.Add("x.json", []byte(`{"id": "A", "modified": "2024-01-01T00:00:00Z", "affected": [{"package": {"ecosystem": "Alpine:v3.9", "name": "m"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1-r0"}]}]}]}`))
	for _, name := range []string{"nvd-2.0-sample.json", "cve5-CVE-2024-3094.json", "cve5-rejected.json"} {
		if b, err := os.ReadFile(feedSample(f, name)); err == nil {
			f.Add(name, b)
		}
	}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		stored := map[store.VulnKey]string{{Kind: store.VulnOSV, ID: "GO-1"}: "x"}
		c := newCollector("fuzz", stored, nil)
		if err := c.file(name, data); err != nil {
			t.Fatalf("file returned %v; only the walker fails sources", err)
		}
		recs := c.finish()
		for _, e := range c.errs {
			if e.Source != "fuzz" || e.File != name || e.Err == nil || e.Error() == "" {
				t.Fatalf("malformed record error %+v", e)
			}
		}
		for _, r := range recs {
			if r.ID == "" || r.Hash == "" || (r.Kind != store.VulnOSV && r.Kind != store.VulnCVE) {
				t.Fatalf("malformed record %+v", r)
			}
			if h, ok := c.seen[store.VulnKey{Kind: r.Kind, ID: r.ID}]; !ok || h != r.Hash {
				t.Fatalf("record %s %s not seen with its hash", r.Kind, r.ID)
			}
		}
	})
}

// FuzzZip reads arbitrary bytes as an all.zip export under small limits: no
// panic, no read past the limits, and failures are source failures.
func FuzzZip(f *testing.F) {
	f.Add(zipOf(f, map[string]string{"GO-1.json": goRecord("GO-1", "example.com/a", "1.0.0")}))
	f.Add(zipOf(f, map[string]string{"a/b.json": "{}", "c.yaml": "id: x", "big.json": string(bytes.Repeat([]byte("x"), 5000))}))
	f.Add([]byte("PK\x03\x04garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var read int64
		w := &walker{
			lim:    limits{record: 4096, feed: 8192, total: 1 << 16},
			file:   func(name string, b []byte) error { read += int64(len(b)); return nil },
			recErr: func(string, error) {},
		}
		err := w.readZip("fuzz.zip", "", bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if _, ok := err.(*sourceError); !ok {
				t.Fatalf("error %v (%T) is not a source failure", err, err)
			}
		}
		if read > 1<<16 || w.total > 1<<16+8192+1 {
			t.Fatalf("read %d bytes (%d counted) past the limit", read, w.total)
		}
	})
}
