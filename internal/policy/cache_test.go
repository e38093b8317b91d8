package policy

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestCacheKeepsAndExpires(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	e := mustEngine(t, Config{Now: clock.Now}, doc("p", "tags: {deny: [latest]}"))
	c := NewCache(CacheConfig{AllowTTL: time.Minute, DenyTTL: 10 * time.Second, Now: clock.Now})
	ctx := context.Background()
	allowed := &Input{Image: mustImage(t, "registry.example/a:1")}
	denied := &Input{Image: mustImage(t, "registry.example/a:latest")}

	d1, _ := c.Evaluate(ctx, e, allowed)
	d2, _ := c.Evaluate(ctx, e, allowed)
	if d1 != d2 {
		t.Errorf("second evaluation was not served from the cache")
	}
	x1, _ := c.Evaluate(ctx, e, denied)
	clock.Add(11 * time.Second)
	x2, _ := c.Evaluate(ctx, e, denied)
	if x1 == x2 || x2.Outcome != Denied {
		t.Errorf("a denial was kept past the deny TTL")
	}
	if d3, _ := c.Evaluate(ctx, e, allowed); d3 != d1 {
		t.Errorf("an allowed decision expired before the allow TTL")
	}
	clock.Add(time.Minute)
	if d4, _ := c.Evaluate(ctx, e, allowed); d4 == d1 {
		t.Errorf("an allowed decision was kept past the allow TTL")
	}
}

// TestCacheKey: anything a decision depends on is in the key.
func TestCacheKey(t *testing.T) {
	e := mustEngine(t, Config{}, doc("p", ""))
	e2 := mustEngine(t, Config{}, doc("q", ""))
	base := Input{Image: mustImage(t, "registry.example/a:1"), Digest: "sha256:1", Environment: "prod", Namespace: "ns", Project: "p",
		Scan: &ScanSummary{Status: ScanDone, VulnDBRevision: 1}, Signatures: &Signatures{}, SystemAllowlist: SystemAllowlist{Revision: "1"}}
	k := keyOf(e, &base)
	for name, change := range map[string]func(in *Input){
		"tag":            func(in *Input) { in.Image.Tag = "2" },
		"repository":     func(in *Input) { in.Image.Repository = "b" },
		"registry":       func(in *Input) { in.Image.Registry = "other.example" },
		"written digest": func(in *Input) { in.Image.Digest = "sha256:1" },
		"digest":         func(in *Input) { in.Digest = "sha256:2" },
		"environment":    func(in *Input) { in.Environment = "dev" },
		"namespace":      func(in *Input) { in.Namespace = "other" },
		"project":        func(in *Input) { in.Project = "q" },
		"no scan":        func(in *Input) { in.Scan = nil },
		"scan status":    func(in *Input) { in.Scan = &ScanSummary{Status: ScanRunning, VulnDBRevision: 1} },
		"vulndb":         func(in *Input) { in.Scan = &ScanSummary{Status: ScanDone, VulnDBRevision: 2} },
		"rematched": func(in *Input) {
			in.Scan = &ScanSummary{Status: ScanDone, VulnDBRevision: 1, MatchedAt: time.Unix(1, 0)}
		},
		"allowlist":     func(in *Input) { in.SystemAllowlist.Revision = "2" },
		"no signatures": func(in *Input) { in.Signatures = nil },
		"signed":        func(in *Input) { in.Signatures = &Signatures{Verified: []Signature{{KeyFingerprint: "sha256:k"}}} },
	} {
		in := base
		change(&in)
		if keyOf(e, &in) == k {
			t.Errorf("%s is not in the cache key", name)
		}
	}
	if keyOf(e2, &base) == k {
		t.Errorf("the engine revision is not in the cache key")
	}
}

// TestCacheAllowlistExpiry: a decision that relied on an allowlist entry
// is not kept past the entry's expiry.
func TestCacheAllowlistExpiry(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	e := mustEngine(t, Config{Now: clock.Now}, doc("p", `vulnerabilities:
  maxSeverity: high
  allowlist:
    - {id: CVE-1, expires: "2026-01-01T00:00:30Z"}`))
	c := NewCache(CacheConfig{AllowTTL: time.Hour, Now: clock.Now})
	in := &Input{Image: mustImage(t, "registry.example/a:1"), Scan: done(finding("CVE-1", Critical, "a", "1"))}
	d, _ := c.Evaluate(context.Background(), e, in)
	if d.Outcome != Allowed {
		t.Fatalf("allowlisted: %s", d.Message())
	}
	clock.Add(29 * time.Second)
	if d2, _ := c.Evaluate(context.Background(), e, in); d2 != d {
		t.Errorf("not kept before the entry expires")
	}
	clock.Add(time.Second)
	d3, _ := c.Evaluate(context.Background(), e, in)
	if d3.Outcome != Denied {
		t.Errorf("kept past the entry's expiry: %s", d3.Message())
	}
}

