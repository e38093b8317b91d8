package policy

import (
	"container/list"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// CacheConfig configures a Cache.
type CacheConfig struct {
	// MaxEntries bounds the number of decisions kept (least recently used
	// go first); 10000 when zero.
	MaxEntries int
	// AllowTTL and DenyTTL are how long allowed (and warned) and denied
	// decisions are kept; 1 minute and 10 seconds when zero.
	AllowTTL time.Duration
	DenyTTL  time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Cache keeps decisions, keyed by everything a decision depends on: the
// engine revision, the image reference and resolved digest, environment,
// namespace and project, the scan (status, vulnerability database revision,
// match time), the system allowlist's revision and the verified signatures.
// Concurrent evaluations of one key share one evaluation. A decision is
// kept for its TTL, never past its ValidUntil (an allowlist entry it relied
// on expiring). It is safe for concurrent use.
type Cache struct {
	cfg CacheConfig

	mu       sync.Mutex
	entries  map[cacheKey]*list.Element
	lru      *list.List // of *cacheEntry, most recent first
	inflight map[cacheKey]*flight
}

type cacheEntry struct {
	key     cacheKey
	d       *Decision
	expires time.Time
}

type flight struct {
	done chan struct{}
	d    *Decision
	err  error
}

// cacheKey is comparable; strings are shared with the Input, so building
// one does not copy them.
type cacheKey struct {
	engine                            string
	registry, repository, tag, refDig string
	digest                            string
	env, ns, project                  string
	scanStatus                        ScanStatus
	scanned                           bool
	vulndb                            int64
	matchedAt                         int64
	allowlists                        string
	signatures                        string // "" when nil, "+" and fingerprints otherwise
	external                          bool
	annotations                       string // sorted, quoted key=value pairs
}

// NewCache returns an empty cache.
func NewCache(cfg CacheConfig) *Cache {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 10000
	}
	if cfg.AllowTTL <= 0 {
		cfg.AllowTTL = time.Minute
	}
	if cfg.DenyTTL <= 0 {
		cfg.DenyTTL = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cache{cfg: cfg, entries: map[cacheKey]*list.Element{}, lru: list.New(), inflight: map[cacheKey]*flight{}}
}

// Evaluator is what a Cache evaluates with: an *Engine, or anything that
// decides alike whenever its Revision is the same.
type Evaluator interface {
	Revision() string
	Evaluate(ctx context.Context, in *Input) (*Decision, error)
}

func keyOf(e Evaluator, in *Input) cacheKey {
	k := cacheKey{
		engine: e.Revision(), registry: in.Image.Registry, repository: in.Image.Repository, tag: in.Image.Tag,
		refDig: in.Image.Digest, digest: in.Digest, env: in.Environment, ns: in.Namespace, project: in.Project,
		allowlists: in.SystemAllowlist.Revision, external: in.External,
	}
	if len(in.Annotations) > 0 {
		keys := make([]string, 0, len(in.Annotations))
		for k := range in.Annotations {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%q=%q;", k, in.Annotations[k])
		}
		k.annotations = b.String()
	}
	if s := in.Scan; s != nil {
		k.scanned, k.scanStatus, k.vulndb, k.matchedAt = true, s.Status, s.VulnDBRevision, s.MatchedAt.UnixNano()
	}
	if sg := in.Signatures; sg != nil {
		var b strings.Builder
		b.WriteString("+")
		for _, v := range sg.Verified {
			fmt.Fprintf(&b, "%q %q %q;", v.KeyFingerprint, v.Issuer, v.Subject)
		}
		k.signatures = b.String()
	}
	return k
}

// Evaluate returns the cached decision for in, or evaluates it with e
// (once for all concurrent callers with the same key) and keeps it. The
// key holds e's revision, so decisions of another engine are never served. The
// evaluation is not cancelled when ctx is (other callers may wait for it;
// Rego time is bounded by the engine); a caller whose ctx ends while it
// waits gets ctx's error. Errors (an invalid Input) are not kept.
func (c *Cache) Evaluate(ctx context.Context, e Evaluator, in *Input) (*Decision, error) {
	k := keyOf(e, in)
	now := c.cfg.Now()
	c.mu.Lock()
	if el, ok := c.entries[k]; ok {
		ent := el.Value.(*cacheEntry)
		if now.Before(ent.expires) {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			return ent.d, nil
		}
		c.lru.Remove(el)
		delete(c.entries, k)
	}
	if f, ok := c.inflight[k]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.d, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{})}
	c.inflight[k] = f
	c.mu.Unlock()

	func() {
		// A panic must not leave the waiters hanging: it becomes an error.
		defer func() {
			if r := recover(); r != nil {
				f.d, f.err = nil, fmt.Errorf("policy evaluation of %s panicked: %v", in.Image.String(), r)
			}
		}()
		f.d, f.err = e.Evaluate(context.WithoutCancel(ctx), in)
	}()

	c.mu.Lock()
	delete(c.inflight, k)
	if f.err == nil {
		c.store(k, f.d, c.cfg.Now())
	}
	c.mu.Unlock()
	close(f.done)
	return f.d, f.err
}

// store keeps d under k; c.mu is held.
func (c *Cache) store(k cacheKey, d *Decision, now time.Time) {
	ttl := c.cfg.AllowTTL
	if d.Outcome == Denied {
		ttl = c.cfg.DenyTTL
	}
	exp := now.Add(ttl)
	if !d.ValidUntil.IsZero() && d.ValidUntil.Before(exp) {
		exp = d.ValidUntil
	}
	if !now.Before(exp) {
		return
	}
	if el, ok := c.entries[k]; ok {
		c.lru.Remove(el)
	}
	c.entries[k] = c.lru.PushFront(&cacheEntry{key: k, d: d, expires: exp})
	for c.lru.Len() > c.cfg.MaxEntries {
		last := c.lru.Back()
		c.lru.Remove(last)
		delete(c.entries, last.Value.(*cacheEntry).key)
	}
}

// Len returns the number of decisions kept (expired ones included until
// they are looked up or pushed out).
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Purge drops every decision (for example after an engine change when the
// old engine's entries should not wait to be pushed out).
func (c *Cache) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = map[cacheKey]*list.Element{}
	c.lru.Init()
}
