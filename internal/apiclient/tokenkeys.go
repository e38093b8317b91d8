package apiclient

import (
	"context"
	"net/http"

	"github.com/customs-dev/customs/internal/api"
)

// TokenKeys lists the server's token signing keys (system administrators).
func (c *Client) TokenKeys(ctx context.Context) (api.TokenKeyList, error) {
	var out api.TokenKeyList
	err := c.do(ctx, http.MethodGet, "/api/v1/system/token-keys", nil, &out)
	return out, err
}

// RotateTokenKey makes a new token signing key; tokens signed before keep
// verifying.
func (c *Client) RotateTokenKey(ctx context.Context) (api.TokenKeyRotation, error) {
	var out api.TokenKeyRotation
	err := c.do(ctx, http.MethodPost, "/api/v1/system/token-keys:rotate", nil, &out)
	return out, err
}

// PruneTokenKeys removes the non-signing key files older than olderThan
// ("2160h", "90d"); the server refuses an age under the refresh-token
// lifetime.
func (c *Client) PruneTokenKeys(ctx context.Context, olderThan string) (api.TokenKeyPrune, error) {
	var out api.TokenKeyPrune
	err := c.do(ctx, http.MethodPost, "/api/v1/system/token-keys:prune", api.TokenKeyPruneRequest{OlderThan: olderThan}, &out)
	return out, err
}
