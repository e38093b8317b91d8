package policy

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse: any input either fails with ParseErrors or parses into
// policies that compile, and that Marshal writes back to the same
// policies.
func FuzzParse(f *testing.F) {
	full, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(full))
	for _, name := range []string{"testdata/seed000.yaml", "testdata/seed002/rego.yaml", "testdata/seed002/builtin.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add(header + "spec: {}\n")
	f.Add(header + "spec:\n  vulnerabilities: {maxSeverity: hgih}\n")
	f.Add(header + "spec:\n  scope: &a {projects: [x]}\n  tags: *a\n")
	f.Add("---\n---\n")
	f.Add("[")
	f.Fuzz(func(t *testing.T, data string) {
		ps, err := Parse("fuzz.yaml", []byte(data))
		if err != nil {
			for _, e := range unjoin(err) {
				if _, ok := e.(*ParseError); !ok {
					t.Fatalf("error %T %v is not a *ParseError", e, e)
				}
			}
			return
		}
		if _, err := Compile(ps, Config{}); err != nil {
			t.Fatalf("parsed policies do not compile: %v", err)
		}
		out, err := Marshal(ps...)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse("fuzz.yaml", out)
		if err != nil {
			t.Fatalf("Marshal output does not parse: %v\n%s", err, out)
		}
		if len(back) != len(ps) {
			t.Fatalf("%d policies came back, want %d", len(back), len(ps))
		}
		for i := range ps {
			if ps[i].Spec.Rego != nil {
				for j := range ps[i].Spec.Rego.Modules {
					back[i].Spec.Rego.Modules[j].line = ps[i].Spec.Rego.Modules[j].line
				}
			}
			if !reflect.DeepEqual(ps[i], back[i]) {
				t.Fatalf("document %d changed through Marshal:\n%+v\n%+v", i, ps[i], back[i])
			}
		}
	})
}

// FuzzParseInput: inputs either fail or evaluate without error.
func FuzzParseInput(f *testing.F) {
	for _, name := range []string{"testdata/seed002/allowed.json", "testdata/seed002/denied.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		s := strings.TrimSpace(string(b))
		f.Add(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	}
	f.Add(`{"image": "nginx", "scan": null, "signatures": {"verified": []}}`)
	f.Add(`{"image": {"registry": "a.example", "repository": "b"}, "scan": {"status": "done", "findings": [{"id": "CVE-1", "severity": "unknown"}]}}`)
	e, err := Compile(parseSeedPolicies(f), Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data string) {
		in, err := ParseInput([]byte(data))
		if err != nil {
			return
		}
		if _, err := e.Evaluate(context.Background(), in); err != nil {
			t.Fatalf("a parsed input does not evaluate: %v", err)
		}
	})
}

func parseSeedPolicies(f *testing.F) []*Policy {
	var out []*Policy
	for _, name := range []string{"testdata/seed002/rego.yaml", "testdata/full.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		ps, err := Parse(name, b)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, ps...)
	}
	return out
}

// FuzzGlob: a pattern never matches a name on another host when its host
// has no wildcard, and parsing a reference is stable through String.
func FuzzGlob(f *testing.F) {
	f.Add("*.corp.example", "evil.example/x.corp.example")
	f.Add("registry.corp.example/**", "registry.corp.example:5000/a/b")
	f.Add("docker.io/*", "nginx")
	f.Add("gcr.io/**/x/**", "gcr.io/a/x/b/x")
	f.Add("[::1]:5000", "[::1]:5000/a")
	f.Fuzz(func(t *testing.T, pattern, ref string) {
		img, err := ParseImage(ref)
		if err != nil {
			return
		}
		again, err := ParseImage(img.String())
		if err != nil || again != img {
			t.Fatalf("ParseImage(%q) = %+v, its String %q parses to %+v (%v)", ref, img, img.String(), again, err)
		}
		np, err := compileNamePattern(pattern)
		if err != nil {
			return
		}
		s := newSubject(&img)
		if np.match(&s) && !strings.Contains(np.host, "*") && np.host != s.host {
			t.Fatalf("%q matched %q on host %q", pattern, img.String(), s.host)
		}
	})
}
