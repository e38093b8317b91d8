package apiclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/customs-dev/customs/internal/api"
)

// UpdateProject changes the project settings req sets (PATCH
// /api/v1/projects/{name}; absent fields are left as they are) and
// returns the project with its settings.
func (c *Client) UpdateProject(ctx context.Context, name string, req api.UpdateProjectRequest) (api.Project, error) {
	var p api.Project
	err := c.do(ctx, http.MethodPatch, "/api/v1/projects/"+url.PathEscape(name), req, &p)
	return p, err
}

// SystemAllowlist returns the system allowlist.
func (c *Client) SystemAllowlist(ctx context.Context) (api.SystemAllowlist, error) {
	var out api.SystemAllowlist
	err := c.do(ctx, http.MethodGet, "/api/v1/system/allowlist", nil, &out)
	return out, err
}

// AddSystemAllowlistEntry adds (or replaces) an entry of the system
// allowlist and returns the list.
func (c *Client) AddSystemAllowlistEntry(ctx context.Context, e api.AllowlistEntry) (api.SystemAllowlist, error) {
	var out api.SystemAllowlist
	err := c.do(ctx, http.MethodPost, "/api/v1/system/allowlist", e, &out)
	return out, err
}

// RemoveSystemAllowlistEntry removes every entry of advisory id from the
// system allowlist and returns the list.
func (c *Client) RemoveSystemAllowlistEntry(ctx context.Context, id string) (api.SystemAllowlist, error) {
	var out api.SystemAllowlist
	err := c.do(ctx, http.MethodDelete, "/api/v1/system/allowlist/"+url.PathEscape(id), nil, &out)
	return out, err
}

// Evaluate asks the server to decide an image as a door would (POST
// /api/v1/policies/evaluate, the what-if view).
func (c *Client) Evaluate(ctx context.Context, req api.EvaluateRequest) (api.EvaluateResult, error) {
	var out api.EvaluateResult
	err := c.do(ctx, http.MethodPost, "/api/v1/policies/evaluate", req, &out)
	return out, err
}
