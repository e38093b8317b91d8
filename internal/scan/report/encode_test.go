package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenExt is the file extension of each format's golden file.
var goldenExt = map[Format]string{
	FormatTable:     "txt",
	FormatJSON:      "json",
	FormatSARIF:     "sarif.json",
	FormatCycloneDX: "cdx.json",
	FormatSPDX:      "spdx.json",
}

func encode(t *testing.T, r *Report, f Format, o Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Encode(&buf, r, f, o); err != nil {
		t.Fatalf("Encode %s: %v", f, err)
	}
	return buf.Bytes()
}

// TestGolden encodes the fixture in every format and compares with the
// golden files; the same report encoded again gives the same bytes.
func TestGolden(t *testing.T) {
	for _, f := range Formats() {
		t.Run(string(f), func(t *testing.T) {
			got := encode(t, fixtureReport(), f, fixtureOptions())
			if again := encode(t, fixtureReport(), f, fixtureOptions()); !bytes.Equal(got, again) {
				t.Fatal("two encodings of the same report differ")
			}
			path := filepath.Join("testdata", "golden", "alpine-app."+goldenExt[f])
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the golden file (run go test -update and review the diff):\n%s", f, got)
			}
		})
	}
}

// schemas compiles the official schemas in testdata/schemas once.
var schemas = sync.OnceValues(func() (map[Format]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	files := map[string]string{
		"http://cyclonedx.org/schema/bom-1.6.schema.json":                                            "cyclonedx/bom-1.6.schema.json",
		"http://cyclonedx.org/schema/spdx.schema.json":                                               "cyclonedx/spdx.schema.json",
		"http://cyclonedx.org/schema/jsf-0.82.schema.json":                                           "cyclonedx/jsf-0.82.schema.json",
		"https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json": "sarif/sarif-schema-2.1.0.json",
		"http://spdx.org/rdf/terms/2.3":                                                              "spdx/spdx-schema.json",
	}
	for url, file := range files {
		f, err := os.Open(filepath.Join("testdata", "schemas", file))
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			return nil, err
		}
		if err := c.AddResource(url, doc); err != nil {
			return nil, err
		}
	}
	out := map[Format]*jsonschema.Schema{}
	for f, url := range map[Format]string{
		FormatCycloneDX: "http://cyclonedx.org/schema/bom-1.6.schema.json",
		FormatSARIF:     "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json",
		FormatSPDX:      "http://spdx.org/rdf/terms/2.3",
	} {
		s, err := c.Compile(url)
		if err != nil {
			return nil, err
		}
		out[f] = s
	}
	return out, nil
})

// validate checks doc against the official schema of format f.
func validate(t *testing.T, f Format, doc []byte) {
	t.Helper()
	ss, err := schemas()
	if err != nil {
		t.Fatalf("compiling the schemas: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("%s output is not JSON: %v", f, err)
	}
	if err := ss[f].Validate(inst); err != nil {
		t.Errorf("%s output does not follow the official schema: %v", f, err)
	}
}

// TestSchemas validates every SBOM and SARIF encoding of several reports
// (the fixture, an empty one, one without its inventory, a failed scan)
// against the format's official JSON schema.
func TestSchemas(t *testing.T) {
	noInventory := fixtureReport()
	noInventory.Inventory = nil
	empty := &Report{Digest: "sha256:" + strings.Repeat("0", 64), Status: StatusDone, Findings: []Finding{}}
	failed := &Report{Digest: "sha256:" + strings.Repeat("1", 64), Status: StatusFailed, Reason: "layer 0: gzip: invalid header"}
	for name, r := range map[string]*Report{"fixture": fixtureReport(), "no inventory": noInventory, "empty": empty, "failed": failed} {
		for _, f := range []Format{FormatSARIF, FormatCycloneDX, FormatSPDX} {
			t.Run(name+"/"+string(f), func(t *testing.T) {
				validate(t, f, encode(t, r, f, fixtureOptions()))
			})
		}
	}
}

// TestSchemaCatchesErrors makes sure validation can fail: a document
// with a required field removed is refused for each format.
func TestSchemaCatchesErrors(t *testing.T) {
	ss, err := schemas()
	if err != nil {
		t.Fatal(err)
	}
	for f, field := range map[Format]string{FormatCycloneDX: "bomFormat", FormatSARIF: "version", FormatSPDX: "SPDXID"} {
		var doc map[string]any
		if err := json.Unmarshal(encode(t, fixtureReport(), f, fixtureOptions()), &doc); err != nil {
			t.Fatal(err)
		}
		delete(doc, field)
		b, _ := json.Marshal(doc)
		inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err := ss[f].Validate(inst); err == nil {
			t.Errorf("%s without %q passed its schema", f, field)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := fixtureReport()
	var back Report
	if err := json.Unmarshal(encode(t, r, FormatJSON, Options{}), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*r, back) {
		t.Errorf("JSON round trip changed the report:\n got %+v\nwant %+v", back, *r)
	}
}

func TestParseFormat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Format
		err  string
	}{
		{in: "table", want: FormatTable},
		{in: " SARIF ", want: FormatSARIF},
		{in: "CycloneDX", want: FormatCycloneDX},
		{in: "spdx", want: FormatSPDX},
		{in: "xml", err: `unknown report format "xml" (want one of table, json, sarif, cyclonedx, spdx)`},
		{in: "", err: `unknown report format ""`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseFormat(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseFormat(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseFormat(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
	if err := Encode(&bytes.Buffer{}, fixtureReport(), "xml", Options{}); err == nil {
		t.Error("Encode accepted format xml")
	}
	if err := Encode(&bytes.Buffer{}, nil, FormatJSON, Options{}); err == nil {
		t.Error("Encode accepted a nil report")
	}
}
