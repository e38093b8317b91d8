package severity

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseNVD(t *testing.T) {
	got, err := ParseNVD("nvd-2.0-sample.json", readTestdata(t, "nvd-2.0-sample.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id     string
		level  Level
		score  float64
		vector string
		detail string
	}{
		// NVD's Primary v3.1 over its v2.
		{"CVE-2019-14697", Critical, 9.8, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "NVD CVE-2019-14697 cvssMetricV31 Primary (nvd@nist.gov)"},
		// Only a Secondary (CNA) metric.
		{"CVE-2024-3094", Critical, 10, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", "NVD CVE-2024-3094 cvssMetricV31 Secondary (secalert@redhat.com)"},
		// NVD's Primary v3.1 over a CNA's Secondary v4.0.
		{"CVE-2024-99901", Medium, 6.1, "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", "NVD CVE-2024-99901 cvssMetricV31 Primary (nvd@nist.gov)"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d ratings, want %d (CVE-2024-99902 has no metrics): %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.ID != w.id || g.Rating.Level != w.level || g.Rating.Score != w.score || g.Rating.Vector != w.vector ||
			g.Rating.Source != SourceCVEFeed || g.Rating.Detail != w.detail {
			t.Errorf("rating %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestParseNVDErrors(t *testing.T) {
	if _, err := ParseNVD("x.json", []byte(`[1,2]`)); err == nil || !strings.Contains(err.Error(), "x.json") {
		t.Errorf("not an object: %v", err)
	}
	if _, err := ParseNVD("x.json", []byte(`{"cve_items":[]}`)); err == nil {
		t.Error("no vulnerabilities list: no error")
	}
	// One good record, one without id, one whose only metric is broken:
	// the good one is returned, each bad one named.
	doc := `{"vulnerabilities":[
	  {"cve":{"id":"CVE-1","metrics":{"cvssMetricV2":[{"source":"nvd@nist.gov","type":"Primary","cvssData":{"version":"2.0","vectorString":"AV:N/AC:L/Au:N/C:P/I:P/A:P","baseScore":7.5}}]}}},
	  {"cve":{"metrics":{}}},
	  {"cve":{"id":"CVE-3","metrics":{"cvssMetricV31":[{"source":"nvd@nist.gov","type":"Primary","cvssData":{"version":"3.1","vectorString":"CVSS:3.1/AV:Q"}}]}}},
	  {"cve":{"id":"CVE-4","metrics":{"cvssMetricV31":[{"source":"nvd@nist.gov","type":"Primary","cvssData":{"version":"3.1","vectorString":"CVSS:3.1/AV:Q","baseScore":5.3}}]}}}
	]}`
	got, err := ParseNVD("page.json", []byte(doc))
	if err == nil {
		t.Fatal("no error for the bad records")
	}
	for _, s := range []string{"page.json: vulnerabilities[1]: cve.id is missing", "page.json: CVE-3: no usable CVSS metric"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
	if len(got) != 2 || got[0].ID != "CVE-1" || got[0].Rating.Level != High || got[1].ID != "CVE-4" {
		t.Fatalf("ratings = %+v, want CVE-1 and CVE-4", got)
	}
	// CVE-4's vector is broken but its stated score stands, and says so.
	if r := got[1].Rating; r.Level != Medium || r.Score != 5.3 || !strings.Contains(r.Detail, "stated base score") {
		t.Errorf("CVE-4 = %+v", r)
	}
}

func TestParseCVE5(t *testing.T) {
	tests := []struct {
		file   string
		id     string
		ok     bool
		level  Level
		score  float64
		detail string
	}{
		{"cve5-CVE-2024-3094.json", "CVE-2024-3094", true, Critical, 10, "CVE CVE-2024-3094 containers.cna.metrics[1] CVSS 3.1 (redhat)"},
		{"cve5-CVE-2023-44487.json", "CVE-2023-44487", true, High, 7.5, "CVE CVE-2023-44487 containers.adp[1].metrics[0] CVSS 3.1 (CISA-ADP)"},
		{"cve5-v4.json", "CVE-2024-99903", true, High, 8.5, "CVE CVE-2024-99903 containers.cna.metrics[1] CVSS 4.0 (example)"},
		{"cve5-rejected.json", "CVE-2022-0329", false, Unknown, 0, ""},
	}
	for _, tc := range tests {
		r, ok, err := ParseCVE5(tc.file, readTestdata(t, tc.file))
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		if r.ID != tc.id || ok != tc.ok {
			t.Errorf("%s: id %q ok %v, want %q %v", tc.file, r.ID, ok, tc.id, tc.ok)
			continue
		}
		if ok && (r.Rating.Level != tc.level || r.Rating.Score != tc.score || r.Rating.Source != SourceCVEFeed || r.Rating.Detail != tc.detail) {
			t.Errorf("%s: %+v, want %v %v %q", tc.file, r.Rating, tc.level, tc.score, tc.detail)
		}
	}
}

func TestParseCVE5Errors(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"a.json", `nope`, "a.json: not a CVE JSON 5 record"},
		{"b.json", `{"dataType":"CVE_RECORD","containers":{}}`, "b.json: not a CVE JSON 5 record: cveMetadata.cveId is missing"},
		{"c.json", `{"cveMetadata":{"cveId":"CVE-9","state":"PUBLISHED"},"containers":{"cna":{"metrics":[{"cvssV3_1":{"vectorString":"CVSS:3.1/AV:Z"}}]}}}`, "c.json: CVE-9: no usable CVSS metric"},
	}
	for _, c := range cases {
		_, ok, err := ParseCVE5(c.name, []byte(c.doc))
		if err == nil || ok || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: ok %v err %v, want %q", c.name, ok, err, c.want)
		}
	}
	// A published record without metrics is not an error.
	r, ok, err := ParseCVE5("d.json", []byte(`{"cveMetadata":{"cveId":"CVE-10","state":"PUBLISHED"},"containers":{"cna":{}}}`))
	if err != nil || ok || r.ID != "CVE-10" {
		t.Errorf("no metrics: %+v %v %v", r, ok, err)
	}
}
