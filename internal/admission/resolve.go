package admission

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/singleflight"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/policy"
	"github.com/customs-dev/customs/internal/store"
)

// Resolution is what admission learns about one image reference before
// deciding: whether customs holds it, its project there, and the manifest
// digest it names now.
type Resolution struct {
	// InCustoms is true when the reference names customs' own registry
	// (one of its registry hosts).
	InCustoms bool
	// Project is the customs project of an image in customs.
	Project string
	// Digest is the manifest digest the reference names: the one written,
	// or the tag's current one (store or remote HEAD); "" when unknown
	// (a tag customs does not have, an outside image not looked up).
	Digest string
	// Note says why Digest is unknown, for logs and messages ("" when
	// known).
	Note string
}

// Resolver resolves image references.
type Resolver interface {
	Resolve(ctx context.Context, img policy.Image) (Resolution, error)
}

// TagStore is what RegistryResolver reads of customs' store.
type TagStore interface {
	Tag(ctx context.Context, repo, tag string) (*store.Tag, error)
}

// RegistryResolver resolves references of customs' registry hosts through
// the store and, when Remote is set, others with a registry HEAD request.
type RegistryResolver struct {
	// Store is customs' metadata store.
	Store TagStore
	// Hosts are the host[:port] names under which clients reach customs'
	// registry, compared in lower case.
	Hosts []string
	// Remote turns on tag resolution of outside images by a HEAD request
	// to their registry (anonymous), bounded by RemoteTimeout.
	Remote        bool
	RemoteTimeout time.Duration
	// Transport is the HTTP transport of remote requests; nil means
	// http.DefaultTransport.
	Transport http.RoundTripper
}

// InCustoms reports whether registry (a normalised policy.Image registry)
// is one of r's hosts.
func (r *RegistryResolver) InCustoms(registry string) bool {
	for _, h := range r.Hosts {
		if strings.EqualFold(h, registry) {
			return true
		}
	}
	return false
}

// Resolve implements Resolver. Errors are the store's (fail closed); an
// outside registry that does not answer is not an error: Digest stays ""
// and Note says why.
func (r *RegistryResolver) Resolve(ctx context.Context, img policy.Image) (Resolution, error) {
	if r.InCustoms(img.Registry) {
		res := Resolution{InCustoms: true, Project: strings.SplitN(img.Repository, "/", 2)[0], Digest: img.Digest}
		if res.Digest != "" {
			return res, nil
		}
		t, err := r.Store.Tag(ctx, img.Repository, img.EffectiveTag())
		if apperr.Is(err, apperr.ENOTFOUND) {
			res.Note = fmt.Sprintf("customs has no tag %q in %s", img.EffectiveTag(), img.Repository)
			return res, nil
		}
		if err != nil {
			return res, fmt.Errorf("looking up %s in customs: %w", img.String(), err)
		}
		res.Digest = t.Digest.String()
		return res, nil
	}
	res := Resolution{Digest: img.Digest}
	if res.Digest != "" {
		return res, nil
	}
	if !r.Remote {
		res.Note = "outside images are not resolved (admission.resolveExternal is off)"
		return res, nil
	}
	ref, err := name.ParseReference(img.String())
	if err != nil {
		res.Note = fmt.Sprintf("reference %s: %v", img.String(), err)
		return res, nil
	}
	timeout := r.RemoteTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tr := r.Transport
	if tr == nil {
		tr = http.DefaultTransport
	}
	desc, err := remote.Head(ref, remote.WithContext(ctx), remote.WithAuth(authn.Anonymous), remote.WithTransport(tr))
	if err != nil {
		res.Note = fmt.Sprintf("%s did not resolve: %v", img.String(), err)
		return res, nil
	}
	res.Digest = desc.Digest.String()
	return res, nil
}

// CachingResolver keeps resolutions for a while and lets concurrent
// requests for one reference share one lookup. A resolution with a digest
// is kept for TTL, one without (a tag not found, a registry that did not
// answer) for NegativeTTL; errors are not kept.
type CachingResolver struct {
	next        Resolver
	ttl, negTTL time.Duration
	now         func() time.Time
	group       singleflight.Group

	mu      sync.Mutex
	entries map[string]cachedResolution
	max     int
}

type cachedResolution struct {
	res     Resolution
	expires time.Time
}

// NewCachingResolver wraps next; zero TTLs mean 1 minute and 10 seconds,
// now nil means time.Now. At most 10,000 references are kept.
func NewCachingResolver(next Resolver, ttl, negativeTTL time.Duration, now func() time.Time) *CachingResolver {
	if ttl <= 0 {
		ttl = time.Minute
	}
	if negativeTTL <= 0 {
		negativeTTL = 10 * time.Second
	}
	if now == nil {
		now = time.Now
	}
	return &CachingResolver{next: next, ttl: ttl, negTTL: negativeTTL, now: now, entries: map[string]cachedResolution{}, max: 10000}
}

// Resolve implements Resolver. A caller whose ctx ends while a shared
// lookup runs gets ctx's error; the lookup goes on for the others.
func (c *CachingResolver) Resolve(ctx context.Context, img policy.Image) (Resolution, error) {
	key := img.String()
	c.mu.Lock()
	if e, ok := c.entries[key]; ok && c.now().Before(e.expires) {
		c.mu.Unlock()
		return e.res, nil
	}
	c.mu.Unlock()
	ch := c.group.DoChan(key, func() (any, error) {
		res, err := c.next.Resolve(context.WithoutCancel(ctx), img)
		if err != nil {
			return res, err
		}
		ttl := c.ttl
		if res.Digest == "" {
			ttl = c.negTTL
		}
		c.mu.Lock()
		if len(c.entries) >= c.max {
			now := c.now()
			for k, e := range c.entries {
				if !now.Before(e.expires) || len(c.entries) >= c.max {
					delete(c.entries, k)
				}
			}
		}
		c.entries[key] = cachedResolution{res: res, expires: c.now().Add(ttl)}
		c.mu.Unlock()
		return res, nil
	})
	select {
	case r := <-ch:
		return r.Val.(Resolution), r.Err
	case <-ctx.Done():
		return Resolution{}, ctx.Err()
	}
}
