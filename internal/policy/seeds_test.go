package policy

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parseFile(t *testing.T, path string) []*Policy {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := Parse(filepath.Base(path), data)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func compile(t *testing.T, cfg Config, ps ...*Policy) *Engine {
	t.Helper()
	e, err := Compile(ps, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func projectPolicy(t *testing.T, s ProjectSettings) *Policy {
	t.Helper()
	p, err := ProjectPolicy(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSeed000 replays the Tanzu Mission Control + Harbor demo: kuard:blue
// runs in development and staging, is refused in production (registry not
// allowed); replicated into the internal registry its pull is refused for
// CVE-2019-14697 until the CVE is allowlisted for the project, and again
// once the entry expires.
func TestSeed000(t *testing.T) {
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	envs := parseFile(t, "testdata/seed000.yaml")
	kuard := DefaultProjectSettings("kuard")
	kuard.PreventVulnerable, kuard.Severity = true, High
	engine := func() *Engine { return compile(t, Config{Now: clock}, append(envs, projectPolicy(t, kuard))...) }
	e := engine()

	external := mustImage(t, "gcr.io/kuar-demo/kuard-amd64:blue")
	for _, tc := range []struct {
		ns, env string
		want    Outcome
	}{
		{"development", "development", Allowed},
		{"test", "staging", Allowed},
		{"production", "production", Denied},
	} {
		d := eval(t, e, &Input{Image: external, Namespace: tc.ns, Environment: tc.env})
		if d.Outcome != tc.want {
			t.Fatalf("%s: %s, want %s: %s", tc.env, d.Outcome, tc.want, d.Message())
		}
	}
	d := eval(t, e, &Input{Image: external, Namespace: "production", Environment: "production"})
	if want := `policy "production", rule registries: gcr.io/kuar-demo/kuard-amd64 is not from an allowed registry (allowed: registry.tools.aws.crdant.io). To allow, use an image from registry.tools.aws.crdant.io (replicate it there first).`; d.Message() != want {
		t.Errorf("production message\n%s\nwant\n%s", d.Message(), want)
	}

	// Replicated into the internal registry: not scanned yet, then scanned.
	internal := mustImage(t, "registry.tools.aws.crdant.io/kuard/kuar-demo/kuard-amd64:blue")
	pull := &Input{Image: internal, Digest: "sha256:" + strings.Repeat("1", 64), Project: "kuard"}
	if d := eval(t, e, pull); d.Outcome != Denied || !d.Violations[0].ScanPending || !strings.Contains(d.Message(), "scan pending") {
		t.Fatalf("unscanned pull: %s", d.Message())
	}
	pull.Scan = done(Finding{ID: "ALPINE-CVE-2019-14697", Aliases: []string{"CVE-2019-14697"}, Package: "musl", Installed: "1.1.20-r4", Fixed: []string{"1.1.20-r5"}, Severity: High, Status: Fixed})
	run := *pull
	run.Namespace, run.Environment = "production", "production"
	blocked := `The severity of vulnerability of the image: "high" is equal or higher than the threshold in project setting: "high". Blocked by CVE-2019-14697 (musl 1.1.20-r4, fixed in 1.1.20-r5). To allow, fix the image or run: customs allowlist add CVE-2019-14697 --project kuard --expires 30d --reason "…"`
	for _, in := range []*Input{pull, &run} {
		d := eval(t, e, in)
		if d.Outcome != Denied || d.Message() != blocked {
			t.Fatalf("scanned (namespace %q): %s\nwant %s", in.Namespace, d.Message(), blocked)
		}
	}

	// The CVE is allowlisted for the project, for 30 days.
	expires := now.Add(30 * 24 * time.Hour)
	kuard.Allowlist = []AllowlistEntry{{ID: "CVE-2019-14697", Expires: &expires, Reason: "demo: not reachable", AddedBy: "alice"}}
	e = engine()
	for _, in := range []*Input{pull, &run} {
		d := eval(t, e, in)
		if d.Outcome != Allowed || !d.ValidUntil.Equal(expires) {
			t.Fatalf("allowlisted (namespace %q): %s valid until %v", in.Namespace, d.Message(), d.ValidUntil)
		}
	}

	// After expiry it is refused again, and the decision says why.
	now = expires.Add(time.Second)
	d = eval(t, e, pull)
	if d.Outcome != Denied || d.Message() != blocked {
		t.Fatalf("after expiry: %s", d.Message())
	}
	if len(d.Notes) != 1 || !strings.Contains(d.Notes[0], "project kuard allowlist entry CVE-2019-14697 (added by alice, reason \"demo: not reachable\") expired at 2026-05-31T09:00:00Z") {
		t.Errorf("notes %q", d.Notes)
	}
}

// TestSeed001 replays Harbor with PKS: a project threshold of low refuses
// the ubuntu image with Harbor's message; at high ubuntu pulls and
// elasticsearch (a High finding) is refused; with content trust on, an
// unsigned image is refused.
func TestSeed001(t *testing.T) {
	ubuntu := &Input{Image: mustImage(t, "harbor.mypksdemo.com/testproject/ubuntu:latest"), Project: "testproject",
		Scan: done(finding("CVE-2018-0001", Medium, "systemd", "237-3ubuntu10"), finding("CVE-2018-0002", Low, "tar", "1.29"))}
	elastic := &Input{Image: mustImage(t, "harbor.mypksdemo.com/testproject/elasticsearch:latest"), Project: "testproject",
		Scan: done(finding("CVE-2018-0003", High, "openjdk", "8u151", "8u161"), finding("CVE-2018-0001", Medium, "systemd", "237-3ubuntu10"))}
	settings := DefaultProjectSettings("testproject")
	settings.PreventVulnerable, settings.Severity, settings.ContentTrust = true, Low, false
	e := compile(t, Config{}, projectPolicy(t, settings))
	d := eval(t, e, ubuntu)
	if want := `The severity of vulnerability of the image: "medium" is equal or higher than the threshold in project setting: "low".`; d.Outcome != Denied || !strings.HasPrefix(d.Message(), want) {
		t.Fatalf("threshold low: %s\nwant prefix %s", d.Message(), want)
	}

	settings.Severity, settings.ContentTrust = High, true
	e = compile(t, Config{}, projectPolicy(t, settings))
	signed := &Signatures{Verified: []Signature{{KeyFingerprint: "sha256:developer"}}}
	ubuntu.Signatures, elastic.Signatures = signed, signed
	if d := eval(t, e, ubuntu); d.Outcome != Allowed {
		t.Fatalf("ubuntu at high: %s", d.Message())
	}
	d = eval(t, e, elastic)
	if want := `The severity of vulnerability of the image: "high" is equal or higher than the threshold in project setting: "high". Blocked by CVE-2018-0003 (openjdk 8u151, fixed in 8u161).`; d.Outcome != Denied || !strings.HasPrefix(d.Message(), want) {
		t.Fatalf("elasticsearch at high: %s\nwant prefix %s", d.Message(), want)
	}
	ubuntu.Signatures = &Signatures{}
	if d := eval(t, e, ubuntu); d.Outcome != Denied || d.Rule != RuleSignatures || !strings.Contains(d.Message(), "is not signed") {
		t.Fatalf("unsigned with content trust: %s", d.Message())
	}
	ubuntu.Signatures = nil
	if d := eval(t, e, ubuntu); d.Outcome != Denied || !strings.Contains(d.Message(), "signature verification not available") {
		t.Fatalf("content trust without verification: %s", d.Message())
	}
}

// TestSeed002 evaluates the OPA image enforcer's rules, ported to Rego and
// written as built-in rules, on the seed's mock inputs (as `opa eval` is
// used there): both answer alike, the allowed review is allowed and the
// denied one denied.
func TestSeed002(t *testing.T) {
	engines := map[string]*Engine{
		"rego":    compile(t, Config{}, parseFile(t, "testdata/seed002/rego.yaml")...),
		"builtin": compile(t, Config{}, parseFile(t, "testdata/seed002/builtin.yaml")...),
	}
	review := func(e *Engine, file string) (bool, []string) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var containers []json.RawMessage
		if err := json.Unmarshal(data, &containers); err != nil {
			t.Fatal(err)
		}
		allowed := true
		var reasons []string
		for _, c := range containers {
			in, err := ParseInput(c)
			if err != nil {
				t.Fatal(err)
			}
			d := eval(t, e, in)
			if !d.Allowed() {
				allowed = false
				reasons = append(reasons, d.Image+": "+d.Message())
			}
		}
		return allowed, reasons
	}
	for name, e := range engines {
		if ok, why := review(e, "testdata/seed002/allowed.json"); !ok {
			t.Errorf("%s: the allowed review is denied: %q", name, why)
		}
		ok, why := review(e, "testdata/seed002/denied.json")
		if ok || len(why) != 1 || !strings.Contains(why[0], "wordpress") {
			t.Errorf("%s: the denied review: allowed %v, %q", name, ok, why)
		}
	}
	// The other conventions, on inputs written here.
	for _, tc := range []struct {
		name string
		in   Input
		want bool
	}{
		{"latest", Input{Image: mustImage(t, "registry.corp.example/team/app:latest"), Namespace: "web"}, false},
		{"no tag means latest", Input{Image: mustImage(t, "registry.corp.example/team/app"), Namespace: "web"}, false},
		{"naming", Input{Image: mustImage(t, "registry.corp.example/team/sub/app:1"), Namespace: "web"}, false},
		{"production registry", Input{Image: mustImage(t, "docker.io/team/app:1"), Namespace: "production", Scan: done()}, false},
		{"other namespace any registry", Input{Image: mustImage(t, "docker.io/team/app:1"), Namespace: "web"}, true},
	} {
		for name, e := range engines {
			if d := eval(t, e, &tc.in); d.Allowed() != tc.want {
				t.Errorf("%s, %s: allowed %v, want %v: %s", tc.name, name, d.Allowed(), tc.want, d.Message())
			}
		}
	}
}

// TestSeed003 replays IBM Container Image Security Enforcement: the four
// trust/va combinations of the cluster-wide policy, trust checked first,
// and the kube-system namespace policy replacing the cluster one.
func TestSeed003(t *testing.T) {
	latest := &Input{Image: mustImage(t, "us.icr.io/space/tomcat:latest"), Namespace: "default", Signatures: &Signatures{},
		Scan: done(finding("CVE-2018-8014", High, "tomcat", "8.5.0", "8.5.31"))}
	v2 := &Input{Image: mustImage(t, "us.icr.io/space/tomcat:v2"), Namespace: "default", Signatures: &Signatures{}, Scan: done()}
	kubeSystem := doc("kube-system", "scope: {namespaces: [kube-system]}")
	for _, tc := range []struct {
		name      string
		trust, va bool
		in        *Input
		want      Outcome
		rule      Rule
	}{
		{"case 1: neither", false, false, latest, Allowed, ""},
		{"case 2: va", false, true, latest, Denied, RuleVulnerabilities},
		{"case 3: trust", true, false, v2, Denied, RuleSignatures},
		{"case 4: both, trust first", true, true, latest, Denied, RuleSignatures},
		{"case 4: both, clean and unsigned", true, true, v2, Denied, RuleSignatures},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := "scope: {repositories: ['*']}"
			if tc.trust {
				spec += "\nsignatures: {required: true}"
			}
			if tc.va {
				spec += "\nvulnerabilities: {maxSeverity: low}"
			}
			e := mustEngine(t, Config{}, doc("ibmcloud-default-cluster-image-policy", spec), kubeSystem)
			d := eval(t, e, tc.in)
			if d.Outcome != tc.want || d.Rule != tc.rule {
				t.Fatalf("%s by %s, want %s by %s: %s", d.Outcome, d.Rule, tc.want, tc.rule, d.Message())
			}
			ks := *tc.in
			ks.Namespace = "kube-system"
			if d := eval(t, e, &ks); d.Outcome != Allowed || d.Policies[0].Name != "kube-system" {
				t.Errorf("kube-system: %s", d.Message())
			}
		})
	}
	// Signed by a trusted source and clean: allowed with both switches on.
	signed := *v2
	signed.Signatures = &Signatures{Verified: []Signature{{KeyFingerprint: "sha256:trusted"}}}
	e := mustEngine(t, Config{}, doc("cluster", "signatures: {required: true}\nvulnerabilities: {maxSeverity: low}"))
	if d := eval(t, e, &signed); d.Outcome != Allowed {
		t.Errorf("signed and clean: %s", d.Message())
	}
}

// TestSeed004 is the CI gate's threshold: none passes, low/medium/high
// fail on an image with a High finding, critical passes.
func TestSeed004(t *testing.T) {
	in := &Input{Image: mustImage(t, "registry.example/app@sha256:"+strings.Repeat("2", 64)),
		Scan: done(finding("CVE-1", High, "a", "1"), finding("CVE-2", Medium, "b", "1"), finding("CVE-3", Low, "c", "1"))}
	for _, tc := range []struct {
		threshold string
		pass      bool
	}{
		{"none", true}, {"low", false}, {"medium", false}, {"high", false}, {"critical", true},
	} {
		p, err := ThresholdPolicy(tc.threshold)
		if err != nil {
			t.Fatal(err)
		}
		d, err := compile(t, Config{}, p).Evaluate(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed() != tc.pass {
			t.Errorf("threshold %s: allowed %v, want %v: %s", tc.threshold, d.Allowed(), tc.pass, d.Message())
		}
		want := `The severity of vulnerability of the image: "high" is equal or higher than the threshold of customs gate --threshold ` + tc.threshold + `: "` + tc.threshold + `".`
		if !tc.pass && !strings.HasPrefix(d.Message(), want) {
			t.Errorf("threshold %s: message %q, want it to start with %q", tc.threshold, d.Message(), want)
		}
	}
	p, _ := ThresholdPolicy("high")
	d := eval(t, compile(t, Config{}, p), &Input{Image: in.Image, Scan: &ScanSummary{Status: ScanRunning}})
	if d.Allowed() || !d.Violations[0].ScanPending {
		t.Errorf("gate on a running scan: %s", d.Message())
	}
	for _, bad := range []string{"", "High", "unknown", "severe"} {
		if _, err := ThresholdPolicy(bad); err == nil {
			t.Errorf("ThresholdPolicy(%q) succeeded", bad)
		}
	}
}
