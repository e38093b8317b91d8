package registry

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
)

// cacheOf returns the manifest cache of e's handler.
func cacheOf(e *env) *manifestCache { return e.srv.Config.Handler.(*handler).manifests }

func withManifestCache(n int64) func(*Options) {
	return func(o *Options) { o.ManifestCacheBytes = n }
}

// removeBlob deletes d's bytes from e's blob store, so that only the
// cache can still serve them.
func (e *env) removeBlob(d digest.Digest) {
	e.t.Helper()
	if err := e.blobs.Delete(context.Background(), d); err != nil {
		e.t.Fatal(err)
	}
}

// servedHeaders are the response headers a manifest GET or HEAD sets.
var servedHeaders = []string{"Content-Type", "Docker-Content-Digest", "Etag", "Content-Length",
	"Accept-Ranges", "Content-Range", "Last-Modified", "Docker-Distribution-API-Version"}

func summary(r *resp) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", r.StatusCode)
	for _, k := range servedHeaders {
		fmt.Fprintf(&b, " %s=%q", k, r.Header.Values(k))
	}
	fmt.Fprintf(&b, " body=%q", r.body)
	return b.String()
}

// TestManifestCacheAnswersAsStore: a registry with the cache answers
// every kind of manifest GET and HEAD, on a miss and on a hit, with the
// status, headers and bytes of one without it.
func TestManifestCacheAnswersAsStore(t *testing.T) {
	plain := newEnv(t)
	cached := newEnv(t, withManifestCache(DefaultManifestCacheBytes))
	im := plain.pushImage("p/a", "v1", "one", nil)
	if im2 := cached.pushImage("p/a", "v1", "one", nil); im2.digest != im.digest {
		t.Fatal("the same image pushed twice has two digests")
	}
	et := etag(im.digest)
	n := len(im.manifest)
	tests := []struct {
		name   string
		method string
		ref    string
		header map[string]string
		status int
	}{
		{"get by tag", "GET", "v1", nil, 200},
		{"get by digest", "GET", im.digest.String(), nil, 200},
		{"head by tag", "HEAD", "v1", nil, 200},
		{"head by digest", "HEAD", im.digest.String(), nil, 200},
		{"if-none-match", "GET", "v1", map[string]string{"If-None-Match": et}, 304},
		{"if-none-match head", "HEAD", "v1", map[string]string{"If-None-Match": et}, 304},
		{"if-none-match star", "GET", "v1", map[string]string{"If-None-Match": "*"}, 304},
		{"if-none-match other", "GET", "v1", map[string]string{"If-None-Match": `"sha256:other"`}, 200},
		{"if-match", "GET", "v1", map[string]string{"If-Match": et}, 200},
		{"if-match other", "GET", "v1", map[string]string{"If-Match": `"sha256:other"`}, 412},
		{"range", "GET", "v1", map[string]string{"Range": "bytes=0-9"}, 206},
		{"range suffix", "GET", "v1", map[string]string{"Range": "bytes=-5"}, 206},
		{"range past end", "GET", "v1", map[string]string{"Range": "bytes=" + strconv.Itoa(n+10) + "-"}, 416},
		{"if-range other", "GET", "v1", map[string]string{"Range": "bytes=0-9", "If-Range": `"sha256:other"`}, 200},
		{"if-modified-since", "GET", "v1", map[string]string{"If-Modified-Since": "Mon, 02 Jan 2006 15:04:05 GMT"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rq := req{method: tt.method, path: "/v2/p/a/manifests/" + tt.ref, user: "admin", header: tt.header}
			want := plain.do(rq)
			if want.StatusCode != tt.status {
				t.Fatalf("without the cache: %s", summary(want))
			}
			// Twice: the first may be a miss, the second is a hit.
			for i := range 2 {
				if got := cached.do(rq); summary(got) != summary(want) {
					t.Errorf("request %d with the cache:\n got %s\nwant %s", i+1, summary(got), summary(want))
				}
			}
		})
	}
	st := cacheOf(cached).stats()
	if st.Entries != 1 || st.Hits < uint64(len(tests)) {
		t.Errorf("cache %+v: want 1 entry and at least %d hits", st, len(tests))
	}
	if cacheOf(plain) != nil {
		t.Error("a registry without ManifestCacheBytes has a cache")
	}
	// Pulls are reported as without the cache: GETs (304s too), not HEADs.
	count := func(e *env) int {
		return strings.Count(strings.Join(e.events.list(), "\n"), "pulled admin p/a@"+im.digest.String())
	}
	if a, b := count(plain), count(cached); b != 2*a || a == 0 {
		t.Errorf("pull events: %d without the cache, %d with it (twice the requests)", a, b)
	}
}

