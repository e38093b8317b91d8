package policy

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// doc builds one policy document from a name and the lines of its spec.
func doc(name, spec string) string {
	return fmt.Sprintf("apiVersion: customs.dev/v1alpha1\nkind: Policy\nmetadata:\n  name: %s\nspec:\n%s\n---\n", name, indent(spec))
}

func indent(s string) string {
	if strings.TrimSpace(s) == "" {
		return "  {}"
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n")
}

func mustEngine(t testing.TB, cfg Config, docs ...string) *Engine {
	t.Helper()
	ps, err := Parse(t.Name()+".yaml", []byte(strings.Join(docs, "")))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Compile(ps, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustImage(t testing.TB, ref string) Image {
	t.Helper()
	img, err := ParseImage(ref)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func eval(t testing.TB, e *Engine, in *Input) *Decision {
	t.Helper()
	d, err := e.Evaluate(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func policyNames(d *Decision) []string {
	var out []string
	for _, p := range d.Policies {
		out = append(out, p.Name)
	}
	return out
}

// TestPrecedence is the precedence table of docs/policy.md: which policies
// apply to which use of which image.
func TestPrecedence(t *testing.T) {
	e := mustEngine(t, Config{},
		doc("default", ""),
		doc("repo-default", "scope: {repositories: [registry.corp.example/kuard/**]}"),
		doc("env-prod", "scope: {environments: [production]}"),
		doc("env-staging", "scope: {environments: [staging, test]}"),
		doc("env-prod-repo", "scope: {environments: [production], repositories: [registry.corp.example/**]}"),
		doc("env-prod-repo-exact", "scope: {environments: [production], repositories: [registry.corp.example/kuard/kuard-amd64]}"),
		doc("ns-payments", "scope: {namespaces: [payments]}"),
		doc("ns-payments-prod", "scope: {namespaces: [payments], environments: [production]}"),
		doc("ns-kube-system", "scope: {namespaces: [kube-system, ibm-system]}"),
		doc("tie-a", "scope: {environments: [dev]}"),
		doc("tie-b", "scope: {environments: [dev]}"),
		doc("project-kuard", "scope: {projects: [kuard]}"),
		doc("project-kuard-special", "scope: {projects: [kuard], repositories: [registry.corp.example/kuard/special-*]}"),
		doc("project-kuard-prod", "scope: {projects: [kuard], environments: [production], repositories: [registry.corp.example/kuard/special-*]}"),
	)
	const kuard = "registry.corp.example/kuard/kuard-amd64:blue"
	for _, tc := range []struct {
		name                  string
		env, ns, project, ref string
		want                  []string
	}{
		{"nothing known: the cluster default", "", "", "", "nginx", []string{"default"}},
		{"environment replaces the default", "production", "", "", "nginx", []string{"env-prod"}},
		{"environment listed among several", "test", "", "", "nginx", []string{"env-staging"}},
		{"unknown environment: the default", "qa", "", "", "nginx", []string{"default"}},
		{"repository glob refines the environment", "production", "", "", "registry.corp.example/other/x", []string{"env-prod-repo"}},
		{"the most specific glob wins", "production", "", "", kuard, []string{"env-prod-repo-exact"}},
		{"namespace replaces the environment", "staging", "payments", "", "nginx", []string{"ns-payments"}},
		{"namespace and environment beat namespace alone", "production", "payments", "", "nginx", []string{"ns-payments-prod"}},
		{"namespace beats an environment's repository glob", "production", "kube-system", "", kuard, []string{"ns-kube-system"}},
		{"namespace without environment", "", "ibm-system", "", "nginx", []string{"ns-kube-system"}},
		{"unknown namespace falls back to the environment", "production", "web", "", "nginx", []string{"env-prod"}},
		{"ties all apply", "dev", "", "", "nginx", []string{"tie-a", "tie-b"}},
		{"registry door: runtime default glob and project", "", "", "kuard", kuard, []string{"repo-default", "project-kuard"}},
		{"project glob refines the project", "", "", "kuard", "registry.corp.example/kuard/special-1", []string{"repo-default", "project-kuard-special"}},
		{"project glob with environment ranks above", "production", "", "kuard", "registry.corp.example/kuard/special-1", []string{"env-prod-repo", "project-kuard-prod"}},
		{"project without policy: runtime only", "", "", "other", "registry.corp.example/other/x", []string{"default"}},
		{"admission: namespace and project both apply", "production", "payments", "kuard", kuard, []string{"ns-payments-prod", "project-kuard"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := eval(t, e, &Input{Image: mustImage(t, tc.ref), Environment: tc.env, Namespace: tc.ns, Project: tc.project})
			if got := policyNames(d); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("applied %v, want %v", got, tc.want)
			}
			if d.Outcome != Allowed || d.Default {
				t.Errorf("outcome %s (default %v), want allowed by the empty policies", d.Outcome, d.Default)
			}
		})
	}
}

// TestDefaultOutcome: an image no policy matches gets the configured
// default, deny unless configured otherwise.
func TestDefaultOutcome(t *testing.T) {
	policies := []string{doc("prod", "scope: {environments: [production]}")}
	in := &Input{Image: mustImage(t, "nginx"), Environment: "development", Namespace: "dev-1"}

	d := eval(t, mustEngine(t, Config{}, policies...), in)
	if d.Outcome != Denied || !d.Default || d.Rule != RuleDefault || d.Policy != nil {
		t.Fatalf("decision %+v, want denied by default", d)
	}
	want := `No policy applies to docker.io/library/nginx in environment "development", namespace "dev-1", and the default is to deny. To allow, apply a policy whose scope matches the image (customs policy apply).`
	if d.Message() != want {
		t.Errorf("message %q\nwant     %q", d.Message(), want)
	}

	d = eval(t, mustEngine(t, Config{Default: Allowed}, policies...), in)
	if d.Outcome != Allowed || !d.Default || len(d.Violations) != 0 {
		t.Fatalf("decision %+v, want allowed by default", d)
	}
	if !strings.Contains(d.Message(), "no policy applies and the default is allow") {
		t.Errorf("message %q", d.Message())
	}
	if _, err := Compile(nil, Config{Default: "maybe"}); err == nil || !strings.Contains(err.Error(), `default "maybe" is not one of allowed, denied`) {
		t.Errorf("bad default: %v", err)
	}
}

// TestRegistriesRule covers allowed and denied lists and bypass attempts
// through the engine.
func TestRegistriesRule(t *testing.T) {
	e := mustEngine(t, Config{}, doc("p", `registries:
  allowed: ["*.corp.example", "gcr.io/kuar-demo/**", docker.io/library/*]
  denied: [registry.corp.example/sandbox/**]`))
	for _, tc := range []struct {
		ref  string
		want Outcome
		msg  string
	}{
		{"registry.corp.example/kuard/kuard:1", Allowed, ""},
		{"mirror.eu.corp.example:5000/a", Allowed, ""},
		{"gcr.io/kuar-demo/kuard-amd64:blue", Allowed, ""},
		{"nginx", Allowed, ""},
		{"bitnami/nginx", Denied, `docker.io/bitnami/nginx is not from an allowed registry (allowed: *.corp.example, gcr.io/kuar-demo/**, docker.io/library/*)`},
		{"evil.example/x.corp.example", Denied, "evil.example/x.corp.example is not from an allowed registry"},
		{"corp.example.evil.example/a", Denied, "is not from an allowed registry"},
		{"gcr.io/kuar-demo-evil/x", Denied, "is not from an allowed registry"},
		{"evil.example/gcr.io/kuar-demo/x", Denied, "is not from an allowed registry"},
		{"registry.corp.example/sandbox/a/b", Denied, `registry.corp.example/sandbox/a/b comes from "registry.corp.example/sandbox/**", which is denied`},
		{"REGISTRY.corp.example/sandbox/x", Denied, "which is denied"},
		{"registry.corp.example:8443/sandbox/x", Denied, "which is denied"},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			d := eval(t, e, &Input{Image: mustImage(t, tc.ref)})
			if d.Outcome != tc.want {
				t.Fatalf("outcome %s, want %s: %s", d.Outcome, tc.want, d.Message())
			}
			if tc.want == Denied {
				if d.Rule != RuleRegistries || !strings.Contains(d.Violations[0].Message, tc.msg) {
					t.Errorf("rule %s message %q, want %q", d.Rule, d.Violations[0].Message, tc.msg)
				}
				if !strings.HasPrefix(d.Message(), `policy "p", rule registries: `) {
					t.Errorf("door message %q", d.Message())
				}
			}
		})
	}
}

func TestInputImageNormalised(t *testing.T) {
	e := mustEngine(t, Config{}, doc("p", `registries: {allowed: [registry.corp.example]}`))
	// A door that filled Image by hand with an upper-case host or Docker
	// Hub's legacy name is read as ParseImage would have written it.
	d := eval(t, e, &Input{Image: Image{Registry: "Registry.Corp.Example", Repository: "a"}})
	if d.Outcome != Allowed {
		t.Errorf("upper-case host: %s", d.Message())
	}
	d = eval(t, mustEngine(t, Config{}, doc("p", `registries: {allowed: [docker.io/library/*]}`)), &Input{Image: Image{Registry: "index.docker.io", Repository: "nginx"}})
	if d.Outcome != Allowed || d.Image != "docker.io/library/nginx" {
		t.Errorf("legacy hub name: %s %s", d.Image, d.Message())
	}
	for _, bad := range []Input{
		{},
		{Image: Image{Registry: "a.example"}},
		{Image: Image{Registry: "a.example/x", Repository: "b"}},
		{Image: Image{Registry: "a.example", Repository: "x/../y"}},
		{Image: Image{Registry: "a.example", Repository: "x//y"}},
		{Image: Image{Registry: "a.example", Repository: "x"}, Scan: &ScanSummary{Status: "finished"}},
		{Image: Image{Registry: "a.example", Repository: "x"}, Scan: &ScanSummary{Status: ScanDone, Findings: []Finding{{ID: "CVE-1", Status: "maybe"}}}},
		{Image: Image{Registry: "a.example", Repository: "x"}, Scan: &ScanSummary{Status: ScanDone, Findings: []Finding{{}}}},
		{Image: Image{Registry: "a.example", Repository: "x"}, SystemAllowlist: SystemAllowlist{Entries: []AllowlistEntry{{ID: "bad id"}}}},
	} {
		if _, err := e.Evaluate(context.Background(), &bad); err == nil {
			t.Errorf("Evaluate(%+v) succeeded, want an error naming the field", bad)
		}
	}
}

func TestTagsAndNames(t *testing.T) {
	e := mustEngine(t, Config{}, doc("p", `tags:
  deny: [latest, "*-snapshot"]
  requireDigest: false
names:
  pattern: '[a-z]+/[a-z0-9-]+'`))
	dig := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		ref, digest string
		rule        Rule
		msg         string
	}{
		{"registry.example/team/app:1.0", "", "", ""},
		{"registry.example/team/app@" + dig, "", "", ""},
		{"registry.example/team/app:latest", "", RuleTags, `tag "latest" is denied`},
		{"registry.example/team/app", dig, RuleTags, `the reference has no tag, which means "latest", and "latest" is denied`},
		{"registry.example/team/app:2.0-snapshot", "", RuleTags, `tag "2.0-snapshot" is denied ("*-snapshot")`},
		{"registry.example/Team_/app:1", "", RuleNames, ""},
		{"registry.example/team/sub/app:1", "", RuleNames, `repository "team/sub/app" does not match the naming convention "[a-z]+/[a-z0-9-]+"`},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			img, err := ParseImage(tc.ref)
			if err != nil {
				if tc.rule == RuleNames && tc.msg == "" {
					return // not even a reference
				}
				t.Fatal(err)
			}
			d := eval(t, e, &Input{Image: img, Digest: tc.digest})
			if tc.rule == "" {
				if d.Outcome != Allowed {
					t.Fatalf("denied: %s", d.Message())
				}
				return
			}
			if d.Outcome != Denied || d.Rule != tc.rule || !strings.Contains(d.Violations[0].Message, tc.msg) {
				t.Fatalf("%s by %s: %q, want %s %q", d.Outcome, d.Rule, d.Violations[0].Message, tc.rule, tc.msg)
			}
			if tc.digest != "" && !strings.Contains(d.Message(), "reference the image by digest: registry.example/team/app@"+dig) {
				t.Errorf("remedy should name the exact digest reference: %s", d.Message())
			}
		})
	}
	e = mustEngine(t, Config{}, doc("p", "tags: {requireDigest: true}"))
	if d := eval(t, e, &Input{Image: mustImage(t, "registry.example/a:1"), Digest: dig}); d.Outcome != Denied || !strings.Contains(d.Message(), "must name a digest") {
		t.Errorf("tag reference with requireDigest: %s", d.Message())
	}
	if d := eval(t, e, &Input{Image: mustImage(t, "registry.example/a:1@"+dig)}); d.Outcome != Allowed {
		t.Errorf("tag and digest reference with requireDigest: %s", d.Message())
	}
}

