package policy

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestProjectSettingsRoundTrip: settings become a policy document that
// survives YAML and comes back as the same settings.
func TestProjectSettingsRoundTrip(t *testing.T) {
	exp := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range []ProjectSettings{
		DefaultProjectSettings("kuard"),
		{Project: "testproject", PreventVulnerable: true, Severity: High, ScanOnPush: true, ContentTrust: true, UseSystemAllowlist: true,
			Allowlist: []AllowlistEntry{{ID: "CVE-2019-14697", Expires: &exp, Reason: "accepted", AddedBy: "alice"}, {ID: "CVE-2020-1", Package: "musl"}}},
		{Project: "a_b", PreventVulnerable: true, Severity: None},
	} {
		t.Run(s.Project, func(t *testing.T) {
			p, err := ProjectPolicy(s)
			if err != nil {
				t.Fatal(err)
			}
			if p.Metadata.Name != ProjectPolicyName(s.Project) || !reflect.DeepEqual(p.Spec.Scope.Projects, []string{s.Project}) {
				t.Errorf("policy %s scoped %+v", p.Metadata.Name, p.Spec.Scope)
			}
			y, err := Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			ps, err := Parse("settings.yaml", y)
			if err != nil {
				t.Fatalf("%v\n%s", err, y)
			}
			back, err := ProjectSettingsFrom(ps[0])
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, s) {
				t.Errorf("settings came back as\n%+v\nwant\n%+v\n%s", back, s, y)
			}
		})
	}
}

// TestProjectSettingsBehaviour: prevention off records what would have
// been blocked without blocking; Harbor ranks unknown between none and low.
func TestProjectSettingsBehaviour(t *testing.T) {
	s := DefaultProjectSettings("p")
	img := mustImage(t, "harbor.example/p/app:1")
	high := &Input{Image: img, Project: "p", Scan: done(finding("CVE-1", High, "a", "1"))}
	d := eval(t, compile(t, Config{}, projectPolicy(t, s)), high)
	if d.Outcome != Allowed || len(d.Violations) != 1 || d.Violations[0].Mode != Audit {
		t.Fatalf("prevention off: %+v", d)
	}
	if d := eval(t, compile(t, Config{}, projectPolicy(t, s)), &Input{Image: img, Project: "p"}); d.Outcome != Allowed {
		t.Errorf("prevention off, unscanned: %s", d.Message())
	}
	s.PreventVulnerable = true
	// Harbor lets artifacts it cannot scan (signatures, SBOMs) through.
	sig := &Input{Image: img, Project: "p", Scan: &ScanSummary{Status: ScanUnsupported, Reason: "not an image"}}
	if d := eval(t, compile(t, Config{}, projectPolicy(t, s)), sig); d.Outcome != Allowed {
		t.Errorf("unscannable artifact: %s", d.Message())
	}
	unknown := &Input{Image: img, Project: "p", Scan: done(finding("CVE-2", Unknown, "a", "1"))}
	for _, tc := range []struct {
		sev  Severity
		want Outcome
	}{{None, Denied}, {Low, Allowed}} {
		s.Severity = tc.sev
		if d := eval(t, compile(t, Config{}, projectPolicy(t, s)), unknown); d.Outcome != tc.want {
			t.Errorf("unknown finding at threshold %s: %s", tc.sev, d.Outcome)
		}
	}
}

func TestProjectSettingsErrors(t *testing.T) {
	for _, tc := range []struct {
		s    ProjectSettings
		want string
	}{
		{ProjectSettings{Project: "Bad Name"}, `project settings: "Bad Name" is not a valid project name`},
		{ProjectSettings{Project: "p", Severity: Unknown}, "severity unknown is not one of none, low, medium, high, critical"},
		{ProjectSettings{Project: "p", Severity: Low, Allowlist: []AllowlistEntry{{ID: ""}}}, "allowlist[0]: id:"},
	} {
		if _, err := ProjectPolicy(tc.s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ProjectPolicy(%+v): %v, want %q", tc.s, err, tc.want)
		}
	}
	base := func() *Policy {
		p, err := ProjectPolicy(DefaultProjectSettings("p"))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		change func(*Policy)
		want   string
	}{
		{func(p *Policy) { delete(p.Metadata.Annotations, AnnotationSettings) }, "annotation customs.dev/settings is not \"project\""},
		{func(p *Policy) { p.Spec.Scope.Namespaces = []string{"x"} }, "its scope is not exactly one project"},
		{func(p *Policy) { p.Metadata.Name = "other" }, "its name is not project-p"},
		{func(p *Policy) { p.Spec.Tags = &TagsRule{} }, "it has rules other than vulnerabilities and signatures"},
		{func(p *Policy) { p.Spec.Vulnerabilities.MaxSeverity = nil }, "it has no vulnerability threshold"},
		{func(p *Policy) { p.Spec.Vulnerabilities.Mode = Warn }, "its vulnerabilities rule is in warn mode"},
		{func(p *Policy) { p.Metadata.Annotations[AnnotationScanOnPush] = "yes" }, `annotation customs.dev/scan-on-push is "yes"`},
	} {
		p := base()
		tc.change(p)
		if _, err := ProjectSettingsFrom(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ProjectSettingsFrom: %v, want %q", err, tc.want)
		}
	}
}
