package scan

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver of the schema setup
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/customs-dev/customs/internal/blob"
	blobfs "github.com/customs-dev/customs/internal/blob/fs"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/postgres"
	"github.com/customs-dev/customs/internal/store/postgres/pgtest"
	"github.com/customs-dev/customs/internal/store/sqlite"
	"github.com/customs-dev/customs/internal/vulndb"
)

// env is a scanner over a real SQLite store, filesystem blob store and
// vulnerability database, with blob reads counted.
type env struct {
	t     testing.TB
	ctx   context.Context
	st    store.Store
	blobs *blobfs.Store
	reads *countingBlobs
	vdb   *vulndb.Service
	osv   string // directory of the "test" OSV source
	reg   *prometheus.Registry
	s     *Scanner
	// putManifestNoScan stores manifests without telling the scanner.
	putManifestNoScan bool
}

func newEnv(t testing.TB, opts ...func(*Options)) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "customs.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newEnvOn(t, st, opts...)
}

// openPostgres opens a store in a fresh schema of the PostgreSQL test
// database, skipping t without one.
func openPostgres(t testing.TB) store.Store {
	t.Helper()
	dsn := pgtest.Schema(t, "customs_scan_")
	db, err := postgres.Open(context.Background(), dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newEnvOn is newEnv over st.
func newEnvOn(t testing.TB, st store.Store, opts ...func(*Options)) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	bs, err := blobfs.New(filepath.Join(dir, "blobs"), blobfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	vdb, err := vulndb.Open(vulndb.Options{Store: st, RevisionCheck: -1})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, st: st, blobs: bs, reads: &countingBlobs{Blobs: bs, n: map[digest.Digest]int{}}, vdb: vdb,
		osv: filepath.Join(dir, "osv")}
	if err := os.MkdirAll(e.osv, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"p", "q"} {
		if err := st.CreateProject(ctx, &store.Project{Name: p}); err != nil {
			t.Fatal(err)
		}
	}
	e.s = e.scanner(opts...)
	return e
}

// scanner returns a new Scanner over e's stores (as a restarted process
// would have), with short waits for tests.
func (e *env) scanner(opts ...func(*Options)) *Scanner {
	e.t.Helper()
	e.reg = prometheus.NewRegistry()
	o := Options{Store: e.st, Blobs: e.reads, VulnDB: e.vdb, Registerer: e.reg, Owner: "test",
		RetryBackoff: time.Millisecond, MaxRetryBackoff: time.Millisecond, IndexWait: time.Millisecond,
		Extract: extractConfig(e.t)}
	for _, f := range opts {
		f(&o)
	}
	s, err := New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// drain runs jobs until none is due, failing after 30 s.
func (e *env) drain() {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	idle := 0
	for time.Now().Before(deadline) {
		ran, err := e.s.RunOne(e.ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		if ran {
			idle = 0
			continue
		}
		st, err := e.st.ScanQueueStats(e.ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		if st.Queued == 0 && st.Running == 0 {
			return
		}
		idle++
		time.Sleep(2 * time.Millisecond)
	}
	e.t.Fatal("scan queue not drained within 30 s")
}

// advisory writes an OSV record to the test source and imports it.
func (e *env) advisory(id string, rec map[string]any) {
	e.t.Helper()
	rec["schema_version"] = "1.6.0"
	rec["id"] = id
	if _, ok := rec["modified"]; !ok {
		rec["modified"] = "2024-01-01T00:00:00Z"
	}
	b, err := json.Marshal(rec)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.osv, id+".json"), b, 0o644); err != nil {
		e.t.Fatal(err)
	}
	res, err := e.vdb.Import(e.ctx, vulndb.Source{Name: "test", Location: e.osv})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil || len(r.Skipped) > 0 {
			e.t.Fatalf("import: %v %v", r.Err, r.Skipped)
		}
	}
}

// muslAdvisory is ALPINE-CVE-2019-14697 for Alpine v3.9, fixed in fixed.
func muslAdvisory(fixed string) map[string]any {
	return map[string]any{
		"upstream": []string{"CVE-2019-14697"},
		"summary":  "musl libc through 1.1.23 has an x87 floating-point stack adjustment imbalance",
		"affected": []any{map[string]any{
			"package": map[string]any{"ecosystem": "Alpine:v3.9", "name": "musl"},
			"ranges": []any{map[string]any{"type": "ECOSYSTEM", "events": []any{
				map[string]any{"introduced": "0"}, map[string]any{"fixed": fixed}}}},
		}},
		"severity":   []any{map[string]any{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}},
		"references": []any{map[string]any{"type": "ADVISORY", "url": "https://security.alpinelinux.org/vuln/CVE-2019-14697"}},
	}
}

// busyboxAdvisory affects busybox before 1.29.3-r11 on Alpine v3.9.
func busyboxAdvisory() map[string]any {
	return map[string]any{
		"upstream": []string{"CVE-2018-20679"},
		"affected": []any{map[string]any{
			"package": map[string]any{"ecosystem": "Alpine:v3.9", "name": "busybox"},
			"ranges": []any{map[string]any{"type": "ECOSYSTEM", "events": []any{
				map[string]any{"introduced": "0"}, map[string]any{"fixed": "1.29.3-r11"}}}},
		}},
	}
}

// countingBlobs counts Open calls per digest.
type countingBlobs struct {
	Blobs
	mu   sync.Mutex
	n    map[digest.Digest]int
	fail int // fail the next fail opens with a transient error
	// gate, when set, holds every open until it is closed.
	gate chan struct{}
}

func (c *countingBlobs) Open(ctx context.Context, d digest.Digest) (blob.Reader, error) {
	c.mu.Lock()
	c.n[d]++
	if c.fail > 0 {
		c.fail--
		c.mu.Unlock()
		return nil, io.ErrUnexpectedEOF
	}
	gate := c.gate
	c.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return c.Blobs.Open(ctx, d)
}

func (c *countingBlobs) count(d digest.Digest) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[d]
}