func finding(id string, sev Severity, pkg, installed string, fixed ...string) Finding {
	return Finding{ID: id, Package: pkg, Installed: installed, Fixed: fixed, Severity: sev}
}

func done(fs ...Finding) *ScanSummary {
	return &ScanSummary{Status: ScanDone, VulnDBRevision: 7, Findings: fs}
}

// TestThreshold: findings at or above maxSeverity deny, as Harbor's
// "equal or higher than the threshold" and the CI gate of seed 004 say.
func TestThreshold(t *testing.T) {
	scan := done(
		finding("CVE-2024-0001", Medium, "openssl", "3.0.1", "3.0.2"),
		finding("CVE-2024-0002", Low, "zlib", "1.2"),
	)
	for _, tc := range []struct {
		threshold string
		want      Outcome
		highest   string
	}{
		{"none", Denied, "medium"},
		{"low", Denied, "medium"},
		{"medium", Denied, "medium"},
		{"high", Allowed, ""},
		{"critical", Allowed, ""},
	} {
		t.Run(tc.threshold, func(t *testing.T) {
			e := mustEngine(t, Config{}, doc("p", "scope: {projects: [testproject]}\nvulnerabilities: {maxSeverity: "+tc.threshold+"}"))
			d := eval(t, e, &Input{Image: mustImage(t, "harbor.example/testproject/ubuntu:latest"), Project: "testproject", Scan: scan})
			if d.Outcome != tc.want {
				t.Fatalf("outcome %s, want %s: %s", d.Outcome, tc.want, d.Message())
			}
			if tc.want == Denied {
				want := fmt.Sprintf(`The severity of vulnerability of the image: %q is equal or higher than the threshold in project setting: %q.`, tc.highest, tc.threshold)
				if !strings.HasPrefix(d.Message(), want) {
					t.Errorf("message %q\nwant prefix %q", d.Message(), want)
				}
			}
		})
	}
}

