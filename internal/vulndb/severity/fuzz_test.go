package severity

import (
	"testing"
)

// FuzzParseCVSS: any string scores or errors; a score is within 0-10 and
// its level is a known one.
func FuzzParseCVSS(f *testing.F) {
	for _, s := range []string{v31Critical, v31Medium, v2High, v40High, "CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", "(AV:N/AC:L/Au:N/C:N/I:N/A:N)", "CVSS:4.0/AV:N"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCVSS(s)
		if err != nil {
			return
		}
		if c.Score < 0 || c.Score > 10 || !c.Level.Known() {
			t.Fatalf("ParseCVSS(%q) = %+v", s, c)
		}
	})
}

// FuzzParseNVD: any bytes give ratings and/or an error, never a panic; every
// rating returned names its CVE and comes from the feed.
func FuzzParseNVD(f *testing.F) {
	f.Add(readTestdata(f, "nvd-2.0-sample.json"))
	f.Add([]byte(`{"vulnerabilities":[{"cve":{"id":"CVE-1","metrics":{"cvssMetricV2":[{"type":"Primary","cvssData":{"vectorString":"AV:N/AC:L/Au:N/C:P/I:P/A:P"}}]}}}]}`))
	f.Add([]byte(`{"vulnerabilities":[{"cve":null},{}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, _ := ParseNVD("fuzz.json", data)
		for _, r := range rs {
			if r.ID == "" || r.Rating.Source != SourceCVEFeed || !r.Rating.Level.Known() {
				t.Fatalf("bad rating %+v", r)
			}
		}
	})
}

// FuzzParseCVE5: as FuzzParseNVD, for CVE JSON 5 records.
func FuzzParseCVE5(f *testing.F) {
	for _, n := range []string{"cve5-CVE-2024-3094.json", "cve5-CVE-2023-44487.json", "cve5-rejected.json", "cve5-v4.json"} {
		f.Add(readTestdata(f, n))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, ok, err := ParseCVE5("fuzz.json", data)
		if ok && (err != nil || r.ID == "" || r.Rating.Source != SourceCVEFeed || !r.Rating.Level.Known()) {
			t.Fatalf("bad rating %+v, %v", r, err)
		}
	})
}
