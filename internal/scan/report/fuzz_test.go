package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/vulndb/match"
	"github.com/customs-dev/customs/internal/vulndb/osv"
	"github.com/customs-dev/customs/internal/vulndb/severity"
)

// FuzzEncode puts arbitrary strings where an image and its advisories put
// theirs (package name, version, purl, location, advisory id, summary,
// reference URL) and checks every format: the table keeps one line per
// finding and no control character, the JSON formats are valid JSON, and
// the SBOM and SARIF documents follow their official schemas.
func FuzzEncode(f *testing.F) {
	f.Add("musl", "1.1.20-r4", "pkg:apk/alpine/musl@1.1.20-r4", "lib/apk/db/installed", "ALPINE-CVE-2019-14697", "summary", "https://example.com/a")
	f.Add("evil\x1b[31m", "1.0\n\tX", "pkg:npm/%00", "../../etc/passwd", "ID|with|pipes", "<script>&", "http://[::1]/\x00")
	f.Add("", "", "", "", "", "", "")
	f.Add("\u202egnp.exe", "\xff\xfe", "pkg:", "a\tb", "CVE-1", "line\r\nbreak", "https://a b")
	f.Fuzz(func(t *testing.T, name, version, purl, location, id, summary, url string) {
		pkg := inventory.Package{Ecosystem: inventory.NPM, Name: name, Version: version, PURL: purl, Locations: []string{location}}
		other := inventory.Package{Ecosystem: inventory.PyPI, Name: "safe", Version: "1.0", PURL: "pkg:pypi/safe@1.0"}
		fs := []Finding{
			FromMatch(match.Finding{AdvisoryID: id, Aliases: []string{id, "CVE-2020-0001"}, Summary: summary, Package: pkg,
				Fixed: []string{version + "1"}, Status: match.StatusFixed, Severity: severity.Rating{Level: severity.High, Score: 7.5, Vector: "AV:N/AC:L/Au:N/C:P/I:P/A:P", Source: severity.SourceCVSSv2},
				References: []osv.Reference{{Type: "WEB", URL: url}}}),
			FromMatch(match.Finding{AdvisoryID: "GHSA-xxxx", Package: other, Status: match.StatusNoFix, Severity: severity.UnknownRating()}),
		}
		SortFindings(fs)
		r := &Report{Digest: "sha256:" + strings.Repeat("a", 64), Status: StatusDone, Packages: 2, Counts: CountFindings(fs), Findings: fs,
			Inventory: &inventory.Inventory{Packages: []inventory.Package{pkg, other, pkg}}}
		o := Options{Subject: name + ":" + version, ToolVersion: version}
		for _, format := range Formats() {
			var buf bytes.Buffer
			if err := Encode(&buf, r, format, o); err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			switch format {
			case FormatTable:
				out := buf.String()
				if strings.ContainsFunc(out, func(c rune) bool { return c != '\n' && (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0)) }) {
					t.Fatalf("control character in the table:\n%q", out)
				}
				// header (2), blank, column titles, 2 findings, blank, counts
				if n := strings.Count(out, "\n"); n != 8 {
					t.Fatalf("table has %d lines, want 8:\n%s", n, out)
				}
			default:
				if !json.Valid(buf.Bytes()) {
					t.Fatalf("%s: invalid JSON:\n%s", format, buf.String())
				}
				if format != FormatJSON {
					validate(t, format, buf.Bytes())
				}
			}
		}
	})
}