func TestUnknownSeverityAndUnfixed(t *testing.T) {
	scan := done(
		finding("CVE-2024-0003", Unknown, "busybox", "1.30"),
		finding("CVE-2024-0004", High, "curl", "7.0"), // no fix
		Finding{ID: "CVE-2024-0005", Package: "bash", Installed: "5", Severity: Critical, Status: WontFix},
	)
	for _, tc := range []struct {
		name, spec string
		want       []string // blocking ids
	}{
		{"unknown counts as critical by default", "maxSeverity: critical", []string{"CVE-2024-0003", "CVE-2024-0005"}},
		{"unknownAs low under a high threshold", "maxSeverity: high\nunknownAs: low", []string{"CVE-2024-0005", "CVE-2024-0004"}},
		{"unknownAs high", "maxSeverity: high\nunknownAs: high", []string{"CVE-2024-0005", "CVE-2024-0003", "CVE-2024-0004"}},
		{"unknownAs ignore", "maxSeverity: none\nunknownAs: ignore", []string{"CVE-2024-0005", "CVE-2024-0004"}},
		{"ignoreUnfixed leaves no-fix and wont-fix out", "maxSeverity: low\nignoreUnfixed: true\nunknownAs: ignore", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := mustEngine(t, Config{}, doc("p", "vulnerabilities:\n"+indent(tc.spec)))
			d := eval(t, e, &Input{Image: mustImage(t, "registry.example/a"), Scan: scan})
			var got []string
			if len(d.Violations) > 0 {
				for _, f := range d.Violations[0].Findings {
					got = append(got, f.ID)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("blocking %v, want %v (%s)", got, tc.want, d.Message())
			}
			if tc.name == "unknownAs high" {
				f := d.Violations[0].Findings[1]
				if f.Severity != Unknown || f.CountedAs == nil || *f.CountedAs != High {
					t.Errorf("unknown finding reported as %+v, want severity unknown counted as high", f)
				}
			}
		})
	}
}

