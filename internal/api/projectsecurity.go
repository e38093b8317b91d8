package api

import (
	"net/http"
	"strconv"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/policy"
)

// ProjectSecurity are a project's security settings as Harbor users know
// them. They are kept as the project's settings policy (policy
// "project-NAME", package policy's ProjectPolicy), so every door decides
// with one engine. "Automatically scan on push" is not among them: it is
// the project's scan setting (Project.ScanOnPush), its one source.
type ProjectSecurity struct {
	// Policy is the settings policy; Revision its stored revision (0 while
	// the project has the default settings and no stored policy).
	Policy   string `json:"policy"`
	Revision int64  `json:"revision,omitempty"`
	// PreventVulnerable is "prevent vulnerable images from running".
	PreventVulnerable bool `json:"preventVulnerable"`
	// Severity is the threshold: none, low, medium, high or critical.
	Severity string `json:"severity"`
	// ContentTrust is "enable content trust": only signed images.
	ContentTrust bool `json:"contentTrust"`
	// UseSystemAllowlist says whether the system allowlist applies.
	UseSystemAllowlist bool `json:"useSystemAllowlist"`
	// AllowlistEntries counts the project's CVE allowlist entries
	// (GET /api/v1/projects/{name}/allowlist lists them).
	AllowlistEntries int `json:"allowlistEntries"`
	// Custom, when set, says why the project's policy is not a settings
	// policy (an administrator applied one of their own under its name);
	// the other fields are then empty and PATCH of them is refused.
	Custom string `json:"custom,omitempty"`
}

func securityOf(pol *policy.Policy, rev int64) *ProjectSecurity {
	out := &ProjectSecurity{Policy: pol.Metadata.Name, Revision: rev}
	s, err := policy.ProjectSettingsFrom(pol)
	if err != nil {
		out.Custom = err.Error()
		return out
	}
	out.PreventVulnerable, out.Severity, out.ContentTrust = s.PreventVulnerable, s.Severity.String(), s.ContentTrust
	out.UseSystemAllowlist, out.AllowlistEntries = s.UseSystemAllowlist, len(s.Allowlist)
	return out
}

// withSecurity fills out's security settings when the server keeps
// policies.
func (h *handler) withSecurity(r *http.Request, out *Project) error {
	if h.opts.Policies == nil {
		return nil
	}
	pol, rev, err := h.projectPolicy(r, out.Name)
	if err != nil {
		return err
	}
	out.Security = securityOf(pol, rev)
	return nil
}

// updateSecurity applies req's security settings to the project's
// settings policy (read, modify, store on condition; see
// editProjectPolicy) and records them in details for the audit event.
func (h *handler) updateSecurity(r *http.Request, p auth.Principal, project string, req UpdateProjectRequest, details map[string]string) (*ProjectSecurity, error) {
	if h.opts.Policies == nil {
		return nil, apperr.Errorf(apperr.EINVALID, "preventVulnerable, severity, contentTrust: this server keeps no policies")
	}
	var sev policy.Severity
	if req.Severity != nil {
		var err error
		if sev, err = policy.ParseSeverity(*req.Severity); err != nil {
			return nil, apperr.Errorf(apperr.EINVALID, "severity: %q is not one of none, low, medium, high, critical", *req.Severity)
		}
	}
	pol, rev, err := h.editProjectPolicy(r, p, project, func(pol *policy.Policy) error {
		s, err := policy.ProjectSettingsFrom(pol)
		if err != nil {
			return apperr.Errorf(apperr.EINVALID, "%v; change it with customs policy apply, or delete it to use project settings", err)
		}
		if req.PreventVulnerable != nil {
			s.PreventVulnerable = *req.PreventVulnerable
		}
		if req.Severity != nil {
			s.Severity = sev
		}
		if req.ContentTrust != nil {
			s.ContentTrust = *req.ContentTrust
		}
		if req.UseSystemAllowlist != nil {
			s.UseSystemAllowlist = *req.UseSystemAllowlist
		}
		np, err := policy.ProjectPolicy(s)
		if err != nil {
			return apperr.Errorf(apperr.EINVALID, "%v", err)
		}
		*pol = *np
		return nil
	})
	if err != nil {
		return nil, err
	}
	details["policy"] = pol.Metadata.Name
	details["policyRevision"] = strconv.FormatInt(rev, 10)
	if req.PreventVulnerable != nil {
		details["preventVulnerable"] = strconv.FormatBool(*req.PreventVulnerable)
	}
	if req.Severity != nil {
		details["severity"] = sev.String()
	}
	if req.ContentTrust != nil {
		details["contentTrust"] = strconv.FormatBool(*req.ContentTrust)
	}
	if req.UseSystemAllowlist != nil {
		details["useSystemAllowlist"] = strconv.FormatBool(*req.UseSystemAllowlist)
	}
	return securityOf(pol, rev), nil
}
