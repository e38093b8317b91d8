package policy

import (
	"fmt"
	"slices"
	"strconv"
)

// Annotations the project settings conversion writes.
const (
	// AnnotationSettings marks a policy as a project's settings policy
	// (value "project"), written by ProjectPolicy.
	AnnotationSettings = "customs.dev/settings"
	// AnnotationScanOnPush carries "automatically scan images on push"
	// ("true" or "false") for offline use of ProjectPolicy; it does not
	// affect decisions and the server does not read it: there the
	// project's scan setting is scan on push's one source, and the API
	// drops this annotation when it stores a settings policy.
	AnnotationScanOnPush = "customs.dev/scan-on-push"
)

// ProjectPolicyName is the name of project's settings policy.
func ProjectPolicyName(project string) string {
	if project == "" {
		return ""
	}
	return "project-" + project
}

// ProjectSettings are a project's security settings as Harbor users know
// them.
type ProjectSettings struct {
	Project string `json:"project"`
	// PreventVulnerable is "prevent vulnerable images from running":
	// images with findings at or above Severity are refused.
	PreventVulnerable bool `json:"preventVulnerable"`
	// Severity is the threshold (none, low, medium, high, critical); kept
	// when PreventVulnerable is off.
	Severity Severity `json:"severity"`
	// ScanOnPush is "automatically scan images on push".
	ScanOnPush bool `json:"scanOnPush"`
	// ContentTrust is "enable content trust": only signed images.
	ContentTrust bool `json:"contentTrust"`
	// Allowlist is the project's CVE allowlist, each entry with its own
	// expiry.
	Allowlist []AllowlistEntry `json:"allowlist,omitempty"`
	// UseSystemAllowlist says whether the system allowlist applies too
	// (Harbor's "reuse the system allowlist"; in customs the two lists
	// add up rather than replace each other).
	UseSystemAllowlist bool `json:"useSystemAllowlist"`
}

// DefaultProjectSettings are a new project's settings: scan on push,
// nothing prevented, threshold low (Harbor's default when prevention is
// turned on), the system allowlist applies.
func DefaultProjectSettings(project string) ProjectSettings {
	return ProjectSettings{Project: project, Severity: Low, ScanOnPush: true, UseSystemAllowlist: true}
}

// ProjectPolicy turns s into the project's settings policy (named
// ProjectPolicyName, scoped to the project), so that the registry door and
// every other door use one engine:
//
//   - prevent vulnerable images: a vulnerabilities rule with maxSeverity
//     Severity, requireScan (Harbor refuses unscanned images while
//     prevention is on) with allowUnscannable (Harbor lets artifacts it
//     cannot scan through: signatures, SBOMs, charts) and unknownAs none
//     (Harbor ranks unknown between none and low); with prevention off the
//     rule stays, in audit mode, so
//     the threshold and the allowlist are kept and decisions still record
//     what would have been blocked;
//   - content trust: a signatures rule requiring a verified signature;
//   - scan on push: AnnotationScanOnPush (informational; see there).
//
// The error names the bad setting.
func ProjectPolicy(s ProjectSettings) (*Policy, error) {
	if err := checkProject(s.Project); err != nil {
		return nil, fmt.Errorf("project settings: %v", err)
	}
	if s.Severity < None || s.Severity > Critical {
		return nil, fmt.Errorf("project settings of %s: severity %v is not one of %s", s.Project, s.Severity, thresholdWords)
	}
	for i := range s.Allowlist {
		if _, err := compileEntry(&s.Allowlist[i], ""); err != nil {
			return nil, fmt.Errorf("project settings of %s: allowlist[%d]: %v", s.Project, i, err)
		}
	}
	sev := s.Severity
	unknown := UnknownAs(None)
	requireScan := true
	useSystem := s.UseSystemAllowlist
	v := &VulnerabilitiesRule{
		MaxSeverity:        &sev,
		RequireScan:        &requireScan,
		AllowUnscannable:   true,
		UnknownAs:          &unknown,
		UseSystemAllowlist: &useSystem,
		Allowlist:          slices.Clone(s.Allowlist),
	}
	if !s.PreventVulnerable {
		v.Mode = Audit
	}
	p := &Policy{
		APIVersion: APIVersion,
		Kind:       Kind,
		Metadata: Metadata{
			Name:        ProjectPolicyName(s.Project),
			Description: "Security settings of project " + s.Project,
			Annotations: map[string]string{
				AnnotationSettings:   "project",
				AnnotationScanOnPush: strconv.FormatBool(s.ScanOnPush),
			},
		},
		Spec: Spec{
			Scope:           Scope{Projects: []string{s.Project}},
			Vulnerabilities: v,
		},
	}
	if s.ContentTrust {
		p.Spec.Signatures = &SignaturesRule{Required: true}
	}
	return p, nil
}

// ProjectSettingsFrom reads the settings back from a project's settings
// policy (for showing them). A policy ProjectPolicy could not have written
// is an error that says what does not fit.
func ProjectSettingsFrom(p *Policy) (ProjectSettings, error) {
	var s ProjectSettings
	fail := func(format string, args ...any) (ProjectSettings, error) {
		return ProjectSettings{}, fmt.Errorf("policy %q is not a project settings policy: %s", p.Metadata.Name, fmt.Sprintf(format, args...))
	}
	if p.Metadata.Annotations[AnnotationSettings] != "project" {
		return fail("annotation %s is not \"project\"", AnnotationSettings)
	}
	sc := p.Spec.Scope
	if len(sc.Projects) != 1 || len(sc.Environments)+len(sc.Namespaces)+len(sc.Repositories) > 0 {
		return fail("its scope is not exactly one project")
	}
	s.Project = sc.Projects[0]
	if p.Metadata.Name != ProjectPolicyName(s.Project) {
		return fail("its name is not %s", ProjectPolicyName(s.Project))
	}
	if p.Spec.Mode != "" && p.Spec.Mode != Enforce {
		return fail("its mode is %s", p.Spec.Mode)
	}
	if p.Spec.Registries != nil || p.Spec.Tags != nil || p.Spec.Names != nil || p.Spec.Rego != nil {
		return fail("it has rules other than vulnerabilities and signatures")
	}
	v := p.Spec.Vulnerabilities
	if v == nil || v.MaxSeverity == nil {
		return fail("it has no vulnerability threshold")
	}
	switch v.Mode {
	case "", Enforce:
		s.PreventVulnerable = true
	case Audit:
	default:
		return fail("its vulnerabilities rule is in %s mode", v.Mode)
	}
	s.Severity = *v.MaxSeverity
	s.Allowlist = slices.Clone(v.Allowlist)
	s.UseSystemAllowlist = v.SystemAllowlistApplies()
	if sg := p.Spec.Signatures; sg != nil {
		if len(sg.Signers) > 0 || (sg.Mode != "" && sg.Mode != Enforce) {
			return fail("its signatures rule names signers or a mode")
		}
		s.ContentTrust = sg.Required
	}
	switch p.Metadata.Annotations[AnnotationScanOnPush] {
	case "true":
		s.ScanOnPush = true
	case "false", "":
	default:
		return fail("annotation %s is %q, not true or false", AnnotationScanOnPush, p.Metadata.Annotations[AnnotationScanOnPush])
	}
	return s, nil
}