// TestManifestCacheServesFromMemory: once a manifest was read, its bytes
// come from the cache, not the blob store; without the cache, or for a
// manifest too large to keep, they do not.
func TestManifestCacheServesFromMemory(t *testing.T) {
	e := newEnv(t, withManifestCache(1<<20))
	im := e.pushImage("p/a", "v1", "one", nil)
	e.expect(e.do(req{method: "HEAD", path: "/v2/p/a/manifests/v1", user: "admin"}), 200, "")
	e.removeBlob(im.digest)
	for _, ref := range []string{"v1", im.digest.String()} {
		r := e.do(req{method: "GET", path: "/v2/p/a/manifests/" + ref, user: "admin"})
		e.expect(r, 200, "")
		if !bytes.Equal(r.body, im.manifest) || r.Header.Get("Docker-Content-Digest") != im.digest.String() {
			t.Errorf("GET %s from the cache: %s", ref, summary(r))
		}
	}

	plain := newEnv(t)
	im = plain.pushImage("p/a", "v1", "one", nil)
	plain.expect(plain.do(req{method: "GET", path: "/v2/p/a/manifests/v1", user: "admin"}), 200, "")
	plain.removeBlob(im.digest)
	plain.expect(plain.do(req{method: "GET", path: "/v2/p/a/manifests/v1", user: "admin"}), 404, codeManifestUnknown)

	// Over MaxCachedManifestBytes: served, not kept.
	big := e.pushImage("p/big", "v1", "big", map[string]any{"annotations": map[string]string{"pad": strings.Repeat("x", MaxCachedManifestBytes)}})
	before := cacheOf(e).stats()
	r := e.do(req{method: "GET", path: "/v2/p/big/manifests/v1", user: "admin"})
	e.expect(r, 200, "")
	if !bytes.Equal(r.body, big.manifest) || r.Header.Get("Content-Length") != strconv.Itoa(len(big.manifest)) {
		t.Errorf("large manifest: %d bytes, Content-Length %s, want %d", len(r.body), r.Header.Get("Content-Length"), len(big.manifest))
	}
	if after := cacheOf(e).stats(); after.Entries != before.Entries {
		t.Errorf("a %d-byte manifest was kept: %+v", len(big.manifest), after)
	}
	e.removeBlob(big.digest)
	e.expect(e.do(req{method: "GET", path: "/v2/p/big/manifests/v1", user: "admin"}), 404, codeManifestUnknown)
}

// TestManifestCacheDeleted: the cache never answers for a manifest the
// store says is not in the repository.
func TestManifestCacheDeleted(t *testing.T) {
	e := newEnv(t, withManifestCache(1<<20))
	im := e.pushImage("p/a", "v1", "one", nil)
	e.expect(e.pushManifest("p/a", "v2", mtOCIManifest, im.manifest), 201, "")
	get := func(repo, ref string) *resp {
		return e.do(req{method: "GET", path: "/v2/" + repo + "/manifests/" + ref, user: "admin"})
	}
	for _, ref := range []string{"v1", "v2", im.digest.String()} {
		e.expect(get("p/a", ref), 200, "")
	}
	if st := cacheOf(e).stats(); st.Entries != 1 || st.Hits != 2 {
		t.Fatalf("cache %+v, want 1 entry and 2 hits", st)
	}

	// Another repository does not have it, cached or not.
	e.pushImage("p/b", "v1", "other", nil)
	e.expect(get("p/b", im.digest.String()), 404, codeManifestUnknown)

	// A deleted tag no longer resolves; the manifest stays.
	e.expect(e.do(req{method: "DELETE", path: "/v2/p/a/manifests/v1", user: "admin"}), 202, "")
	e.expect(get("p/a", "v1"), 404, codeManifestUnknown)
	e.expect(get("p/a", "v2"), 200, "")

	// A deleted manifest is gone by digest and by its other tag, and HEAD
	// agrees.
	e.expect(e.do(req{method: "DELETE", path: "/v2/p/a/manifests/" + im.digest.String(), user: "admin"}), 202, "")
	e.expect(get("p/a", im.digest.String()), 404, codeManifestUnknown)
	e.expect(get("p/a", "v2"), 404, codeManifestUnknown)
	h := e.do(req{method: "HEAD", path: "/v2/p/a/manifests/" + im.digest.String(), user: "admin"})
	if h.StatusCode != 404 {
		t.Errorf("HEAD of a deleted manifest: %d", h.StatusCode)
	}
	if st := cacheOf(e).stats(); st.Entries != 1 {
		t.Errorf("cache %+v: the entry should still be there (content-addressed), only unreachable", st)
	}
}

