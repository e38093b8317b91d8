// Package storetest is the conformance suite every store.Store passes. A
// driver's test calls Run with a function that opens a fresh, empty store.
package storetest

import (
	"context"
	_ "crypto/sha256" // for go-digest
	_ "crypto/sha512"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// OpenFunc opens a new, empty store that reads the time from now and is
// closed when t ends. It must be safe to call from parallel tests.
type OpenFunc func(t testing.TB, now func() time.Time) store.Store

// Run runs the conformance suite against stores opened by open. Its
// subtests run in parallel, each on its own store.
func Run(t *testing.T, open OpenFunc) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"projects", projectTests},
		{"users", userTests},
		{"user sources", userSourceTests},
		{"sessions", sessionTests},
		{"user groups", groupTests},
		{"members", memberTests},
		{"robots", robotTests},
		{"blobs", blobTests},
		{"repositories", repositoryTests},
		{"repository deletion", repoDeleteTests},
		{"manifests", manifestTests},
		{"tags", tagTests},
		{"referrers", referrerTests},
		{"gc", gcTests},
		{"audit", auditTests},
		{"vulndb", vulnTests},
		{"inventories", inventoryTests},
		{"scan jobs", scanJobTests},
		{"scan reports", scanReportTests},
		{"scan settings", scanSettingsTests},
		{"layer cache", layerCacheTests},
		{"policies", policyTests},
		{"system allowlist", allowlistTests},
		{"manifests with a blob", blobRefTests},
		{"scan report data", scanReportDataTests},
		{"workload audit", workloadAuditTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					clk := newClock()
					tc.run(t, &env{t: t, s: open(t, clk.Now), clk: clk, ctx: context.Background()})
				})
			}
		})
	}
}

// test is one named conformance test.
type test struct {
	name string
	run  func(t *testing.T, e *env)
}

// env is what a test works with: a fresh store and its clock.
type env struct {
	t   *testing.T
	s   store.Store
	clk *clock
	ctx context.Context
}

// clock is a settable clock. Its start has nanoseconds, which stores drop.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

// t0 is where every test's clock starts.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)

func newClock() *clock { return &clock{now: t0} }

// Now returns the clock's time.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by d (which may be negative).
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// micro is t as stores keep it: UTC, truncated to microseconds.
func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// sameTime fails unless got equals want at microsecond precision.
func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(micro(want)) {
		t.Errorf("%s = %v, want %v", what, got, micro(want))
	}
	if got.Location() != time.UTC {
		t.Errorf("%s location = %v, want UTC", what, got.Location())
	}
}

// wantCode fails unless err carries code (and detail, if not "") and, when
// mention is not "", its message mentions it.
func wantCode(t *testing.T, err error, code, detail, mention string) {
	t.Helper()
	if got := apperr.Code(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
	if detail != "" && apperr.Detail(err) != detail {
		t.Fatalf("error detail = %q (%v), want %q", apperr.Detail(err), err, detail)
	}
	if mention != "" && !strings.Contains(apperr.Message(err), mention) {
		t.Fatalf("error message %q does not mention %q", apperr.Message(err), mention)
	}
}

// ok fails the test if err is not nil.
func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// dig is the digest of s.
func dig(s string) digest.Digest { return digest.FromString(s) }

// project creates project name.
func (e *env) project(name string) *store.Project {
	e.t.Helper()
	p := &store.Project{Name: name}
	ok(e.t, e.s.CreateProject(e.ctx, p))
	return p
}

// blob records content as a blob and links it into repo.
func (e *env) blob(repo, content string) digest.Digest {
	e.t.Helper()
	d := dig(content)
	ok(e.t, e.s.PutBlob(e.ctx, d, int64(len(content))))
	ok(e.t, e.s.LinkBlob(e.ctx, repo, d))
	return d
}

// image pushes an image manifest named name into repo: its config and
// layer blobs, the manifest's own blob, and the manifest with tags.
func (e *env) image(repo, name string, tags ...string) *store.Manifest {
	e.t.Helper()
	m := e.imageManifest(repo, name)
	ok(e.t, e.s.PutManifest(e.ctx, m, tags))
	return m
}

// imageManifest records the blobs of image name in repo and returns its
// manifest, not yet stored.
func (e *env) imageManifest(repo, name string) *store.Manifest {
	e.t.Helper()
	cfg := e.blob(repo, name+"/config")
	layer := e.blob(repo, name+"/layer")
	self := dig(name)
	ok(e.t, e.s.PutBlob(e.ctx, self, int64(len(name))))
	return &store.Manifest{
		Repository:   repo,
		Digest:       self,
		MediaType:    "application/vnd.oci.image.manifest.v1+json",
		Size:         int64(len(name)),
		ArtifactType: "application/vnd.oci.image.config.v1+json",
		References: []store.Reference{
			{Digest: cfg, Kind: store.RefBlob, Required: true},
			{Digest: layer, Kind: store.RefBlob, Required: true},
		},
	}
}

// pageCase is one pagination request and the names it must return.
type pageCase struct {
	name string
	page store.Page
	want []string
}

// pageCases are the pagination requests over sorted (at least 4 names, in
// byte order), plus a negative size that must be EINVALID.
func pageCases(sorted []string) []pageCase {
	n := len(sorted)
	return []pageCase{
		{"all", store.Page{}, sorted},
		{"first two", store.Page{N: 2}, sorted[:2]},
		{"next two", store.Page{N: 2, Last: sorted[1]}, sorted[2:4]},
		{"rest after the second", store.Page{Last: sorted[1]}, sorted[2:]},
		{"larger than the list", store.Page{N: n + 10}, sorted},
		{"after the last", store.Page{Last: sorted[n-1]}, nil},
		{"after a name that is not there", store.Page{Last: sorted[0] + "\x01"}, sorted[1:]},
		{"after everything", store.Page{Last: "\x7f"}, nil},
	}
}

// checkPages runs pageCases against list.
func checkPages(t *testing.T, sorted []string, list func(store.Page) ([]string, error)) {
	t.Helper()
	for _, pc := range pageCases(sorted) {
		got, err := list(pc.page)
		if err != nil {
			t.Errorf("%s: %v", pc.name, err)
			continue
		}
		if strings.Join(got, "|") != strings.Join(pc.want, "|") {
			t.Errorf("%s (%+v) = %q, want %q", pc.name, pc.page, got, pc.want)
		}
	}
	_, err := list(store.Page{N: -1})
	wantCode(t, err, apperr.EINVALID, "", "")
}

// byteOrdered are names whose byte order differs from a locale's
// collation order, in byte order.
var byteOrdered = []string{"B", "Z", "a", "a-b", "a.b", "a0", "a_b", "aa", "b"}

// shuffled returns names in a fixed order that is not sorted.
func shuffled(names []string) []string {
	out := make([]string, 0, len(names))
	for i := len(names) - 1; i >= 0; i -= 2 {
		out = append(out, names[i])
	}
	for i := len(names) - 2; i >= 0; i -= 2 {
		out = append(out, names[i])
	}
	return out
}