func TestCacheBounded(t *testing.T) {
	e := mustEngine(t, Config{}, doc("p", ""))
	c := NewCache(CacheConfig{MaxEntries: 3})
	ctx := context.Background()
	var first *Decision
	for i := range 5 {
		d, err := c.Evaluate(ctx, e, &Input{Image: Image{Registry: "r.example", Repository: "a", Tag: string(rune('a' + i))}})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = d
		}
	}
	if c.Len() != 3 {
		t.Errorf("%d entries, want 3", c.Len())
	}
	if d, _ := c.Evaluate(ctx, e, &Input{Image: Image{Registry: "r.example", Repository: "a", Tag: "a"}}); d == first {
		t.Errorf("the least recently used entry was not pushed out")
	}
	c.Purge()
	if c.Len() != 0 {
		t.Errorf("Purge left %d entries", c.Len())
	}
}

// gatedEvaluator counts evaluations and holds each until released; its
// decisions are not cacheable (ValidUntil in the past), so only sharing an
// evaluation in flight keeps the count at one.
type gatedEvaluator struct {
	calls   atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (g *gatedEvaluator) Revision() string { return "gated" }

func (g *gatedEvaluator) Evaluate(ctx context.Context, in *Input) (*Decision, error) {
	if g.calls.Add(1) == 1 {
		close(g.entered)
	}
	<-g.release
	return &Decision{Outcome: Allowed, ValidUntil: time.Unix(1, 0)}, nil
}

// TestCacheSingleflight: concurrent evaluations of one key share one
// evaluation; a waiter whose context ends gets its error.
func TestCacheSingleflight(t *testing.T) {
	g := &gatedEvaluator{entered: make(chan struct{}), release: make(chan struct{})}
	c := NewCache(CacheConfig{})
	in := &Input{Image: mustImage(t, "registry.example/a:1")}
	const n = 16
	results := make([]*Decision, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := c.Evaluate(context.Background(), g, in)
			if err != nil {
				t.Error(err)
			}
			results[i] = d
		}()
	}
	<-g.entered
	time.Sleep(100 * time.Millisecond) // the others reach the in-flight wait

	// Meanwhile a waiter whose context ends stops waiting.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Evaluate(ctx, g, in); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled waiter: %v", err)
	}
	close(g.release)
	wg.Wait()
	if n := g.calls.Load(); n != 1 {
		t.Errorf("%d evaluations for %d concurrent callers, want 1", n, len(results))
	}
	for i := range results {
		if results[i] != results[0] {
			t.Fatalf("caller %d got another decision", i)
		}
	}
	// Not cacheable: the next call evaluates again.
	g.release = make(chan struct{})
	close(g.release)
	if _, err := c.Evaluate(context.Background(), g, in); err != nil || g.calls.Load() != 2 {
		t.Errorf("uncacheable decision was kept: %d calls, %v", g.calls.Load(), err)
	}
}

type panickyEvaluator struct{}

func (panickyEvaluator) Revision() string { return "panicky" }
func (panickyEvaluator) Evaluate(context.Context, *Input) (*Decision, error) {
	panic("boom")
}

func TestCachePanic(t *testing.T) {
	c := NewCache(CacheConfig{})
	_, err := c.Evaluate(context.Background(), panickyEvaluator{}, &Input{Image: mustImage(t, "registry.example/a:1")})
	if err == nil || !strings.Contains(err.Error(), "policy evaluation of registry.example/a:1 panicked: boom") {
		t.Errorf("panic: %v", err)
	}
}

func TestCacheErrorsNotKept(t *testing.T) {
	e := mustEngine(t, Config{}, doc("p", ""))
	c := NewCache(CacheConfig{})
	if _, err := c.Evaluate(context.Background(), e, &Input{}); err == nil || !strings.Contains(err.Error(), "registry and repository are required") {
		t.Fatalf("invalid input: %v", err)
	}
	if c.Len() != 0 {
		t.Errorf("an error was kept")
	}
}
