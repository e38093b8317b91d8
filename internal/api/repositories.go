package api

import (
	"net/http"
	"strconv"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/rbac"
)

// Audit action of repository deletions.
const auditRepositoryDelete = "repository.delete"

// RepositoryDeletion is the answer of DELETE
// /api/v1/projects/{name}/repositories/{repository}: what was removed.
// Blobs are left to garbage collection (customs gc), since other
// repositories may share them.
type RepositoryDeletion struct {
	Repository string `json:"repository"`
	Tags       int64  `json:"tags"`
	Manifests  int64  `json:"manifests"`
	BlobLinks  int64  `json:"blobLinks"`
}

// deleteRepository deletes a repository of the project with every tag and
// manifest (rbac.ActionDeleteRepository). {rest} is the repository's path
// inside the project, slashes included, as in the other repository routes.
func (h *handler) deleteRepository(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	pr, err := h.lookup(r, p)
	if err != nil {
		return err
	}
	rest := r.PathValue("rest")
	repo := pr.Name + "/" + rest
	if err := h.require(r, p, pr, rbac.ActionDeleteRepository, auditRepositoryDelete, "repository:"+repo); err != nil {
		return err
	}
	if rest == "" {
		return apperr.Errorf(apperr.EINVALID, "no repository named: DELETE /api/v1/projects/%s/repositories/<path>", pr.Name)
	}
	del, err := h.opts.Store.DeleteRepository(r.Context(), repo)
	if err != nil {
		return err
	}
	reqLogger(r, h).Info("repository deleted", "repository", repo, "tags", del.Tags, "manifests", del.Manifests,
		"by", p.Name)
	h.audit(r, p, audit.Event{Action: auditRepositoryDelete, Resource: "repository:" + repo, Project: pr.Name,
		Details: map[string]string{
			"tags":      strconv.FormatInt(del.Tags, 10),
			"manifests": strconv.FormatInt(del.Manifests, 10),
			"blobLinks": strconv.FormatInt(del.BlobLinks, 10),
		}})
	writeJSON(w, http.StatusOK, RepositoryDeletion{Repository: repo, Tags: del.Tags, Manifests: del.Manifests,
		BlobLinks: del.BlobLinks})
	return nil
}
