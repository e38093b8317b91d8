package crosscheck_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/customs-dev/customs/test/crosscheck"
)

// gvOutput is govulncheck v1.9.0 -format json output, shortened (the osv
// message is cut down).
const gvOutput = `{
  "config": {"protocol_version": "v1.0.0", "scanner_name": "govulncheck", "scanner_version": "v1.9.0",
    "db": "file:///tmp/db", "db_last_modified": "0001-01-01T00:00:00Z", "scan_level": "module", "scan_mode": "binary"}
}
{"progress": {"message": "Scanning your binary for known vulnerabilities..."}}
{"SBOM": {"go_version": "go1.20", "modules": [{"path": "golang.org/x/text", "version": "v0.3.5"},
  {"path": "stdlib", "version": "go1.20"}], "roots": ["example.com/crosscheck/textlang"]}}
{"osv": {"schema_version": "1.3.1", "id": "GO-2021-0113", "modified": "0001-01-01T00:00:00Z"}}
{"finding": {"osv": "GO-2021-0113", "fixed_version": "v0.3.7",
  "trace": [{"module": "golang.org/x/text", "version": "v0.3.5"}]}}
{"finding": {"osv": "GO-2023-1621", "fixed_version": "v1.20.2",
  "trace": [{"module": "stdlib", "version": "v1.20.0"}]}}
{"finding": {"osv": "GO-2026-0001", "trace": [{"module": "example.com/nofix", "version": "v1.0.0"}]}}
`

func TestParseGovulncheckJSON(t *testing.T) {
	got, err := crosscheck.ParseGovulncheckJSON(strings.NewReader(gvOutput))
	if err != nil {
		t.Fatal(err)
	}
	want := &crosscheck.GovulncheckResult{
		ScannerVersion: "v1.9.0", ScanLevel: "module", ScanMode: "binary", GoVersion: "go1.20",
		Findings: []crosscheck.ModuleFinding{
			{OSV: "GO-2021-0113", Module: "golang.org/x/text", Version: "v0.3.5", Fixed: "v0.3.7"},
			{OSV: "GO-2023-1621", Module: "stdlib", Version: "v1.20.0", Fixed: "v1.20.2"},
			{OSV: "GO-2026-0001", Module: "example.com/nofix", Version: "v1.0.0"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestParseGovulncheckJSONRejects(t *testing.T) {
	for name, tc := range map[string]struct{ in, want string }{
		"truncated":      {`{"finding": {"osv": "GO-1"`, "message 1"},
		"package level":  {`{"finding": {"osv": "GO-1", "trace": [{"module": "m", "package": "m/p"}]}}`, "not module level"},
		"no trace":       {`{"config": {}} {"finding": {"osv": "GO-1"}}`, "message 2: finding \"GO-1\" has no single module frame"},
		"two frames":     {`{"finding": {"osv": "GO-1", "trace": [{"module": "m"}, {"module": "n"}]}}`, "no single module frame"},
		"not an object":  {`[1, 2]`, "message 1"},
		"empty osv name": {`{"finding": {"trace": [{"module": "m"}]}}`, "no single module frame"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := crosscheck.ParseGovulncheckJSON(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// FuzzParseGovulncheckJSON: any input gives a result or an error, never a
// panic, and every finding returned names an advisory and a module.
func FuzzParseGovulncheckJSON(f *testing.F) {
	f.Add(gvOutput)
	f.Add(`{"finding": {"osv": "GO-1", "trace": [{"module": "m", "package": "m/p"}]}}`)
	f.Add(`{"config": null} {"SBOM": {}} {"finding": null}`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, in string) {
		res, err := crosscheck.ParseGovulncheckJSON(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, fd := range res.Findings {
			if fd.OSV == "" || fd.Module == "" {
				t.Fatalf("finding without advisory or module: %+v", fd)
			}
		}
	})
}