// TestRequireScan: unscanned images are refused while a policy requires a
// scan, with "scan pending" in the message; a threshold implies it.
func TestRequireScan(t *testing.T) {
	img := mustImage(t, "harbor.example/kuard/kuard:blue")
	for _, tc := range []struct {
		name, spec string
		scan       *ScanSummary
		want       Outcome
		msg        string
		pending    bool
	}{
		{"never scanned", "maxSeverity: high", nil, Denied, `The image has not been scanned yet (scan pending), and a scan is required in project setting (threshold: "high"). To allow, wait for the scan to finish.`, true},
		{"queued", "maxSeverity: high", &ScanSummary{Status: ScanQueued}, Denied, "(scan pending: queued)", true},
		{"running", "requireScan: true", &ScanSummary{Status: ScanRunning}, Denied, "(scan pending: running)", true},
		{"failed", "maxSeverity: high", &ScanSummary{Status: ScanFailed, Reason: "layer unreadable"}, Denied, "could not be scanned (scan failed: layer unreadable)", false},
		{"unsupported", "maxSeverity: high", &ScanSummary{Status: ScanUnsupported, Reason: "not an image"}, Denied, "cannot be scanned (not an image)", false},
		{"not required", "maxSeverity: high\nrequireScan: false", nil, Allowed, "", false},
		{"unscannable let through", "maxSeverity: high\nallowUnscannable: true", &ScanSummary{Status: ScanUnsupported, Reason: "not an image"}, Allowed, "", false},
		{"unscannable but pending", "maxSeverity: high\nallowUnscannable: true", &ScanSummary{Status: ScanQueued}, Denied, "scan pending", true},
		{"scanned", "requireScan: true", done(finding("CVE-1", Critical, "a", "1")), Allowed, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := mustEngine(t, Config{}, doc("project-kuard", "scope: {projects: [kuard]}\nvulnerabilities:\n"+indent(tc.spec)))
			d := eval(t, e, &Input{Image: img, Project: "kuard", Scan: tc.scan})
			if d.Outcome != tc.want {
				t.Fatalf("outcome %s, want %s: %s", d.Outcome, tc.want, d.Message())
			}
			if tc.want == Denied {
				v := d.Violations[0]
				if !strings.Contains(d.Message(), tc.msg) || v.ScanPending != tc.pending || v.Failed == tc.pending {
					t.Errorf("message %q (pending %v failed %v), want %q (pending %v)", d.Message(), v.ScanPending, v.Failed, tc.msg, tc.pending)
				}
			}
			if tc.name == "not required" && (len(d.Notes) != 1 || !strings.Contains(d.Notes[0], "does not require a scan")) {
				t.Errorf("notes %q", d.Notes)
			}
			if tc.name == "unscannable let through" && (len(d.Notes) != 1 || !strings.Contains(d.Notes[0], "cannot be scanned (not an image); policy \"project-kuard\" lets artifacts that cannot be scanned through.")) {
				t.Errorf("notes %q", d.Notes)
			}
		})
	}
}