func (c *countingBlobs) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.n {
		n += v
	}
	return n
}

// layer is a gzip layer of the given files (path -> content).
func layer(t testing.TB, files ...string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i+1 < len(files); i += 2 {
		h := &tar.Header{Name: files[i], Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[i+1])),
			ModTime: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

const alpineRelease = "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.9.6\nPRETTY_NAME=\"Alpine Linux v3.9\"\n"

// apkDB is an apk installed database listing musl at muslVersion and
// busybox 1.29.3-r10.
func apkDB(muslVersion string) string {
	return "C:Q1vB4eLrQvK0p2mF3o1gq6x1o4Hm0=\nP:musl\nV:" + muslVersion + "\nA:x86_64\no:musl\nF:lib\nR:ld-musl-x86_64.so.1\n\n" +
		"C:Q1yT7J9T3pC0o2vU5sQ3lW5Aqv8jA=\nP:busybox\nV:1.29.3-r10\nA:x86_64\no:busybox\nF:bin\nR:busybox\n\n"
}

// alpineBase is the base layer of the Alpine-style test images.
func alpineBase(t testing.TB) v1.Layer {
	return layer(t, "etc/os-release", alpineRelease, "lib/apk/db/installed", apkDB("1.1.20-r4"))
}

// image is an OCI image of the layers for os/arch.
func image(t testing.TB, arch string, ls ...v1.Layer) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, ls...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// putBlob stores b as a blob linked in repo.
func (e *env) putBlob(repo string, b []byte) digest.Digest {
	e.t.Helper()
	d := digest.FromBytes(b)
	if _, err := e.blobs.Put(e.ctx, d, bytes.NewReader(b), func(size int64) error {
		return e.st.PutLinkedBlob(e.ctx, repo, d, size)
	}); err != nil {
		e.t.Fatal(err)
	}
	return d
}

// push stores img in repo under tag as the registry does, and tells the
// scanner as the registry's events do.
func (e *env) push(repo, tag string, img v1.Image) *store.Manifest {
	e.t.Helper()
	raw, err := img.RawManifest()
	if err != nil {
		e.t.Fatal(err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		e.t.Fatal(err)
	}
	mt, err := img.MediaType()
	if err != nil {
		e.t.Fatal(err)
	}
	mf, err := img.Manifest()
	if err != nil {
		e.t.Fatal(err)
	}
	refs := []store.Reference{{Digest: e.putBlob(repo, cfg), Kind: store.RefBlob, Required: true}}
	ls, err := img.Layers()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			e.t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			e.t.Fatal(err)
		}
		refs = append(refs, store.Reference{Digest: e.putBlob(repo, b), Kind: store.RefBlob, Required: true})
	}
	return e.putManifest(repo, tag, string(mt), string(mf.Config.MediaType), raw, refs)
}

func (e *env) putManifest(repo, tag, mediaType, artifactType string, raw []byte, refs []store.Reference) *store.Manifest {
	e.t.Helper()
	d := e.putBlob(repo, raw)
	m := &store.Manifest{Repository: repo, Digest: d, MediaType: mediaType, Size: int64(len(raw)),
		ArtifactType: artifactType, References: refs}
	var tags []string
	if tag != "" {
		tags = []string{tag}
	}
	if err := e.st.PutManifest(e.ctx, m, tags); err != nil {
		e.t.Fatal(err)
	}
	if !e.putManifestNoScan {
		e.s.Pushed(e.ctx, m)
	}
	return m
}

// pushIndex pushes the images (already pushed to repo) as an OCI index.
func (e *env) pushIndex(repo, tag string, imgs map[string]v1.Image) *store.Manifest {
	e.t.Helper()
	var adds []mutate.IndexAddendum
	var refs []store.Reference
	for arch, img := range imgs {
		d, err := img.Digest()
		if err != nil {
			e.t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
		refs = append(refs, store.Reference{Digest: digest.Digest(d.String()), Kind: store.RefManifest, Required: true})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	raw, err := idx.RawManifest()
	if err != nil {
		e.t.Fatal(err)
	}
	return e.putManifest(repo, tag, string(types.OCIImageIndex), "", raw, refs)
}

// metric returns the value of the scanner's counter name with label
// values matching labels.
func (e *env) metric(name string, labels map[string]string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
