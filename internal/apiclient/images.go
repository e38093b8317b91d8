package apiclient

import (
	"context"
	"net/http"

	"github.com/customs-dev/customs/internal/api"
)

// Image returns what GET /api/v1/images/{ref} says of an image: ref is a
// manifest digest, or "project/repository:tag" or
// "project/repository@digest". The answer's Status says where the scan
// stands (with Position or Stage while it is pending): the request asks
// for 200 whatever the status (anyStatus=true). An image that is unknown,
// or that the caller may not pull, is ENOTFOUND.
func (c *Client) Image(ctx context.Context, ref string) (*api.ImageVulnerabilities, error) {
	var out api.ImageVulnerabilities
	if err := c.do(ctx, http.MethodGet, "/api/v1/images/"+escapePath(ref)+"?anyStatus=true", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
