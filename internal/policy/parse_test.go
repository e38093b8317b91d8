package policy

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseFull(t *testing.T) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := Parse("full.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 {
		t.Fatalf("got %d policies, want 2", len(ps))
	}
	p := ps[0]
	if p.Source != "full.yaml" || p.Metadata.Name != "production" || p.Metadata.Annotations["owner"] != "platform-team" {
		t.Errorf("metadata: %+v (source %q)", p.Metadata, p.Source)
	}
	s := p.Spec
	if !reflect.DeepEqual(s.Scope, Scope{Environments: []string{"production"}, Namespaces: []string{"payments", "web"}, Repositories: []string{"registry.corp.example/**"}}) {
		t.Errorf("scope: %+v", s.Scope)
	}
	if s.Mode != Enforce || s.Tags.Mode != Warn || s.Rego.Mode != Audit || s.Registries.Mode != "" {
		t.Errorf("modes: spec %q tags %q rego %q registries %q", s.Mode, s.Tags.Mode, s.Rego.Mode, s.Registries.Mode)
	}
	if len(s.Registries.Allowed) != 2 || s.Registries.Denied[0] != "registry.corp.example/sandbox/**" {
		t.Errorf("registries: %+v", s.Registries)
	}
	if !s.Tags.RequireDigest || !reflect.DeepEqual(s.Tags.Deny, []string{"latest", "*-snapshot"}) {
		t.Errorf("tags: %+v", s.Tags)
	}
	v := s.Vulnerabilities
	if *v.MaxSeverity != High || !v.ScanRequired() || !v.IgnoreUnfixed || *v.UnknownAs != UnknownAs(Medium) || v.SystemAllowlistApplies() {
		t.Errorf("vulnerabilities: %+v", v)
	}
	a := v.Allowlist[0]
	if a.ID != "CVE-2019-14697" || a.Package != "musl" || a.AddedBy != "alice" || !a.Expires.Equal(time.Date(2030, 1, 31, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("allowlist[0]: %+v", a)
	}
	if !v.Allowlist[1].Expires.Equal(time.Date(2030, 1, 31, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("allowlist[1].expires: %v", v.Allowlist[1].Expires)
	}
	if len(s.Signatures.Signers) != 2 || s.Signatures.Signers[1].Keyless.Subject != "https://github.com/corp/*" {
		t.Errorf("signatures: %+v", s.Signatures)
	}
	if m := s.Rego.Modules[0]; m.Name != "naming.rego" || !strings.Contains(m.Source, "package customs") || m.line != 55 {
		t.Errorf("rego module: %+v", m)
	}
	if d := ps[1]; d.Metadata.Name != "default" || !d.Spec.Scope.IsZero() {
		t.Errorf("second document: %+v", d)
	}
	if _, err := Compile(ps, Config{}); err != nil {
		t.Fatalf("Compile: %v", err)
	}
}

// TestMarshalRoundTrip: what Marshal writes, Parse reads back equal.
func TestMarshalRoundTrip(t *testing.T) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := Parse("full.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Marshal(ps...)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("full.yaml", out)
	if err != nil {
		t.Fatalf("Parse(Marshal(...)): %v\n%s", err, out)
	}
	for i := range ps {
		for j := range ps[i].Spec.Rego.modulesOrNil() {
			back[i].Spec.Rego.Modules[j].line = ps[i].Spec.Rego.Modules[j].line
		}
		if !reflect.DeepEqual(ps[i], back[i]) {
			t.Errorf("document %d changed:\n%+v\n%+v\n%s", i, ps[i].Spec, back[i].Spec, out)
		}
	}
}

func (r *RegoRule) modulesOrNil() []RegoModule {
	if r == nil {
		return nil
	}
	return r.Modules
}

const header = "apiVersion: customs.dev/v1alpha1\nkind: Policy\nmetadata:\n  name: p\n"

// TestParseMalformed: each bad file gets errors that name file, line and
// field path.
func TestParseMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []string // every error, in order
	}{
		{"bad severity", header + "spec:\n  vulnerabilities:\n    maxSeverity: hgih\n",
			[]string{`policy.yaml:7: spec.vulnerabilities.maxSeverity: "hgih" is not one of none, low, medium, high, critical`}},
		{"unknown field with suggestion", header + "spec:\n  vulnerabilities:\n    maxSeverty: high\n",
			[]string{`policy.yaml:7: spec.vulnerabilities: unknown field "maxSeverty" (did you mean "maxSeverity"?)`,
				`policy.yaml:7: spec.vulnerabilities: needs maxSeverity or requireScan: true (without them the rule checks nothing)`}},
		{"unknown field lists known", header + "spec:\n  frobnicate: true\n",
			[]string{`policy.yaml:6: spec: unknown field "frobnicate" (known: scope, mode, registries, tags, names, vulnerabilities, signatures, rego, externalImages, admission)`}},
		{"bad externalImages", header + "spec:\n  vulnerabilities: {maxSeverity: high}\n  externalImages: block\n",
			[]string{`policy.yaml:7: spec.externalImages: "block" is not one of deny, warn, allow`}},
		{"externalImages without rules", header + "spec:\n  externalImages: warn\n",
			[]string{`policy.yaml:6: spec.externalImages: has no effect without a vulnerabilities rule or a signatures requirement`}},
		{"admission mutate not a bool", header + "spec:\n  admission: {mutate: nope}\n",
			[]string{`policy.yaml:6: spec.admission.mutate: must be true or false, got the string "nope"`}},
		{"admission unknown field", header + "spec:\n  admission: {mutant: false}\n",
			[]string{`policy.yaml:6: spec.admission: unknown field "mutant" (did you mean "mutate"?)`}},
		{"unknown top-level", header + "spec: {}\nstatus: {}\n",
			[]string{`policy.yaml:6: unknown field "status" (known: apiVersion, kind, metadata, spec)`}},
		{"wrong apiVersion", "apiVersion: v1\nkind: Policy\nmetadata: {name: p}\nspec: {}\n",
			[]string{`policy.yaml:1: apiVersion: "v1" is not supported (want customs.dev/v1alpha1)`}},
		{"wrong kind", "apiVersion: customs.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata: {name: p}\nspec: {}\n",
			[]string{`policy.yaml:2: kind: "ClusterImagePolicy" is not supported (want Policy)`}},
		{"missing everything", "foo: 1\n",
			[]string{`policy.yaml:1: unknown field "foo" (known: apiVersion, kind, metadata, spec)`,
				`policy.yaml:1: apiVersion: is required (customs.dev/v1alpha1)`, `policy.yaml:1: kind: is required (Policy)`,
				`policy.yaml:1: metadata.name: is required`, `policy.yaml:1: spec: is required (an empty spec: {} allows everything in its scope)`}},
		{"bad name", "apiVersion: customs.dev/v1alpha1\nkind: Policy\nmetadata:\n  name: Prod_Policy!\nspec: {}\n",
			[]string{`policy.yaml:4: metadata.name: "Prod_Policy!" is not a valid policy name (lower-case letters, digits, '-', '_' and '.', starting and ending with a letter or digit, at most 253)`}},
		{"not a mapping", "- a\n- b\n", []string{`policy.yaml:1: must be a mapping, got a list`}},
		{"null spec", header + "spec:\n", []string{`policy.yaml:5: spec: must be a mapping, got null (write spec: {} to allow everything in scope)`}},
		{"number for string", header + "spec:\n  tags:\n    deny: [latest, 1.0]\n",
			[]string{`policy.yaml:7: spec.tags.deny[1]: must be a string, got a number (1.0) (quote it to make it a string)`}},
		{"string for bool", header + "spec:\n  tags:\n    requireDigest: \"yes\"\n",
			[]string{`policy.yaml:7: spec.tags.requireDigest: must be true or false, got the string "yes"`}},
		{"duplicate key", header + "spec:\n  mode: warn\n  mode: enforce\n",
			[]string{`policy.yaml:7: spec.mode: field is set twice (first on line 6)`}},
		{"bad mode", header + "spec:\n  mode: block\n", []string{`policy.yaml:6: spec.mode: "block" is not one of enforce, warn, audit`}},
		{"bypassable registry", header + "spec:\n  registries:\n    allowed:\n      - corp.example\n      - nginx\n",
			[]string{`policy.yaml:9: spec.registries.allowed[1]: pattern "nginx" must start with a registry host (for Docker Hub write docker.io/nginx)`}},
		{"empty allowed", header + "spec:\n  registries:\n    allowed: []\n",
			[]string{`policy.yaml:7: spec.registries.allowed: an empty list would allow nothing; leave the field out to allow every registry`}},
		{"empty scope list", header + "spec:\n  scope:\n    namespaces: []\n",
			[]string{`policy.yaml:7: spec.scope.namespaces: an empty list selects nothing; leave the field out to select every namespace`}},
		{"bad namespace", header + "spec:\n  scope:\n    namespaces: [Kube_System]\n",
			[]string{`policy.yaml:7: spec.scope.namespaces[0]: "Kube_System" is not a valid Kubernetes namespace name`}},
		{"duplicate in list", header + "spec:\n  scope:\n    projects: [kuard, kuard]\n",
			[]string{`policy.yaml:7: spec.scope.projects[1]: "kuard" is listed twice (first on line 7)`}},
		{"threshold-less options", header + "spec:\n  vulnerabilities:\n    requireScan: true\n    ignoreUnfixed: true\n",
			[]string{`policy.yaml:8: spec.vulnerabilities.ignoreUnfixed: has no effect without maxSeverity`}},
		{"allowUnscannable without a scan requirement", header + "spec:\n  vulnerabilities:\n    requireScan: false\n    allowUnscannable: true\n",
			[]string{`policy.yaml:8: spec.vulnerabilities.allowUnscannable: has no effect: the rule does not require a scan`,
				`policy.yaml:7: spec.vulnerabilities: needs maxSeverity or requireScan: true (without them the rule checks nothing)`}},
		{"bad unknownAs", header + "spec:\n  vulnerabilities:\n    maxSeverity: low\n    unknownAs: skip\n",
			[]string{`policy.yaml:8: spec.vulnerabilities.unknownAs: "skip" is not one of none, low, medium, high, critical, ignore`}},
		{"allowlist entry", header + "spec:\n  vulnerabilities:\n    maxSeverity: low\n    allowlist:\n      - package: musl\n        expires: next week\n      - id: CVE 1\n",
			[]string{`policy.yaml:10: spec.vulnerabilities.allowlist[0].expires: "next week" is not a date (2026-01-31) or an RFC 3339 time (2026-01-31T12:00:00Z)`,
				`policy.yaml:9: spec.vulnerabilities.allowlist[0].id: is required (an advisory id or alias such as CVE-2019-14697)`,
				`policy.yaml:11: spec.vulnerabilities.allowlist[1].id: "CVE 1" is not an advisory id (it holds ' ')`}},
		{"bad regexp", header + "spec:\n  names:\n    pattern: '[a-z'\n",
			[]string{`policy.yaml:7: spec.names.pattern: "[a-z" is not a valid regular expression: missing closing ]: ` + "`[a-z)$`"}},
		{"signer both", header + "spec:\n  signatures:\n    required: true\n    signers:\n      - keyless: {issuer: 'http://x', subject: '*'}\n",
			[]string{`policy.yaml:9: spec.signatures.signers[0].keyless.issuer: issuer "http://x" is not an https URL`,
				`policy.yaml:9: spec.signatures.signers[0].keyless.subject: "*" would accept anyone the issuer vouches for; name the identity (an email or URI, '*' for a run of characters)`}},
		{"signer bad key", header + "spec:\n  signatures:\n    required: true\n    signers:\n      - key: not a key\n",
			[]string{`policy.yaml:9: spec.signatures.signers[0].key: key is not PEM (-----BEGIN PUBLIC KEY----- ...)`}},
		{"signatures without required", header + "spec:\n  signatures: {}\n",
			[]string{`policy.yaml:6: spec.signatures.required: is required (true to require a signature)`}},
		{"alias", header + "spec:\n  scope: &s {projects: [a]}\n  registries: *s\n",
			[]string{`policy.yaml:7: spec.registries: YAML aliases are not supported in policies`}},
		{"merge key", header + "spec:\n  <<: {mode: warn}\n",
			[]string{`policy.yaml:6: spec: YAML merge keys (<<) are not supported in policies`}},
		{"yaml syntax", header + "spec:\n  mode: [warn\n", []string{`policy.yaml:6: invalid YAML: did not find expected ',' or ']'`}},
		{"yaml block", header + "spec:\n  mode: warn\n bad: 1\n", []string{`policy.yaml:7: invalid YAML: did not find expected key`}},
		{"yaml mapping value", header + "spec:\n  mode: warn: x\n", []string{`policy.yaml:6: invalid YAML: mapping values are not allowed in this context`}},
		{"tab indentation", header + "spec:\n\tmode: warn\n", []string{`policy.yaml:6: invalid YAML: found character that cannot start any token`}},
		{"rego syntax", header + "spec:\n  rego:\n    modules:\n      - name: a.rego\n        source: |\n          package customs\n          deny contains msg if {\n",
			[]string{`policy.yaml:12: spec.rego.modules[0].source: rego rego_parse_error: a.rego line 3: unexpected eof token`}},
		{"rego unsafe", header + "spec:\n  rego:\n    modules:\n      - name: a.rego\n        source: |\n          package customs\n\n          deny contains msg if { x == 1 }\n",
			[]string{`policy.yaml:12: spec.rego.modules[0].source: rego rego_unsafe_var_error: a.rego line 3: var msg is unsafe`}},
		{"rego forbidden builtin", header + "spec:\n  rego:\n    modules:\n      - name: a.rego\n        source: |\n          package customs\n          deny contains r.body if { r := http.send({\"method\": \"get\", \"url\": \"http://x\"}) }\n",
			[]string{`policy.yaml:11: spec.rego.modules[0].source: rego rego_type_error: a.rego line 2: undefined function http.send`}},
		{"rego no deny", header + "spec:\n  rego:\n    modules:\n      - name: a.rego\n        source: |\n          package other\n          allow := true\n",
			[]string{"policy.yaml:9: spec.rego.modules: the modules define no data.customs.deny (write `package customs` and `deny contains msg if { ... }`)"}},
		{"rego missing source", header + "spec:\n  rego:\n    modules:\n      - name: a.rego\n",
			[]string{`policy.yaml:8: spec.rego.modules[0].source: is required`}},
		{"duplicate policy", header + "spec: {}\n---\n" + header + "spec: {}\n",
			[]string{`policy.yaml:7: metadata.name: policy "p" is defined twice (first on line 1)`}},
		{"second document line numbers", header + "spec: {}\n---\n" + strings.Replace(header, "name: p", "name: q", 1) + "spec:\n  mode: nope\n",
			[]string{`policy.yaml:12: spec.mode: "nope" is not one of enforce, warn, audit`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := Parse("policy.yaml", []byte(tc.doc))
			if err == nil {
				t.Fatalf("no error; parsed %+v", ps)
			}
			if ps != nil {
				t.Errorf("policies returned with an error: %+v", ps)
			}
			var got []string
			for _, e := range unjoin(err) {
				var pe *ParseError
				if !errors.As(e, &pe) {
					t.Errorf("error %v is not a *ParseError", e)
				}
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestParseLimits(t *testing.T) {
	big := make([]byte, MaxFileSize+1)
	if _, err := Parse("big.yaml", big); err == nil || !strings.Contains(err.Error(), "more than the 1048576") {
		t.Errorf("oversized file: %v", err)
	}
	var b strings.Builder
	for i := 0; i < 80; i++ {
		b.WriteString(header + "spec: {mode: x}\n---\n")
	}
	_, err := Parse("many.yaml", []byte(b.String()))
	if n := len(unjoin(err)); n != maxErrors+1 || !strings.Contains(err.Error(), "too many errors") {
		t.Errorf("%d errors reported, want %d and a too-many note", n, maxErrors+1)
	}
	ps, err := Parse("empty.yaml", []byte("---\n# nothing\n---\n"))
	if err != nil || len(ps) != 0 {
		t.Errorf("empty documents: %v %v", ps, err)
	}
}

// TestDocsExample: the example at the top of docs/policy.md parses and
// compiles.
func TestDocsExample(t *testing.T) {
	md, err := os.ReadFile("../../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(md), "```yaml\n")
	if !ok {
		t.Fatal("docs/policy.md has no yaml example")
	}
	example, _, _ := strings.Cut(rest, "```")
	ps, err := Parse("docs/policy.md", []byte(example))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(ps, Config{}); err != nil {
		t.Fatal(err)
	}
}
