package policy

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func regoDoc(name, src string) string {
	return doc(name, "rego:\n  modules:\n    - name: m.rego\n      source: |\n"+indentBy(src, "        "))
}

func indentBy(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = pre + l
	}
	return strings.Join(lines, "\n")
}

// TestRegoFailsClosed: a module that runs too long or errors is stopped
// within its time budget and denies with a clear message.
func TestRegoFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"endless loop", `package customs
deny contains "never" if {
  some i in numbers.range(1, 100000000)
  some j in numbers.range(1, 100000000)
  i * j < 0
}`, "rego evaluation failed, failing closed: evaluation did not finish within 50ms"},
		{"huge allocation", `package customs
deny contains "never" if { count(numbers.range(1, 10000000000)) < 0 }`, "rego evaluation failed, failing closed: evaluation did not finish within 50ms"},
		{"runtime error", `package customs
deny contains msg if { msg := sprintf("%d", [1 / 0]) }`, "rego evaluation failed, failing closed: m.rego:2: eval_builtin_error: div: divide by zero"},
		{"conflicting values", `package customs
x := 1 if input.image.tag != ""
x := 2 if input.image.registry != ""
deny contains "x" if { x == 3 }`, "rego evaluation failed, failing closed: m.rego:2: eval_conflict_error: complete rules must not produce multiple outputs"},
		{"not strings", `package customs
deny contains 42 if { true }`, "rego evaluation failed, failing closed: data.customs.deny must be a set of strings, but holds 42"},
		{"not a set", `package customs
deny := "no" if { true }`, "rego evaluation failed, failing closed: data.customs.deny must be a set of strings, got string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := mustEngine(t, Config{RegoTimeout: 50 * time.Millisecond}, regoDoc("p", tc.src))
			start := time.Now()
			d := eval(t, e, &Input{Image: mustImage(t, "registry.example/a:1")})
			took := time.Since(start)
			if d.Outcome != Denied || d.Rule != RuleRego || !d.Violations[0].Failed {
				t.Fatalf("decision %+v, want a failed-closed denial", d)
			}
			if d.Violations[0].Message != tc.want {
				t.Errorf("message %q\nwant    %q", d.Violations[0].Message, tc.want)
			}
			if took > 2*time.Second {
				t.Errorf("evaluation took %v, not bounded by the 50ms budget", took)
			}
		})
	}
	// A caller's own deadline bounds evaluation too.
	e := mustEngine(t, Config{RegoTimeout: time.Minute}, regoDoc("p", `package customs
deny contains "never" if { count(numbers.range(1, 10000000000)) < 0 }`))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	d, err := e.Evaluate(ctx, &Input{Image: mustImage(t, "registry.example/a:1")})
	if err != nil || d.Outcome != Denied || !d.Violations[0].Failed {
		t.Fatalf("caller deadline: %v %+v", err, d)
	}
}

// TestRegoInput: modules see the documented input.
func TestRegoInput(t *testing.T) {
	e := mustEngine(t, Config{}, regoDoc("p", `package customs
deny contains json.marshal(input) if { true }`))
	in := &Input{
		Image: mustImage(t, "Registry.Corp.Example:5000/team/app"), Digest: "sha256:" + strings.Repeat("0", 64),
		Environment: "production", Namespace: "web", Project: "team",
		Scan: &ScanSummary{Status: ScanDone, VulnDBRevision: 3, Findings: []Finding{
			{ID: "ALPINE-CVE-2019-14697", Aliases: []string{"CVE-2019-14697"}, Package: "musl", Installed: "1.1.20-r4", Fixed: []string{"1.1.20-r5"}, Severity: High},
			{ID: "CVE-2", Package: "bash", SourcePackage: "bash-src", Installed: "5", Severity: Unknown, Status: WontFix},
		}},
		Signatures:      &Signatures{Verified: []Signature{{KeyFingerprint: "sha256:ab"}}},
		SystemAllowlist: SystemAllowlist{Revision: "9", Entries: []AllowlistEntry{{ID: "CVE-3"}}},
		Annotations:     map[string]string{"break-glass.image-policy.k8s.io/ticket": "INC-1"},
	}
	d := eval(t, e, in)
	var got map[string]any
	if err := json.Unmarshal([]byte(d.Violations[0].Message), &got); err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal([]byte(`{
	  "image": {"reference": "registry.corp.example:5000/team/app", "name": "registry.corp.example:5000/team/app",
	            "registry": "registry.corp.example:5000", "repository": "team/app", "tag": "latest", "digest": ""},
	  "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
	  "environment": "production", "namespace": "web", "project": "team",
	  "scan": {"status": "done", "reason": "", "vulndbRevision": 3,
	           "counts": {"critical": 0, "high": 1, "medium": 0, "low": 0, "none": 0, "unknown": 1},
	           "findings": [
	             {"id": "ALPINE-CVE-2019-14697", "aliases": ["CVE-2019-14697"], "package": "musl", "sourcePackage": "",
	              "installed": "1.1.20-r4", "fixed": ["1.1.20-r5"], "severity": "high", "status": "fixed"},
	             {"id": "CVE-2", "aliases": [], "package": "bash", "sourcePackage": "bash-src", "installed": "5", "fixed": [],
	              "severity": "unknown", "status": "wont-fix"}]},
	  "signatures": {"verified": [{"keyFingerprint": "sha256:ab", "issuer": "", "subject": ""}]},
	  "external": false, "annotations": {"break-glass.image-policy.k8s.io/ticket": "INC-1"}
	}`), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		t.Errorf("rego input:\n%s", g)
	}
	d = eval(t, e, &Input{Image: mustImage(t, "nginx")})
	if !strings.Contains(d.Violations[0].Message, `"scan":null`) || !strings.Contains(d.Violations[0].Message, `"signatures":null`) {
		t.Errorf("absent scan and signatures should be null: %s", d.Violations[0].Message)
	}
}

// TestRegoForbiddenBuiltins: modules cannot do I/O or read the clock.
func TestRegoForbiddenBuiltins(t *testing.T) {
	for _, b := range []string{`http.send({"method": "get", "url": "http://127.0.0.1:1"})`, "time.now_ns()", `net.lookup_ip_addr("example.com")`, "opa.runtime()", `rand.intn("x", 10)`} {
		src := "package customs\ndeny contains sprintf(\"%v\", [x]) if { x := " + b + " }\n"
		_, err := Parse("p.yaml", []byte(regoDoc("p", src)))
		if err == nil || !strings.Contains(err.Error(), "undefined function") {
			t.Errorf("%s: %v, want undefined function", b, err)
		}
	}
}

// TestRegoCompiledOnce: evaluations reuse the prepared query (no compile
// per evaluation), so many evaluations stay cheap.
func TestRegoCompiledOnce(t *testing.T) {
	e := mustEngine(t, Config{}, regoDoc("p", `package customs
deny contains "latest" if input.image.tag == "latest"`))
	in := &Input{Image: mustImage(t, "registry.example/a:1")}
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := e.Evaluate(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	})
	// A compile allocates tens of thousands of objects; an evaluation a
	// few hundred.
	if allocs > 2000 {
		t.Errorf("%v allocations per evaluation: is the module compiled each time?", allocs)
	}
}
