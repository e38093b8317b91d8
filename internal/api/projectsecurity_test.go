package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/policy"
	"github.com/customs-dev/customs/internal/rbac"
)

func pval[T any](v T) *T { return &v }

// TestProjectSecurityAPI: PATCH of the Harbor settings writes the
// project's settings policy (kept allowlist, no scan-on-push annotation),
// GET shows them, bad values and hand-written policies are refused, only
// project admins change them, and changes are audited.
func TestProjectSecurityAPI(t *testing.T) {
	e := newAPIEnv(t, nil)
	ctx := context.Background()
	p, err := e.admin.Project(ctx, "p")
	if err != nil || p.Security == nil || p.Security.PreventVulnerable || p.Security.Severity != "low" || !p.Security.UseSystemAllowlist || p.Security.Revision != 0 {
		t.Fatalf("default security = %+v, %v", p.Security, err)
	}
	if _, err := e.admin.AddAllowlistEntry(ctx, "p", api.AllowlistEntry{ID: "CVE-2019-14697"}); err != nil {
		t.Fatal(err)
	}
	p, err = e.admin.UpdateProject(ctx, "p", api.UpdateProjectRequest{PreventVulnerable: pval(true), Severity: pval("high")})
	if err != nil || !p.Security.PreventVulnerable || p.Security.Severity != "high" || p.Security.AllowlistEntries != 1 || p.Security.Policy != "project-p" {
		t.Fatalf("after PATCH = %+v, %v", p.Security, err)
	}
	d, err := e.admin.Policy(ctx, "project-p")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(d.Document, policy.AnnotationScanOnPush) || !strings.Contains(d.Document, "maxSeverity: high") || !strings.Contains(d.Document, "CVE-2019-14697") {
		t.Fatalf("stored settings policy:\n%s", d.Document)
	}
	_, err = e.admin.UpdateProject(ctx, "p", api.UpdateProjectRequest{Severity: pval("severe")})
	wantCode(t, "bad severity", err, apperr.EINVALID)

	dev := e.user(t, "dev", "dev-pw-12", rbac.RoleDeveloper)
	_, err = dev.UpdateProject(ctx, "p", api.UpdateProjectRequest{ContentTrust: pval(true)})
	wantCode(t, "developer", err, apperr.EDENIED)

	audited := false
	for _, ev := range e.rec.find("project.update") {
		if ev.Outcome == audit.Success && ev.Details["severity"] == "high" && ev.Details["preventVulnerable"] == "true" && ev.Details["policyRevision"] != "" {
			audited = true
		}
	}
	if !audited {
		t.Fatalf("project.update events = %+v, want the settings change", e.rec.find("project.update"))
	}

	// A hand-written project-p policy is not settings: shown as custom,
	// PATCH refused naming the way out.
	if _, err := e.admin.ApplyPolicy(ctx, "project-p", projectPPolicy); err != nil {
		t.Fatal(err)
	}
	if p, err = e.admin.Project(ctx, "p"); err != nil || p.Security.Custom == "" {
		t.Fatalf("custom policy = %+v, %v", p.Security, err)
	}
	_, err = e.admin.UpdateProject(ctx, "p", api.UpdateProjectRequest{Severity: pval("low")})
	if apperr.Code(err) != apperr.EINVALID || !strings.Contains(err.Error(), "not a project settings policy") {
		t.Fatalf("PATCH over a custom policy: %v", err)
	}
}