// TestAllowlists covers inline and system entries: id or alias, package,
// repository, expiry (an expired entry does not apply and the decision
// says so) and the decision's ValidUntil.
func TestAllowlists(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	musl := Finding{ID: "ALPINE-CVE-2019-14697", Aliases: []string{"CVE-2019-14697"}, Package: "musl-utils", SourcePackage: "musl", Installed: "1.1.20-r4", Fixed: []string{"1.1.20-r5"}, Severity: High}
	img := mustImage(t, "registry.corp.example/kuard/kuard-amd64:blue")
	for _, tc := range []struct {
		name    string
		entries string
		system  []AllowlistEntry
		useSys  string
		allowed bool
		note    string
		until   time.Time
	}{
		{"by alias", "- {id: CVE-2019-14697}", nil, "", true, "CVE-2019-14697 in musl-utils 1.1.20-r4 is allowed by the project kuard allowlist entry CVE-2019-14697.", time.Time{}},
		{"by advisory id, any case", "- {id: alpine-cve-2019-14697}", nil, "", true, "allowed by", time.Time{}},
		{"by source package", "- {id: CVE-2019-14697, package: musl}", nil, "", true, "package musl", time.Time{}},
		{"other package", "- {id: CVE-2019-14697, package: openssl}", nil, "", false, "", time.Time{}},
		{"repository glob", "- {id: CVE-2019-14697, repository: 'registry.corp.example/kuard/**'}", nil, "", true, "repository registry.corp.example/kuard/**", time.Time{}},
		{"other repository", "- {id: CVE-2019-14697, repository: 'registry.corp.example/other/**'}", nil, "", false, "", time.Time{}},
		{"not yet expired", "- {id: CVE-2019-14697, expires: '2026-03-31', reason: accepted risk, addedBy: alice}", nil, "", true,
			`(added by alice, reason "accepted risk"), until 2026-03-31T00:00:00Z.`, time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)},
		{"earliest expiry counts", "- {id: CVE-2019-14697, expires: '2026-03-31'}\n- {id: CVE-2020-1, expires: '2026-03-02'}", nil, "", true, "", time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)},
		{"expired", "- {id: CVE-2019-14697, expires: '2026-03-01T12:00:00Z', addedBy: alice}", nil, "", false,
			"The project kuard allowlist entry CVE-2019-14697 (added by alice) expired at 2026-03-01T12:00:00Z; it no longer allows CVE-2019-14697 in musl-utils 1.1.20-r4.", time.Time{}},
		{"expired but another applies", "- {id: CVE-2019-14697, expires: '2026-01-01'}\n- {id: ALPINE-CVE-2019-14697}", nil, "", true, "entry ALPINE-CVE-2019-14697", time.Time{}},
		{"system allowlist", "", []AllowlistEntry{{ID: "CVE-2019-14697", AddedBy: "admin"}}, "", true, "system allowlist entry CVE-2019-14697 (added by admin)", time.Time{}},
		{"system allowlist turned off", "", []AllowlistEntry{{ID: "CVE-2019-14697"}}, "useSystemAllowlist: false\n", false, "", time.Time{}},
		{"system entry for another repository", "", []AllowlistEntry{{ID: "CVE-2019-14697", Repository: "docker.io/**"}}, "", false, "", time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := "scope: {projects: [kuard]}\nvulnerabilities:\n  maxSeverity: high"
			if tc.useSys != "" {
				spec += "\n" + indent(tc.useSys)
			}
			if tc.entries != "" {
				spec += "\n  allowlist:\n" + indent(indent(tc.entries))
			}
			e := mustEngine(t, Config{Now: clock}, doc("project-kuard", spec))
			d := eval(t, e, &Input{Image: img, Project: "kuard", Scan: done(musl), SystemAllowlist: SystemAllowlist{Revision: "1", Entries: tc.system}})
			if d.Allowed() != tc.allowed {
				t.Fatalf("allowed %v, want %v: %s %q", d.Allowed(), tc.allowed, d.Message(), d.Notes)
			}
			if tc.note != "" && !strings.Contains(strings.Join(d.Notes, "\n"), tc.note) {
				t.Errorf("notes %q, want one containing %q", d.Notes, tc.note)
			}
			if !d.ValidUntil.Equal(tc.until) {
				t.Errorf("valid until %v, want %v", d.ValidUntil, tc.until)
			}
		})
	}
}

