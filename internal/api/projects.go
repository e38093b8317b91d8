package api

import (
	"net/http"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/store"
)

// visible reports whether p may see project pr.
func visible(p auth.Principal, pr *store.Project) bool {
	return pr.Public || p.Admin
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
		if visible(p, &all[i]) {
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
	if err := requireAdmin(p); err != nil {
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
	w.Header().Set("Location", "/api/v1/projects/"+pr.Name)
	writeJSON(w, http.StatusCreated, toProject(*pr))
	return nil
}

// lookup returns the named project if p may see it; ENOTFOUND otherwise, so
// private projects cannot be probed.
func (h *handler) lookup(r *http.Request, p auth.Principal) (*store.Project, error) {
	name := r.PathValue("name")
	pr, err := h.opts.Store.Project(r.Context(), name)
	if err != nil && !apperr.Is(err, apperr.ENOTFOUND) {
		return nil, err
	}
	if err != nil || !visible(p, pr) {
		if p.Kind == auth.KindAnonymous {
			return nil, apperr.Errorf(apperr.EUNAUTHORIZED, "authentication required")
		}
		return nil, apperr.Errorf(apperr.ENOTFOUND, "project %q not found", name)
	}
	return pr, nil
}

func (h *handler) getProject(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	pr, err := h.lookup(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toProject(*pr))
	return nil
}

// UpdateProjectRequest is the body of PATCH /api/v1/projects/{name}; absent
// fields are left unchanged.
type UpdateProjectRequest struct {
	Public *bool `json:"public"`
}

func (h *handler) updateProject(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	pr, err := h.lookup(r, p)
	if err != nil {
		return err
	}
	var req UpdateProjectRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Public != nil {
		pr.Public = *req.Public
	}
	if err := h.opts.Store.UpdateProject(r.Context(), pr); err != nil {
		return err
	}
	reqLogger(r, h).Info("project updated", "project", pr.Name, "public", pr.Public, "by", p.Name)
	writeJSON(w, http.StatusOK, toProject(*pr))
	return nil
}

func (h *handler) deleteProject(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	pr, err := h.lookup(r, p)
	if err != nil {
		return err
	}
	if err := h.opts.Store.DeleteProject(r.Context(), pr.Name); err != nil {
		if apperr.Is(err, apperr.ECONFLICT) {
			return apperr.Errorf(apperr.ECONFLICT, "project %q still holds repositories; delete them first", pr.Name)
		}
		return err
	}
	reqLogger(r, h).Info("project deleted", "project", pr.Name, "by", p.Name)
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
