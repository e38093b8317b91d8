package api

import (
	"net/http"
	"strconv"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/rbac"
	"github.com/customs-dev/customs/internal/store"
)

// Audit actions of project changes.
const (
	auditProjectCreate = "project.create"
	auditProjectUpdate = "project.update"
	auditProjectDelete = "project.delete"
)

// visible reports whether p may see project pr: public projects and, for
// others, the rbac.ActionReadProject permission.
func (h *handler) visible(r *http.Request, p auth.Principal, pr *store.Project) (bool, error) {
	if pr.Public || (p.Admin && p.Kind != auth.KindAnonymous) {
		return true, nil
	}
	if p.Kind == auth.KindAnonymous {
		return false, nil
	}
	may, err := h.opts.Auth.ProjectPermissions(r.Context(), p, pr.Name)
	return may.Has(rbac.ActionReadProject), err
}

func (h *handler) listProjects(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	all, err := h.opts.Store.Projects(r.Context(), pg)
	if err != nil {
		return err
	}
	out := []Project{}
	for i := range all {
		ok, err := h.visible(r, p, &all[i])
		if err != nil {
			return err
		}
		if ok {
			out = append(out, toProject(all[i]))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"projects": out})
	return nil
}

// CreateProjectRequest is the body of POST /api/v1/projects.
type CreateProjectRequest struct {
	Name   string `json:"name"`
	Public bool   `json:"public"`
}

func (h *handler) createProject(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := h.requireAdmin(r, p, auditProjectCreate, ""); err != nil {
		return err
	}
	var req CreateProjectRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := ValidateProjectName(req.Name); err != nil {
		return err
	}
	pr := &store.Project{Name: req.Name, Public: req.Public}
	if err := h.opts.Store.CreateProject(r.Context(), pr); err != nil {
		if apperr.Is(err, apperr.ECONFLICT) {
			return apperr.Errorf(apperr.ECONFLICT, "project %q already exists", req.Name)
		}
		return err
	}
	reqLogger(r, h).Info("project created", "project", pr.Name, "public", pr.Public, "by", p.Name)
	h.audit(r, p, audit.Event{Action: auditProjectCreate, Resource: "project:" + pr.Name, Project: pr.Name,
		Details: map[string]string{"public": strconv.FormatBool(pr.Public)}})
	w.Header().Set("Location", "/api/v1/projects/"+pr.Name)
	writeJSON(w, http.StatusCreated, toProject(*pr))
	return nil
}

func (h *handler) getProject(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	pr, err := h.lookup(r, p)
	if err != nil {
		return err
	}
	out := toProject(*pr.Project)
	if err := h.withScanSettings(r, &out); err != nil {
		return err
	}
	if err := h.withSecurity(r, &out); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// withScanSettings fills out's scan settings when the server scans.
func (h *handler) withScanSettings(r *http.Request, out *Project) error {
	if h.opts.ScanStore == nil {
		return nil
	}
	s, err := h.opts.ScanStore.ScanSettings(r.Context(), out.Name)
	if err != nil {
		return err
	}
	out.ScanOnPush, out.SBOMReferrer = &s.ScanOnPush, &s.SBOMReferrer
	return nil
}

// UpdateProjectRequest is the body of PATCH /api/v1/projects/{name}; absent
// fields are left unchanged.
type UpdateProjectRequest struct {
	Public *bool `json:"public"`
	// ScanOnPush turns scanning of pushed manifests on or off.
	ScanOnPush *bool `json:"scanOnPush"`
	// SBOMReferrer turns storing scanned images' SBOMs as OCI referrers
	// on or off.
	SBOMReferrer *bool `json:"sbomReferrer"`
	// PreventVulnerable is "prevent vulnerable images from running":
	// pulls (and admission) of images with findings at or above Severity
	// are refused.
	PreventVulnerable *bool `json:"preventVulnerable"`
	// Severity is the threshold: none, low, medium, high or critical.
	Severity *string `json:"severity"`
	// ContentTrust is "enable content trust": only signed images.
	ContentTrust *bool `json:"contentTrust"`
	// UseSystemAllowlist lets the system allowlist apply to the
	// project's images too.
	UseSystemAllowlist *bool `json:"useSystemAllowlist"`
}

func (h *handler) updateProject(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	pr, err := h.lookup(r, p)
	if err != nil {
		return err
	}
	if err := h.require(r, p, pr, rbac.ActionManageSettings, auditProjectUpdate, "project:"+pr.Name); err != nil {
		return err
	}
	var req UpdateProjectRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	details := map[string]string{}
	if req.Public != nil {
		details["public"] = strconv.FormatBool(*req.Public)
		pr.Public = *req.Public
	}
	if req.ScanOnPush != nil || req.SBOMReferrer != nil {
		if h.opts.ScanStore == nil {
			return apperr.Errorf(apperr.EINVALID, "scanOnPush, sbomReferrer: this server does not scan")
		}
		settings, err := h.opts.ScanStore.ScanSettings(r.Context(), pr.Name)
		if err != nil {
			return err
		}
		if req.ScanOnPush != nil {
			details["scanOnPush"] = strconv.FormatBool(*req.ScanOnPush)
			settings.ScanOnPush = *req.ScanOnPush
		}
		if req.SBOMReferrer != nil {
			details["sbomReferrer"] = strconv.FormatBool(*req.SBOMReferrer)
			settings.SBOMReferrer = *req.SBOMReferrer
		}
		if err := h.opts.ScanStore.PutScanSettings(r.Context(), pr.Name, settings); err != nil {
			return err
		}
	}
	var security *ProjectSecurity
	if req.PreventVulnerable != nil || req.Severity != nil || req.ContentTrust != nil || req.UseSystemAllowlist != nil {
		if security, err = h.updateSecurity(r, p, pr.Name, req, details); err != nil {
			return err
		}
	}
	if err := h.opts.Store.UpdateProject(r.Context(), pr.Project); err != nil {
		return err
	}
	h.opts.Auth.ForgetPermissions() // public projects grant anyone pull
	reqLogger(r, h).Info("project updated", "project", pr.Name, "public", pr.Public, "by", p.Name)
	h.audit(r, p, audit.Event{Action: auditProjectUpdate, Resource: "project:" + pr.Name, Project: pr.Name, Details: details})
	out := toProject(*pr.Project)
	if err := h.withScanSettings(r, &out); err != nil {
		return err
	}
	if security != nil {
		out.Security = security
	} else if err := h.withSecurity(r, &out); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) deleteProject(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	pr, err := h.lookup(r, p)
	if err != nil {
		return err
	}
	if err := h.require(r, p, pr, rbac.ActionDeleteProject, auditProjectDelete, "project:"+pr.Name); err != nil {
		return err
	}
	if err := h.opts.Store.DeleteProject(r.Context(), pr.Name); err != nil {
		if apperr.Is(err, apperr.ECONFLICT) {
			return apperr.Errorf(apperr.ECONFLICT, "project %q still holds repositories; delete them first", pr.Name)
		}
		return err
	}
	h.opts.Auth.ForgetPermissions()
	reqLogger(r, h).Info("project deleted", "project", pr.Name, "by", p.Name)
	h.audit(r, p, audit.Event{Action: auditProjectDelete, Resource: "project:" + pr.Name, Project: pr.Name})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) listRepositories(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	pr, err := h.lookup(r, p)
	if err != nil {
		return err
	}
	pg, err := page(r)
	if err != nil {
		return err
	}
	repos, err := h.opts.Store.Repositories(r.Context(), pr.Name, pg)
	if err != nil {
		return err
	}
	if repos == nil {
		repos = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"repositories": repos})
	return nil
}