// TestVulnerabilityDecisionDetail: the decision names each blocking
// advisory with package, installed and fixed versions, and the command.
func TestVulnerabilityDecisionDetail(t *testing.T) {
	e := mustEngine(t, Config{SuggestedExpiry: "14d"},
		doc("project-kuard", "scope: {projects: [kuard]}\nvulnerabilities: {maxSeverity: medium}"),
		doc("production", "scope: {environments: [production]}\nvulnerabilities: {maxSeverity: critical, useSystemAllowlist: false}"),
	)
	scan := done(
		finding("CVE-2024-0010", Medium, "zlib", "1.2.11", "1.2.12"),
		finding("CVE-2024-0011", Critical, "openssl", "1.1.1a", "1.1.1b", "3.0.0"),
		finding("CVE-2024-0012", High, "curl", "7.64"),
		finding("CVE-2024-0013", Medium, "expat", "2.2"),
		Finding{ID: "GHSA-aaaa-bbbb-cccc", Package: "lodash", Installed: "4.17.0", Fixed: []string{"4.17.21"}, Severity: High},
	)
	d := eval(t, e, &Input{Image: mustImage(t, "registry.corp.example/kuard/kuard:1"), Project: "kuard", Environment: "production", Scan: scan})
	if d.Outcome != Denied || len(d.Violations) != 2 {
		t.Fatalf("decision %+v", d)
	}
	prod, proj := d.Violations[0], d.Violations[1]
	if prod.Policy.Name != "production" || *prod.Highest != Critical || len(prod.Findings) != 1 {
		t.Errorf("production violation %+v", prod)
	}
	wantProd := `The severity of vulnerability of the image: "critical" is equal or higher than the threshold in policy "production": "critical". Blocked by CVE-2024-0011 (openssl 1.1.1a, fixed in 1.1.1b). To allow, fix the image or run: customs allowlist add CVE-2024-0011 --policy production --expires 14d --reason "…"`
	if prod.Message != wantProd {
		t.Errorf("production message\n%s\nwant\n%s", prod.Message, wantProd)
	}
	want := []BlockingFinding{
		{ID: "CVE-2024-0011", Package: "openssl", Installed: "1.1.1a", Fixed: []string{"1.1.1b", "3.0.0"}, Severity: Critical},
		{ID: "CVE-2024-0012", Package: "curl", Installed: "7.64", Severity: High},
		{ID: "GHSA-aaaa-bbbb-cccc", Package: "lodash", Installed: "4.17.0", Fixed: []string{"4.17.21"}, Severity: High},
		{ID: "CVE-2024-0010", Package: "zlib", Installed: "1.2.11", Fixed: []string{"1.2.12"}, Severity: Medium},
		{ID: "CVE-2024-0013", Package: "expat", Installed: "2.2", Severity: Medium},
	}
	if !reflect.DeepEqual(proj.Findings, want) {
		t.Errorf("project findings\n%+v\nwant\n%+v", proj.Findings, want)
	}
	wantProj := `The severity of vulnerability of the image: "critical" is equal or higher than the threshold in project setting: "medium". Blocked by CVE-2024-0011 (openssl 1.1.1a, fixed in 1.1.1b), CVE-2024-0012 (curl 7.64, no fix yet), GHSA-aaaa-bbbb-cccc (lodash 4.17.0, fixed in 4.17.21) and 2 more. To allow, fix the image or run: customs allowlist add CVE-2024-0011 CVE-2024-0012 GHSA-aaaa-bbbb-cccc CVE-2024-0010 CVE-2024-0013 --project kuard --expires 14d --reason "…"`
	if proj.Message != wantProj {
		t.Errorf("project message\n%s\nwant\n%s", proj.Message, wantProj)
	}
	if d.Message() != wantProd+" "+wantProj {
		t.Errorf("door message %q", d.Message())
	}
	if d.Policy.Name != "production" || d.Rule != RuleVulnerabilities {
		t.Errorf("decided by %v %s", d.Policy, d.Rule)
	}

	// Past maxRemedyIDs advisories the remedy is to fix the image.
	var many []Finding
	for i := range maxRemedyIDs + 1 {
		many = append(many, finding(fmt.Sprintf("CVE-2024-1%03d", i), High, "p", "1"))
	}
	d = eval(t, e, &Input{Image: mustImage(t, "registry.corp.example/kuard/kuard:1"), Project: "kuard", Scan: done(many...)})
	if !strings.HasSuffix(d.Message(), "To allow, fix the image: 11 advisories are at or above the threshold (customs scan report lists them).") {
		t.Errorf("many findings: %s", d.Message())
	}
}