// TestSystemAllowlistAPI: administrators change it, others read it,
// changes are audited with the new revision.
func TestSystemAllowlistAPI(t *testing.T) {
	e := newAPIEnv(t, nil)
	ctx := context.Background()
	al, err := e.admin.AddSystemAllowlistEntry(ctx, api.AllowlistEntry{ID: "CVE-2019-14697", Expires: "30d", Reason: "r"})
	if err != nil || len(al.Entries) != 1 || al.Revision == 0 || al.Entries[0].AddedBy != "admin" {
		t.Fatalf("add = %+v, %v", al, err)
	}
	_, err = e.admin.AddSystemAllowlistEntry(ctx, api.AllowlistEntry{ID: "not an id!"})
	wantCode(t, "bad id", err, apperr.EINVALID)
	dev := e.user(t, "dev", "dev-pw-12", rbac.RoleProjectAdmin)
	if al, err := dev.SystemAllowlist(ctx); err != nil || len(al.Entries) != 1 {
		t.Fatalf("a user reading: %+v, %v", al, err)
	}
	_, err = dev.AddSystemAllowlistEntry(ctx, api.AllowlistEntry{ID: "CVE-2020-1"})
	wantCode(t, "project admin adding", err, apperr.EDENIED)
	_, err = dev.RemoveSystemAllowlistEntry(ctx, "CVE-2019-14697")
	wantCode(t, "project admin removing", err, apperr.EDENIED)
	if al, err := e.admin.RemoveSystemAllowlistEntry(ctx, "cve-2019-14697"); err != nil || len(al.Entries) != 0 {
		t.Fatalf("remove = %+v, %v", al, err)
	}
	_, err = e.admin.RemoveSystemAllowlistEntry(ctx, "CVE-2019-14697")
	wantCode(t, "removing again", err, apperr.ENOTFOUND)
	// Audited: the add and the remove, and the project admin's refusals.
	for _, action := range []string{"system_allowlist.add", "system_allowlist.remove"} {
		var ok, denied int
		for _, ev := range e.rec.find(action) {
			switch ev.Outcome {
			case audit.Success:
				ok++
				if ev.Details["revision"] == "" || ev.Details["id"] == "" {
					t.Errorf("%s event without id or revision: %+v", action, ev)
				}
			case audit.Denied:
				denied++
			}
		}
		if ok != 1 || denied != 1 {
			t.Errorf("%s events: %d successes, %d refusals, want 1 and 1", action, ok, denied)
		}
	}
}

// TestEvaluateAPI: the what-if view's errors name the field; an outside
// image is decided by the door asked.
func TestEvaluateAPI(t *testing.T) {
	e := newAPIEnv(t, nil)
	ctx := context.Background()
	if _, err := e.admin.ApplyPolicy(ctx, "base", basePolicy); err != nil {
		t.Fatal(err)
	}
	for name, req := range map[string]api.EvaluateRequest{
		"bad image":  {Image: "Not A Ref"},
		"bad door":   {Image: "nginx", Door: "kitchen"},
		"bad policy": {Image: "nginx", Policies: []string{"apiVersion: nope\n"}},
	} {
		_, err := e.admin.Evaluate(ctx, req)
		wantCode(t, name, err, apperr.EINVALID)
	}
	// At the registry door the cluster policy (deny latest) does not
	// apply and the default allows; where images run it denies.
	res, err := e.admin.Evaluate(ctx, api.EvaluateRequest{Image: "nginx:latest"})
	if err != nil || res.Door != api.DoorRegistry || res.Decision.Outcome != policy.Allowed {
		t.Fatalf("registry door: %+v, %v", res, err)
	}
	res, err = e.admin.Evaluate(ctx, api.EvaluateRequest{Image: "nginx:latest", Environment: "production"})
	if err != nil || res.Door != api.DoorRuntime || res.Decision.Outcome != policy.Denied || !strings.Contains(res.Message, "latest") {
		t.Fatalf("runtime door: %+v, %v", res, err)
	}
	// An image of this server (one of its configured hosts) has its tag
	// resolved: a missing tag is ENOTFOUND; its project must be visible.
	_, err = e.admin.Evaluate(ctx, api.EvaluateRequest{Image: "REGISTRY.example/p/app:v1"})
	wantCode(t, "missing tag of a customs image", err, apperr.ENOTFOUND)
	outsider := e.user(t, "outsider", "outsider-pw-1", rbac.Role(0))
	_, err = outsider.Evaluate(ctx, api.EvaluateRequest{Image: "registry.example/q/app@sha256:" + strings.Repeat("a", 64)})
	wantCode(t, "a project the caller cannot see", err, apperr.ENOTFOUND)
	_, err = e.as("", "").Evaluate(ctx, api.EvaluateRequest{Image: "nginx"})
	wantCode(t, "anonymous", err, apperr.EUNAUTHORIZED)
}
