package apiclient

import (
	"context"
	"net/http"

	"github.com/customs-dev/customs/internal/api"
)

// RefusedWorkloads returns the server's last audit of running workloads
// (GET /api/v1/workloads/refused); ENOTFOUND before its first run.
func (c *Client) RefusedWorkloads(ctx context.Context) (*api.WorkloadAudit, error) {
	var out api.WorkloadAudit
	if err := c.do(ctx, http.MethodGet, "/api/v1/workloads/refused", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