func TestSignatures(t *testing.T) {
	key := "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAvA9r2lku0ZvtKnZkxc4WdIDN4XK/N/o8hv9xMpUvGwo=\n-----END PUBLIC KEY-----\n"
	fp, err := KeyFingerprint(key)
	if err != nil {
		t.Fatal(err)
	}
	keyLines := strings.ReplaceAll(strings.TrimSpace(key), "\n", "\n        ")
	e := mustEngine(t, Config{}, doc("signed", `signatures:
  required: true
  signers:
    - name: release
      key: |
        `+keyLines+`
    - keyless: {issuer: "https://token.actions.githubusercontent.com", subject: "https://github.com/corp/*"}`),
		doc("trust", "scope: {namespaces: [trust]}\nsignatures: {required: true}"),
	)
	img := mustImage(t, "registry.corp.example/a:1")
	for _, tc := range []struct {
		name string
		ns   string
		sigs *Signatures
		want string // "" for allowed
	}{
		{"verification not available", "", nil, "signature verification not available, and the policy requires a signature (failing closed)"},
		{"unsigned", "", &Signatures{}, "registry.corp.example/a is not signed; the policy requires a signature by release, https://github.com/corp/* (https://token.actions.githubusercontent.com)"},
		{"key", "", &Signatures{Verified: []Signature{{KeyFingerprint: fp}}}, ""},
		{"other key", "", &Signatures{Verified: []Signature{{KeyFingerprint: "sha256:00"}}}, "is not signed by a required signer"},
		{"keyless", "", &Signatures{Verified: []Signature{{Issuer: "https://token.actions.githubusercontent.com", Subject: "https://github.com/corp/app/.github/workflows/release.yml@refs/heads/main"}}}, ""},
		{"keyless other issuer", "", &Signatures{Verified: []Signature{{Issuer: "https://evil.example", Subject: "https://github.com/corp/app"}}}, "is not signed by a required signer"},
		{"keyless other subject", "", &Signatures{Verified: []Signature{{Issuer: "https://token.actions.githubusercontent.com", Subject: "https://github.com/evil/app"}}}, "is not signed by a required signer"},
		{"any signature: none", "trust", &Signatures{}, "registry.corp.example/a is not signed"},
		{"any signature", "trust", &Signatures{Verified: []Signature{{KeyFingerprint: "sha256:00"}}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := eval(t, e, &Input{Image: img, Namespace: tc.ns, Signatures: tc.sigs})
			if tc.want == "" {
				if d.Outcome != Allowed {
					t.Fatalf("denied: %s", d.Message())
				}
				return
			}
			if d.Outcome != Denied || d.Rule != RuleSignatures || !strings.Contains(d.Violations[0].Message, tc.want) {
				t.Fatalf("%s: %q, want %q", d.Outcome, d.Message(), tc.want)
			}
			if (tc.sigs == nil) != d.Violations[0].Failed {
				t.Errorf("failed %v", d.Violations[0].Failed)
			}
		})
	}
}

