package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/apperr"
)

// DeleteRepository deletes repository repo ("<project>/<path>") with every
// tag and manifest, and returns what was removed.
func (c *Client) DeleteRepository(ctx context.Context, repo string) (api.RepositoryDeletion, error) {
	var out api.RepositoryDeletion
	project, path, ok := strings.Cut(repo, "/")
	if !ok || project == "" || path == "" {
		return out, apperr.Errorf(apperr.EINVALID, "repository %q is not of the form <project>/<path>", repo)
	}
	err := c.do(ctx, http.MethodDelete, "/api/v1/projects/"+url.PathEscape(project)+"/repositories/"+escapePath(path), nil, &out)
	return out, err
}