// TestManifestCachePullGate: a cached manifest is refused by the pull
// gate as one read from the store is.
func TestManifestCachePullGate(t *testing.T) {
	gate := &denyGate{prefix: "pub/blocked"}
	e := newEnv(t, withManifestCache(1<<20), func(o *Options) { o.PullGate = gate })
	e.pushImage("pub/blocked", "v1", "blocked", nil)
	e.expect(e.do(req{method: "GET", path: "/v2/pub/blocked/manifests/v1", user: "admin"}), 200, "")
	for range 2 {
		e.expect(e.do(req{method: "GET", path: "/v2/pub/blocked/manifests/v1", user: "bob"}), 403, "DENIED")
	}
	if st := cacheOf(e).stats(); st.Entries != 1 {
		t.Errorf("cache %+v", st)
	}
}

// TestManifestCacheDamagedBlob: bytes that do not match their digest are
// served as the store has them, but never kept.
func TestManifestCacheDamagedBlob(t *testing.T) {
	e := newEnv(t, withManifestCache(1<<20))
	im := e.pushImage("p/a", "v1", "one", nil)
	hex := im.digest.Encoded()
	p := filepath.Join(e.blobs.Root(), "blobs", "sha256", hex[:2], hex)
	bad := bytes.ToUpper(im.manifest)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		r := e.do(req{method: "GET", path: "/v2/p/a/manifests/v1", user: "admin"})
		e.expect(r, 200, "")
		if !bytes.Equal(r.body, bad) {
			t.Errorf("body %q, want what the store has", r.body)
		}
	}
	if st := cacheOf(e).stats(); st.Entries != 0 || st.Hits != 0 {
		t.Errorf("damaged bytes were cached: %+v", st)
	}
	if !strings.Contains(e.logs.String(), "do not match their digest") {
		t.Errorf("no error logged: %s", e.logs.String())
	}
}

// TestManifestCacheBound: the cache holds at most its bound, evicting the
// least recently used first.
func TestManifestCacheBound(t *testing.T) {
	body := func(i, n int) []byte { return fmt.Appendf(nil, "%d:%s", i, strings.Repeat("m", n)) }
	d := func(b []byte) digest.Digest { return digest.FromBytes(b) }

	if c := newManifestCache(0); c != nil {
		t.Fatal("0 bytes should disable the cache")
	}
	var off *manifestCache
	off.put(d([]byte("x")), []byte("x"))
	if _, ok := off.get(d([]byte("x"))); ok || off.fits(d([]byte("x")), 1) {
		t.Error("a disabled cache keeps something")
	}

	b0 := body(0, 1000)
	cost := entryCost(d(b0), b0)
	c := newManifestCache(3*cost + cost/2) // room for three such entries
	var bs [][]byte
	for i := range 5 {
		bs = append(bs, body(i, 1000))
	}
	c.put(d(bs[0]), bs[0])
	c.put(d(bs[1]), bs[1])
	c.put(d(bs[2]), bs[2])
	if _, ok := c.get(d(bs[0])); !ok { // 0 is now the most recently used
		t.Fatal("entry 0 missing before the cache was full")
	}
	c.put(d(bs[3]), bs[3]) // evicts 1
	c.put(d(bs[4]), bs[4]) // evicts 2
	for i, want := range []bool{true, false, false, true, true} {
		got, ok := c.get(d(bs[i]))
		if ok != want || ok && !bytes.Equal(got, bs[i]) {
			t.Errorf("entry %d: present %v, want %v", i, ok, want)
		}
	}
	if st := c.stats(); st.Entries != 3 || st.Bytes != 3*cost || st.Bytes > st.Max {
		t.Errorf("stats %+v, want 3 entries of %d", st, cost)
	}
	// Putting a present digest again changes nothing but its recency.
	c.put(d(bs[3]), bs[3])
	if st := c.stats(); st.Entries != 3 || st.Bytes != 3*cost {
		t.Errorf("after a second put: %+v", st)
	}

	// Too large for the bound, or over MaxCachedManifestBytes: not kept.
	huge := body(9, int(c.max))
	c.put(d(huge), huge)
	if _, ok := c.get(d(huge)); ok {
		t.Error("an entry larger than the bound was kept")
	}
	big := newManifestCache(1 << 30)
	over := body(8, MaxCachedManifestBytes)
	big.put(d(over), over)
	if _, ok := big.get(d(over)); ok || big.fits(d(over), int64(len(over))) {
		t.Error("an entry over MaxCachedManifestBytes was kept")
	}
	under := body(7, MaxCachedManifestBytes-10)
	big.put(d(under), under)
	if _, ok := big.get(d(under)); !ok {
		t.Error("an entry just under MaxCachedManifestBytes was not kept")
	}

	// Random sizes: the bound holds after every put.
	c = newManifestCache(64 << 10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		b := body(i, rng.IntN(20<<10))
		c.put(d(b), b)
		if st := c.stats(); st.Bytes > st.Max || st.Bytes < 0 {
			t.Fatalf("after put %d: %+v", i, st)
		}
	}
}

