package apiclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/customs-dev/customs/internal/api"
)

// ApplyPolicy saves document (one policy in YAML) as policy name: a new
// revision when it differs from the stored one.
func (c *Client) ApplyPolicy(ctx context.Context, name, document string) (api.PolicyDocument, error) {
	var out api.PolicyDocument
	err := c.do(ctx, http.MethodPut, "/api/v1/policies/"+url.PathEscape(name), api.PutPolicyRequest{Document: document}, &out)
	return out, err
}

// Policy returns the current version of a policy, with its document.
func (c *Client) Policy(ctx context.Context, name string) (api.PolicyDocument, error) {
	var out api.PolicyDocument
	err := c.do(ctx, http.MethodGet, "/api/v1/policies/"+url.PathEscape(name), nil, &out)
	return out, err
}

// PolicyHistory returns every version of a policy, newest first.
func (c *Client) PolicyHistory(ctx context.Context, name string) ([]api.PolicyDocument, error) {
	var out struct {
		History []api.PolicyDocument `json:"history"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/policies/"+url.PathEscape(name)+"/history", nil, &out)
	return out.History, err
}

// Policies lists the policies the caller may read (without documents) and
// the global policy revision.
func (c *Client) Policies(ctx context.Context) ([]api.PolicyDocument, int64, error) {
	var out struct {
		Revision int64                `json:"revision"`
		Policies []api.PolicyDocument `json:"policies"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/policies", nil, &out)
	return out.Policies, out.Revision, err
}

// DeletePolicy deletes a policy.
func (c *Client) DeletePolicy(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/policies/"+url.PathEscape(name), nil, nil)
}

// Allowlist returns a project's CVE allowlist.
func (c *Client) Allowlist(ctx context.Context, project string) (api.Allowlist, error) {
	var out api.Allowlist
	err := c.do(ctx, http.MethodGet, "/api/v1/projects/"+url.PathEscape(project)+"/allowlist", nil, &out)
	return out, err
}

// AddAllowlistEntry adds (or replaces) an entry of a project's CVE
// allowlist and returns the list.
func (c *Client) AddAllowlistEntry(ctx context.Context, project string, e api.AllowlistEntry) (api.Allowlist, error) {
	var out api.Allowlist
	err := c.do(ctx, http.MethodPost, "/api/v1/projects/"+url.PathEscape(project)+"/allowlist", e, &out)
	return out, err
}

// RemoveAllowlistEntry removes every entry for advisory id from a
// project's CVE allowlist and returns the list.
func (c *Client) RemoveAllowlistEntry(ctx context.Context, project, id string) (api.Allowlist, error) {
	var out api.Allowlist
	err := c.do(ctx, http.MethodDelete, "/api/v1/projects/"+url.PathEscape(project)+"/allowlist/"+url.PathEscape(id), nil, &out)
	return out, err
}
