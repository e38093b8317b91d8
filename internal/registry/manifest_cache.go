package registry

import (
	"container/list"
	"sync"

	"github.com/opencontainers/go-digest"
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