// TestModes: warn and audit do not deny; a rule's mode overrides the
// policy's; enforced violations decide over warnings.
func TestModes(t *testing.T) {
	img := mustImage(t, "docker.io/library/nginx:latest")
	for _, tc := range []struct {
		name, spec string
		want       Outcome
		rule       Rule
		msg        string
	}{
		{"enforce", "tags: {deny: [latest]}", Denied, RuleTags, `policy "p", rule tags: tag "latest" is denied.`},
		{"warn", "mode: warn\ntags: {deny: [latest]}", Warned, RuleTags, `Warning: policy "p", rule tags: tag "latest" is denied.`},
		{"audit", "mode: audit\ntags: {deny: [latest]}", Allowed, "", `docker.io/library/nginx:latest is allowed by policy "p".`},
		{"rule overrides policy", "mode: audit\ntags: {deny: [latest], mode: enforce}", Denied, RuleTags, "tag \"latest\" is denied"},
		{"enforced beats warned", "tags: {deny: [latest], mode: warn}\nregistries: {allowed: [registry.corp.example]}", Denied, RuleRegistries, "is not from an allowed registry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := eval(t, mustEngine(t, Config{}, doc("p", tc.spec)), &Input{Image: img})
			if d.Outcome != tc.want || d.Rule != tc.rule || !strings.Contains(d.Message(), tc.msg) {
				t.Fatalf("%s by %q: %q, want %s by %q: %q", d.Outcome, d.Rule, d.Message(), tc.want, tc.rule, tc.msg)
			}
			if len(d.Violations) == 0 {
				t.Errorf("violations should be recorded in every mode")
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	ok := &Policy{APIVersion: APIVersion, Kind: Kind, Metadata: Metadata{Name: "p"}}
	bad := func(f func(p *Policy)) *Policy {
		p := *ok
		f(&p)
		return &p
	}
	for _, tc := range []struct {
		p    *Policy
		want string
	}{
		{bad(func(p *Policy) { p.Kind = "X" }), `policy "p": apiVersion/kind: customs.dev/v1alpha1/X is not customs.dev/v1alpha1/Policy`},
		{bad(func(p *Policy) { p.Metadata.Name = "" }), `metadata.name: "" is not a valid policy name`},
		{bad(func(p *Policy) { p.Spec.Mode = "x" }), `spec.mode: "x" is not one of enforce, warn, audit`},
		{bad(func(p *Policy) { p.Spec.Tags = &TagsRule{Mode: "y"} }), `spec.tags.mode: "y" is not one of enforce, warn, audit`},
		{bad(func(p *Policy) { p.Spec.Scope.Repositories = []string{"nginx"} }), `spec.scope.repositories[0]: pattern "nginx" must start with a registry host`},
		{bad(func(p *Policy) { p.Spec.Registries = &RegistriesRule{Denied: []string{"a.example/../b"}} }), `spec.registries.denied[0]`},
		{bad(func(p *Policy) { p.Spec.Names = &NamesRule{Pattern: "("} }), `spec.names.pattern: "(" is not a valid regular expression`},
		{bad(func(p *Policy) { s := Severity(9); p.Spec.Vulnerabilities = &VulnerabilitiesRule{MaxSeverity: &s} }), `spec.vulnerabilities.maxSeverity`},
		{bad(func(p *Policy) {
			p.Spec.Vulnerabilities = &VulnerabilitiesRule{MaxSeverity: High.Ptr(), Allowlist: []AllowlistEntry{{ID: "CVE-1", Repository: "x"}}}
		}), `spec.vulnerabilities.allowlist[0]: repository: pattern "x" must start with a registry host`},
		{bad(func(p *Policy) { p.Spec.Signatures = &SignaturesRule{Required: true, Signers: []Signer{{Key: "x"}}} }), `spec.signatures.signers[0]: key is not PEM`},
		{bad(func(p *Policy) { p.Spec.Rego = &RegoRule{Modules: []RegoModule{{Name: "a.rego", Source: "package x"}}} }), `the modules define no data.customs.deny`},
	} {
		_, err := Compile([]*Policy{tc.p}, Config{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Compile: %v, want %q", err, tc.want)
		}
	}
	if _, err := Compile([]*Policy{ok, ok}, Config{}); err == nil || !strings.Contains(err.Error(), `policy "p": defined twice`) {
		t.Errorf("duplicate: %v", err)
	}
}

// TestRevision: the engine revision changes with any policy content,
// revision or setting that changes decisions, and only then.
func TestRevision(t *testing.T) {
	a := mustEngine(t, Config{}, doc("p", "tags: {deny: [latest]}"))
	b := mustEngine(t, Config{}, doc("p", "tags: {deny: [latest]}"))
	c := mustEngine(t, Config{}, doc("p", "tags: {deny: [edge]}"))
	d := mustEngine(t, Config{Default: Allowed}, doc("p", "tags: {deny: [latest]}"))
	if a.Revision() != b.Revision() {
		t.Errorf("same policies, different revisions")
	}
	if a.Revision() == c.Revision() || a.Revision() == d.Revision() {
		t.Errorf("different policies or default, same revision")
	}
	ps := a.Policies()
	ps[0].Revision = 2
	e, err := Compile(ps, Config{})
	if err != nil || e.Revision() == a.Revision() {
		t.Errorf("stored revision not in the engine revision: %v", err)
	}
}

// TestUpdateReuses: Update keeps the compiled form (Rego included) of
// unchanged policies and compiles changed ones.
func TestUpdateReuses(t *testing.T) {
	src := "package customs\ndeny contains \"latest\" if input.image.tag == \"latest\""
	ps, err := Parse("a.yaml", []byte(regoDoc("a", src)+regoDoc("b", src)))
	if err != nil {
		t.Fatal(err)
	}
	e1, err := Compile(ps, Config{})
	if err != nil {
		t.Fatal(err)
	}
	changed := *ps[1]
	changed.Revision = 2
	e2, err := e1.Update([]*Policy{ps[0], &changed}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if e2.policies[0] != e1.policies[0] || e2.policies[0].rego != e1.policies[0].rego {
		t.Errorf("the unchanged policy was compiled again")
	}
	if e2.policies[1] == e1.policies[1] || e2.policies[1].ref.Revision != 2 {
		t.Errorf("the changed policy was reused")
	}
	if e2.Revision() == e1.Revision() {
		t.Errorf("revision unchanged")
	}
	if d := eval(t, e2, &Input{Image: mustImage(t, "registry.example/a")}); d.Outcome != Denied || len(d.Violations) != 2 {
		t.Errorf("updated engine: %s", d.Message())
	}
	if _, err := e1.Update([]*Policy{ps[0], ps[0]}, Config{}); err == nil {
		t.Errorf("duplicate names accepted by Update")
	}
}
