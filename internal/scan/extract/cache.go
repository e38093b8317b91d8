package extract

import (
	"container/list"
	"context"
	"sync"
)

// CacheKey identifies a cached layer result: the layer's diffID and the
// version of the extractor set that produced it (Extractor.Version), so an
// upgrade of the extractors never serves an old result.
type CacheKey struct {
	DiffID  string
	Version string
}

// LayerCache keeps layer results (LayerResult.Marshal bytes) between scans,
// so that a layer shared by many images is read once. Implementations must
// be safe for concurrent use. A Get error is treated as a miss and a Put
// error is ignored by the extractor (the cache only saves work), but both
// should be logged by the implementation.
type LayerCache interface {
	// Get returns the value stored under k; ok is false when there is none.
	Get(ctx context.Context, k CacheKey) (value []byte, ok bool, err error)
	// Put stores value under k, replacing what was there.
	Put(ctx context.Context, k CacheKey, value []byte) error
}

// MemoryCache is a LayerCache in memory that keeps the most recently used
// results within a byte budget.
type MemoryCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	order *list.List // of *memEntry, most recently used first
	byKey map[CacheKey]*list.Element
}

type memEntry struct {
	key   CacheKey
	value []byte
}

// NewMemoryCache returns an empty cache that holds at most maxBytes of
// values; a single value larger than that is not kept.
func NewMemoryCache(maxBytes int64) *MemoryCache {
	return &MemoryCache{max: maxBytes, order: list.New(), byKey: map[CacheKey]*list.Element{}}
}

// Get implements LayerCache.
func (c *MemoryCache) Get(_ context.Context, k CacheKey) ([]byte, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[k]
	if !ok {
		return nil, false, nil
	}
	c.order.MoveToFront(el)
	return el.Value.(*memEntry).value, true, nil
}

// Put implements LayerCache. The cache keeps value as it is: callers must
// not change it afterwards.
func (c *MemoryCache) Put(_ context.Context, k CacheKey, value []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[k]; ok {
		c.size -= int64(len(el.Value.(*memEntry).value))
		c.order.Remove(el)
		delete(c.byKey, k)
	}
	if int64(len(value)) > c.max {
		return nil
	}
	c.byKey[k] = c.order.PushFront(&memEntry{key: k, value: value})
	c.size += int64(len(value))
	for c.size > c.max {
		last := c.order.Back()
		e := last.Value.(*memEntry)
		c.order.Remove(last)
		delete(c.byKey, e.key)
		c.size -= int64(len(e.value))
	}
	return nil
}

// Len returns the number of results held.
func (c *MemoryCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byKey)
}
