package registry

import (
	"container/list"
	"sync"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultManifestCacheBytes is the manifest cache size customs serve
// configures by default (registry.manifestCacheBytes).
const DefaultManifestCacheBytes = 32 << 20

// MaxCachedManifestBytes is the largest manifest the cache keeps: image
// manifests and indexes are a few KiB; the rare large ones are read from
// the blob store each time rather than evicting hundreds of small ones.
const MaxCachedManifestBytes = 256 << 10

// manifestEntryOverhead is what an entry costs beside its bytes (list
// element, map slot, digest string), counted against the bound so that a
// cache of tiny manifests stays within it too.
const manifestEntryOverhead = 256

// manifestCache keeps manifest bytes by digest, least recently used out
// first, within a byte bound. Entries never go stale: a digest names one
// content. It is only ever asked after the metadata store said the
// manifest is in the repository, so a deleted manifest is not served from
// it. Safe for concurrent use; a nil *manifestCache is disabled.
type manifestCache struct {
	mu    sync.Mutex
	max   int64 // bound on used
	used  int64 // bytes of entries plus their overhead
	ll    *list.List
	items map[digest.Digest]*list.Element

	hits, misses uint64
}

type manifestEntry struct {
	d    digest.Digest
	body []byte
}

// newManifestCache returns a cache of at most max bytes, nil (disabled)
// when max is 0.
func newManifestCache(max int64) *manifestCache {
	if max <= 0 {
		return nil
	}
	return &manifestCache{max: max, ll: list.New(), items: make(map[digest.Digest]*list.Element)}
}

func entryCost(d digest.Digest, body []byte) int64 {
	return int64(len(body)) + int64(len(d)) + manifestEntryOverhead
}

// fits reports whether manifest d of size bytes would be kept.
func (c *manifestCache) fits(d digest.Digest, size int64) bool {
	return c != nil && size >= 0 && size <= MaxCachedManifestBytes && size+int64(len(d))+manifestEntryOverhead <= c.max
}

// get returns d's bytes, which the caller must not modify.
func (c *manifestCache) get(d digest.Digest) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[d]
	if !ok {
		c.misses++
		return nil, false
	}
	c.hits++
	c.ll.MoveToFront(el)
	return el.Value.(*manifestEntry).body, true
}

// put keeps body as d's bytes (the cache owns body from now on), evicting
// the least recently used entries to stay within the bound. Bodies over
// MaxCachedManifestBytes or the bound are not kept.
func (c *manifestCache) put(d digest.Digest, body []byte) {
	if !c.fits(d, int64(len(body))) {
		return
	}
	cost := entryCost(d, body)
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[d]; ok {
		c.ll.MoveToFront(el)
		return
	}
	for c.used+cost > c.max {
		last := c.ll.Back()
		e := last.Value.(*manifestEntry)
		c.ll.Remove(last)
		delete(c.items, e.d)
		c.used -= entryCost(e.d, e.body)
	}
	c.items[d] = c.ll.PushFront(&manifestEntry{d: d, body: body})
	c.used += cost
}

// manifestCacheStats is a snapshot of a cache's state.
type manifestCacheStats struct {
	Entries      int
	Bytes        int64 // entries' bytes plus their overhead, at most Max
	Max          int64
	Hits, Misses uint64
}

func (c *manifestCache) stats() manifestCacheStats {
	if c == nil {
		return manifestCacheStats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return manifestCacheStats{Entries: c.ll.Len(), Bytes: c.used, Max: c.max, Hits: c.hits, Misses: c.misses}
}

// registerManifestCacheMetrics exposes c's counters and size on reg:
// customs_registry_manifest_cache_hits_total and _misses_total (lookups,
// each a pull of a manifest that is in the repository), _bytes (entries
// plus their overhead) and _max_bytes (the bound). Each is read from a
// snapshot of c when scraped.
func registerManifestCacheMetrics(reg prometheus.Registerer, c *manifestCache) {
	const prefix = "customs_registry_manifest_cache_"
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: prefix + "hits_total",
			Help: "Manifest reads served from the in-memory manifest cache.",
		}, func() float64 { return float64(c.stats().Hits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: prefix + "misses_total",
			Help: "Manifest reads the in-memory manifest cache did not hold (read from the blob store).",
		}, func() float64 { return float64(c.stats().Misses) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: prefix + "bytes",
			Help: "Bytes the manifest cache holds, entries plus their bookkeeping.",
		}, func() float64 { return float64(c.stats().Bytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: prefix + "max_bytes",
			Help: "The manifest cache's bound (registry.manifestCacheBytes).",
		}, func() float64 { return float64(c.stats().Max) }),
	)
}