// TestManifestCacheBoundInHandler: a registry with a small cache serves
// many manifests correctly and keeps within its bound.
func TestManifestCacheBoundInHandler(t *testing.T) {
	const bound = 8 << 10
	e := newEnv(t, withManifestCache(bound))
	var ims []image
	for i := range 20 {
		ims = append(ims, e.pushImage("p/a", "t"+strconv.Itoa(i), "seed-"+strconv.Itoa(i), nil))
	}
	for round := range 2 {
		for i, im := range ims {
			r := e.do(req{method: "GET", path: "/v2/p/a/manifests/t" + strconv.Itoa(i), user: "admin"})
			e.expect(r, 200, "")
			if !bytes.Equal(r.body, im.manifest) {
				t.Fatalf("round %d, manifest %d: other bytes", round, i)
			}
		}
	}
	st := cacheOf(e).stats()
	if st.Bytes > bound || st.Entries == 0 || st.Entries >= len(ims) {
		t.Errorf("cache %+v: want within %d bytes, some but not all of %d manifests", st, bound, len(ims))
	}
}

// TestManifestCacheConcurrent: many clients pulling many manifests
// through a cache that keeps evicting (run with -race).
func TestManifestCacheConcurrent(t *testing.T) {
	e := newEnv(t, withManifestCache(6<<10))
	var ims []image
	for i := range 24 {
		ims = append(ims, e.pushImage("p/a", "t"+strconv.Itoa(i), "seed-"+strconv.Itoa(i), nil))
	}
	client := e.srv.Client()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for range 60 {
				i := rng.IntN(len(ims))
				ref := "t" + strconv.Itoa(i)
				if rng.IntN(2) == 0 {
					ref = ims[i].digest.String()
				}
				method := "GET"
				if rng.IntN(4) == 0 {
					method = "HEAD"
				}
				r, err := http.NewRequest(method, e.srv.URL+"/v2/p/a/manifests/"+ref, nil)
				if err != nil {
					errs <- err
					return
				}
				r.SetBasicAuth("admin", "pw")
				res, err := client.Do(r)
				if err != nil {
					errs <- err
					return
				}
				var b bytes.Buffer
				_, err = b.ReadFrom(res.Body)
				res.Body.Close()
				want := ims[i].manifest
				if method == "HEAD" {
					want = nil
				}
				if err != nil || res.StatusCode != 200 || !bytes.Equal(b.Bytes(), want) ||
					res.Header.Get("Docker-Content-Digest") != ims[i].digest.String() ||
					res.Header.Get("Content-Length") != strconv.Itoa(len(ims[i].manifest)) {
					errs <- fmt.Errorf("%s %s: %d %v, %d bytes, headers %v", method, ref, res.StatusCode, err, b.Len(), res.Header)
					return
				}
			}
		}()
	}
	// The cache alone, from more goroutines at once.
	c := newManifestCache(4 << 10)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				b := fmt.Appendf(nil, "%d-%d", g, i%40)
				c.put(digest.FromBytes(b), b)
				if got, ok := c.get(digest.FromBytes(b)); ok && !bytes.Equal(got, b) {
					errs <- fmt.Errorf("cache returned %q for %q", got, b)
					return
				}
				_ = c.stats()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := cacheOf(e).stats(); st.Bytes > 6<<10 || st.Hits == 0 || st.Misses == 0 {
		t.Errorf("cache %+v", st)
	}
	if st := c.stats(); st.Bytes > 4<<10 {
		t.Errorf("cache %+v over its bound", st)
	}
}

// TestManifestCacheMetrics: the cache's hits, misses and size are on the
// Prometheus registry given in Options.Metrics, and move with pulls.
func TestManifestCacheMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, withManifestCache(1<<20), func(o *Options) { o.Metrics = reg })
	im := e.pushImage("p/a", "v1", "one", nil)
	value := func(name string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				m := mf.GetMetric()[0]
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
		t.Fatalf("no metric %s", name)
		return 0
	}
	const p = "customs_registry_manifest_cache_"
	h0, m0 := value(p+"hits_total"), value(p+"misses_total")
	for range 3 {
		e.expect(e.do(req{method: "GET", path: "/v2/p/a/manifests/" + im.digest.String(), user: "admin"}), 200, "")
	}
	st := cacheOf(e).stats()
	if h, m := value(p+"hits_total"), value(p+"misses_total"); h != float64(st.Hits) || m != float64(st.Misses) || h+m-h0-m0 != 3 || h <= h0 {
		t.Errorf("hits %v (was %v), misses %v (was %v) after 3 pulls; the cache says %+v", h, h0, m, m0, st)
	}
	if b, max := value(p+"bytes"), value(p+"max_bytes"); b != float64(st.Bytes) || b < float64(len(im.manifest)) || max != 1<<20 {
		t.Errorf("bytes %v, max_bytes %v; the cache says %+v", b, max, st)
	}
}
