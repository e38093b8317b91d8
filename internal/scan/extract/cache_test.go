package extract

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/customs-dev/customs/internal/scan/layers"
)

func baseLayerEntries() []ent {
	return []ent{
		file("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n"),
		file("var/lib/dpkg/status", "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u4\n"),
	}
}

// TestLayerCacheSharedBase: the second image on the same base layer does
// not read the base layer (its blob is not even opened), and gives the
// same packages from it.
func TestLayerCacheSharedBase(t *testing.T) {
	var baseOpens, app1Opens, app2Opens atomic.Int64
	base := layerOf(t, baseLayerEntries()...)
	app1 := layerOf(t, file("app/node_modules/lodash/package.json", `{"name":"lodash","version":"4.17.15"}`))
	app2 := layerOf(t, file("app/node_modules/minimist/package.json", `{"name":"minimist","version":"1.2.0"}`))
	img1 := imageOf(t, countingLayer{Layer: base, opens: &baseOpens}, countingLayer{Layer: app1, opens: &app1Opens})
	img2 := imageOf(t, countingLayer{Layer: base, opens: &baseOpens}, countingLayer{Layer: app2, opens: &app2Opens})

	cache := NewMemoryCache(64 << 20)
	x := newExtractor(t, Config{Cache: cache})
	inv1, err := x.Image(context.Background(), img1)
	if err != nil {
		t.Fatal(err)
	}
	if baseOpens.Load() != 1 || app1Opens.Load() != 1 {
		t.Fatalf("first image: base read %d times, app %d; want 1 and 1", baseOpens.Load(), app1Opens.Load())
	}
	inv2, err := x.Image(context.Background(), img2)
	if err != nil {
		t.Fatal(err)
	}
	if baseOpens.Load() != 1 || app2Opens.Load() != 1 {
		t.Errorf("second image: base read %d times in all, app %d; want the base not read again", baseOpens.Load(), app2Opens.Load())
	}
	if cache.Len() != 3 {
		t.Errorf("cache holds %d results; want 3 layers", cache.Len())
	}
	if len(inv1.Packages) != 2 || inv1.Packages[0].Name != "libc6" || inv1.Packages[1].Name != "lodash" ||
		len(inv2.Packages) != 2 || inv2.Packages[0].Name != "libc6" || inv2.Packages[1].Name != "minimist" {
		t.Errorf("inventories:\n%+v\n%+v", inv1.Packages, inv2.Packages)
	}
	if a, b := inv1.Packages[0], inv2.Packages[0]; a.Layer != b.Layer || a.PURL != b.PURL || a.Version != b.Version {
		t.Errorf("base package differs: %+v vs %+v", a, b)
	}

	// A new Extractor (another replica, a restart) with the same cache
	// reads nothing at all.
	x2 := newExtractor(t, Config{Cache: cache})
	if _, err := x2.Image(context.Background(), img1); err != nil {
		t.Fatal(err)
	}
	if baseOpens.Load() != 1 || app1Opens.Load() != 1 {
		t.Errorf("after restart: base read %d times, app %d; want no more reads", baseOpens.Load(), app1Opens.Load())
	}
}

// lyingImage is an image whose config claims diffIDs of its choosing.
type lyingImage struct {
	v1.Image
	diffIDs []v1.Hash
}

func (l lyingImage) ConfigFile() (*v1.ConfigFile, error) {
	cf, err := l.Image.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs = l.diffIDs
	return cf, nil
}

// TestLayerCacheLyingDiffID: an image config that claims a cached layer's
// diffID for a different blob does not get the cached result: the blob is
// read and fails its diffID check.
func TestLayerCacheLyingDiffID(t *testing.T) {
	cache := NewMemoryCache(64 << 20)
	x := newExtractor(t, Config{Cache: cache})
	base := layerOf(t, baseLayerEntries()...)
	if _, err := x.Image(context.Background(), imageOf(t, base)); err != nil {
		t.Fatal(err)
	}
	baseDiffID, _ := base.DiffID()

	var opens atomic.Int64
	evil := countingLayer{Layer: layerOf(t, file("usr/local/bin/miner", "evil")), opens: &opens}
	img := lyingImage{Image: imageOf(t, evil), diffIDs: []v1.Hash{baseDiffID}}
	_, err := x.Image(context.Background(), img)
	if opens.Load() != 1 {
		t.Errorf("the lying layer was read %d times; want 1", opens.Load())
	}
	if !errors.Is(err, layers.ErrDigestMismatch) {
		t.Fatalf("err = %v; want a diffID mismatch", err)
	}
}

// slowLayer holds its blob back until release is closed.
type slowLayer struct {
	countingLayer
	started chan struct{}
	release chan struct{}
	once    *sync.Once
}

func (s slowLayer) Compressed() (io.ReadCloser, error) {
	s.once.Do(func() { close(s.started) })
	<-s.release
	return s.countingLayer.Compressed()
}

// TestLayerConcurrentReadsShared: scans running at once that need the same
// layer read it once.
func TestLayerConcurrentReadsShared(t *testing.T) {
	var opens atomic.Int64
	l := slowLayer{
		countingLayer: countingLayer{Layer: layerOf(t, baseLayerEntries()...), opens: &opens},
		started:       make(chan struct{}), release: make(chan struct{}), once: &sync.Once{},
	}
	x := newExtractor(t, Config{Cache: NewMemoryCache(1 << 20)})
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := x.Layer(context.Background(), l)
			errs <- err
		}()
	}
	<-l.started
	time.Sleep(100 * time.Millisecond) // the others join the read in flight
	close(l.release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if opens.Load() != 1 {
		t.Errorf("layer read %d times by %d concurrent scans; want 1", opens.Load(), n)
	}
}

func TestMemoryCacheLRU(t *testing.T) {
	ctx := context.Background()
	c := NewMemoryCache(30)
	key := func(i int) CacheKey { return CacheKey{DiffID: fmt.Sprint(i), Version: "v"} }
	for i := range 3 {
		c.Put(ctx, key(i), make([]byte, 10))
	}
	c.Get(ctx, key(0))                     // 0 is now the most recent
	c.Put(ctx, key(3), make([]byte, 10))   // evicts 1, the least recent
	c.Put(ctx, key(4), make([]byte, 1000)) // larger than the cache: not kept
	for i, want := range []bool{true, false, true, true, false} {
		if _, ok, _ := c.Get(ctx, key(i)); ok != want {
			t.Errorf("key %d cached = %v; want %v", i, ok, want)
		}
	}
	if _, ok, _ := c.Get(ctx, CacheKey{DiffID: "0", Version: "other"}); ok {
		t.Error("another extractor version got a cached result")
	}
	c.Put(ctx, key(0), []byte("new"))
	if v, _, _ := c.Get(ctx, key(0)); string(v) != "new" {
		t.Errorf("replaced value = %q", v)
	}
}

// TestCachedResultRoundTrip: a result survives Marshal/Unmarshal, and a
// result of another schema is refused.
func TestCachedResultRoundTrip(t *testing.T) {
	x := newExtractor(t, Config{})
	res, err := x.Layer(context.Background(), layerOf(t, languagesLayer(t)...))
	if err != nil {
		t.Fatal(err)
	}
	b, err := res.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalLayerResult(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := back.Marshal()
	if string(b) != string(b2) {
		t.Error("result changed through JSON")
	}
	if _, err := UnmarshalLayerResult([]byte(`{"schema": 99}`)); err == nil {
		t.Error("accepted a result of another schema")
	}
}
