package osv

import (
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse, as JSON and as YAML, then
// Validate: neither may panic; an error names the record; a record that
// validates has what matching relies on.
func FuzzParse(f *testing.F) {
	seeds := []string{
		`{"id":"ALPINE-CVE-2019-14697","modified":"2020-06-08T00:00:00Z","upstream":["CVE-2019-14697"],"affected":[{"package":{"ecosystem":"Alpine:v3.9","name":"musl"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.1.20-r5"}]}]}]}`,
		`{"id":"GO-2021-0067","modified":"0001-01-01T00:00:00Z","published":"2021-04-14T20:04:52Z","affected":[{"package":{"name":"stdlib","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"1.16.0-0"},{"fixed":"1.16.1"}]}],"ecosystem_specific":{"imports":[{"path":"archive/zip"}]}}],"database_specific":{"url":"https://pkg.go.dev/vuln/GO-2021-0067"}}`,
		`{"id":"PYSEC-2022-15","modified":"2022-01-29T16:47:14.527876Z","withdrawn":"2022-02-22T16:15:07Z","affected":[{"package":{"name":"loguru","ecosystem":"PyPI"}}]}`,
		"id: PYSEC-2024-1\nmodified: 2024-01-03T22:31:36Z\naffected:\n- package: {ecosystem: PyPI, name: gratient}\n  versions: ['0.5']\n",
		`{"id":"X","modified":"1-01-01T00:00:00Z"}`,
		`{"id":"X","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{"fixed":"1.0.0"}]}]}]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), strings.HasPrefix(s, "id:"))
	}
	f.Fuzz(func(t *testing.T, data []byte, yaml bool) {
		name := "fuzz.json"
		if yaml {
			name = "fuzz.yaml"
		}
		v, err := Parse(name, data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), name+": ") {
				t.Fatalf("error %q does not name the record", err)
			}
			return
		}
		if err := v.Validate(); err != nil {
			return
		}
		if v.ID == "" {
			t.Fatal("a record without id validated")
		}
		for _, a := range v.Affected {
			if a.Package.Ecosystem == "" || a.Package.Name == "" {
				t.Fatalf("an entry without ecosystem or name validated: %+v", a.Package)
			}
			for _, r := range a.Ranges {
				if len(r.Events) == 0 {
					t.Fatal("a range without events validated")
				}
			}
		}
	})
}
