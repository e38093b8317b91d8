package scan

import (
	"context"
	"log/slog"

	"github.com/customs-dev/customs/internal/scan/extract"
	"github.com/customs-dev/customs/internal/store"
)

// layerCache is the extract.LayerCache of the scanner: per-layer results
// in the metadata database, keyed by diffID and extractor version, so they
// survive restarts and are shared by every replica.
type layerCache struct {
	st  store.LayerCacheStore
	log *slog.Logger
	m   *metrics
}

var _ extract.LayerCache = (*layerCache)(nil)

// Get implements extract.LayerCache.
func (c *layerCache) Get(ctx context.Context, k extract.CacheKey) ([]byte, bool, error) {
	b, ok, err := c.st.LayerResult(ctx, k.DiffID, k.Version)
	switch {
	case err != nil:
		c.m.cache.WithLabelValues("error").Inc()
		c.log.Warn("scan: reading a cached layer result failed; reading the layer", "diff_id", k.DiffID, "err", err)
	case ok:
		c.m.cache.WithLabelValues("hit").Inc()
	default:
		c.m.cache.WithLabelValues("miss").Inc()
	}
	return b, ok, err
}

// Put implements extract.LayerCache.
func (c *layerCache) Put(ctx context.Context, k extract.CacheKey, value []byte) error {
	err := c.st.PutLayerResult(ctx, k.DiffID, k.Version, value)
	if err != nil {
		c.log.Warn("scan: caching a layer result failed", "diff_id", k.DiffID, "err", err)
	}
	return err
}
