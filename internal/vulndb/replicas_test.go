package vulndb

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/sqlite"
	"github.com/customs-dev/customs/internal/vulndb/severity"
)

// gatedStore holds index builds (ScanVulnRecords) at a gate while one is
// set, and counts them.
type gatedStore struct {
	Store
	builds atomic.Int32
	mu     sync.Mutex
	gate   chan struct{} // nil: builds pass
	held   chan struct{} // receives once per build held at the gate
}

// close sets a gate; open lifts it.
func (g *gatedStore) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate, g.held = make(chan struct{}), make(chan struct{}, 16)
}

func (g *gatedStore) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.gate)
	g.gate = nil
}

func (g *gatedStore) ScanVulnRecords(ctx context.Context, fn func(store.VulnRecord) error) (int64, error) {
	g.builds.Add(1)
	g.mu.Lock()
	gate, held := g.gate, g.held
	g.mu.Unlock()
	if gate != nil {
		held <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return g.Store.ScanVulnRecords(ctx, fn)
}

// waitHeld waits for a build to reach g's gate.
func waitHeld(t *testing.T, g *gatedStore) {
	t.Helper()
	g.mu.Lock()
	held := g.held
	g.mu.Unlock()
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("no index build started")
	}
}

// TestMatchDuringRebuild: while the index of a new revision is built,
// Match answers at once from the previous index with its revision, one
// build serves every caller, and then Match answers from the new one.
func TestMatchDuringRebuild(t *testing.T) {
	ctx := context.Background()
	dbs := openSQLiteN(t, 2)
	writer := newService(t, Options{Store: dbs[0]})
	importOK(t, writer, Source{Name: "alpine-v3.9", Location: vulndata(t, "alpine-v3.9")})
	g := &gatedStore{Store: dbs[1]}
	s := newService(t, Options{Store: g}) // checks the revision on every call

	// The first build ever is waited for: there is nothing to serve.
	if f := muslFinding(t, s); f.Severity.Level == severity.Low {
		t.Fatalf("severity before the override: %+v", f.Severity)
	}
	if _, rev, _ := s.Index(ctx); rev != 1 || g.builds.Load() != 1 {
		t.Fatalf("revision %d after %d builds, want 1 after 1", rev, g.builds.Load())
	}

	// Another replica changes the database; this one's rebuild is held.
	if _, err := writer.SetOverride(ctx, "CVE-2019-14697", severity.Low, "test", "tester"); err != nil {
		t.Fatal(err)
	}
	g.close()
	musl := &inventory.Inventory{Distro: alpine39, Packages: []inventory.Package{{Ecosystem: "Alpine", Name: "musl", Version: "1.1.20-r4"}}}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// These return while the build is held: they do not wait for it.
			res, err := s.Match(ctx, musl)
			if err != nil || res.Revision != 1 || len(res.Findings) == 0 || res.Findings[0].Severity.Level == severity.Low {
				t.Errorf("Match during the rebuild = %+v, %v; want revision 1's findings", res, err)
			}
		}()
	}
	wg.Wait()
	waitHeld(t, g)
	if n := g.builds.Load(); n != 2 {
		t.Fatalf("%d builds for 8 concurrent callers, want 1 more", n-1)
	}
	// A caller that needs revision 2 waits, and may give up.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, _, err := s.IndexAt(cctx, 2); apperr.Code(err) != apperr.EUNAVAILABLE || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("IndexAt(2) with a deadline during the rebuild: %v", err)
	}
	g.open()
	if _, rev, err := s.IndexAt(ctx, 2); err != nil || rev != 2 {
		t.Fatalf("IndexAt(2) = revision %d, %v", rev, err)
	}
	res, err := s.Match(ctx, musl)
	if err != nil || res.Revision != 2 || res.Findings[0].Severity.Level != severity.Low {
		t.Fatalf("Match after the rebuild = %+v, %v; want revision 2 with the override", res, err)
	}
	if n := g.builds.Load(); n != 2 {
		t.Fatalf("%d builds, want 2 (the abandoned wait must not start another)", n)
	}

	// Close ends a build under way; the previous index still answers.
	if _, err := writer.DeleteOverride(ctx, "CVE-2019-14697"); err != nil {
		t.Fatal(err)
	}
	g.close()
	if res, err := s.Match(ctx, musl); err != nil || res.Revision != 2 {
		t.Fatalf("Match during the second rebuild = %+v, %v", res, err)
	}
	waitHeld(t, g)
	s.Close()
	if _, _, err := s.IndexAt(ctx, 3); apperr.Code(err) != apperr.EUNAVAILABLE || !strings.Contains(err.Error(), "shutting down") {
		t.Fatalf("IndexAt after Close = %v, want EUNAVAILABLE", err)
	}
	g.open()
}

// blockingExport serves the alpine-v3.3 export with an ETag; while block
// is set, a full download stops after 1000 bytes until unblock is called.
type blockingExport struct {
	export       []byte
	block        atomic.Bool
	full, notMod atomic.Int32
	mu           sync.Mutex
	release      chan struct{}
}

// unblock lets the downloads held now finish; later ones are held again
// while block is set.
func (b *blockingExport) unblock() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.release)
	b.release = make(chan struct{})
}

func (b *blockingExport) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("If-None-Match") == `"v1"` {
		b.notMod.Add(1)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	b.full.Add(1)
	w.Header().Set("ETag", `"v1"`)
	if !b.block.Load() {
		w.Write(b.export)
		return
	}
	b.mu.Lock()
	release := b.release
	b.mu.Unlock()
	w.Write(b.export[:1000])
	w.(http.Flusher).Flush()
	select {
	case <-release:
	case <-r.Context().Done():
		return
	}
	w.Write(b.export[1000:])
}

// TestScheduledUpdateReplicas runs two replicas' scheduled updates over
// one database: one downloads the source while the other shows its
// progress and leaves the source to it; a replica that took over after a
// dead one's lease expired imports it; an import whose lease is taken over
// gives up.
func TestScheduledUpdateReplicas(t *testing.T) {
	export, err := os.ReadFile(vulndata(t, "alpine-v3.3"))
	if err != nil {
		t.Fatal(err)
	}
	for _, drv := range drivers {
		t.Run(drv.name, func(t *testing.T) {
			ctx := context.Background()
			srvExport := &blockingExport{export: export, release: make(chan struct{})}
			srv := httptest.NewServer(srvExport)
			defer srv.Close()
			defer srvExport.unblock() // before the server closes, however the test ends
			dbs := drv.openN(t, 2)
			src := Source{Name: "alpine", Location: srv.URL + "/all.zip"}
			replica := func(db Store, owner string) *Service {
				return newService(t, Options{Store: db, Sources: []Source{src}, HTTPClient: srv.Client(), Owner: owner,
					ImportLease: 5 * time.Second, ProgressEvery: 10 * time.Millisecond})
			}
			a, b := replica(dbs[0], "replica-a"), replica(dbs[1], "replica-b")

			// a's download is under way; b shows its progress from the
			// database.
			srvExport.block.Store(true)
			done := make(chan []Result, 1)
			go func() {
				rs, err := a.UpdateDue(ctx, time.Hour)
				if err != nil {
					t.Errorf("a.UpdateDue: %v", err)
				}
				done <- rs
			}()
			var seen Progress
			waitFor(t, "a's progress on replica b", func() bool {
				st, err := b.Status(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(st.Running) == 1 {
					seen = st.Running[0]
				}
				return seen.Phase == "downloading" && seen.Bytes == 1000
			})
			if seen.Source != "alpine" || seen.Owner != "replica-a" || seen.Location != src.Location || seen.Started.IsZero() ||
				seen.UpdatedAt.IsZero() {
				t.Fatalf("a's import as b shows it: %+v", seen)
			}
			// b's scheduled update leaves the source to a; an explicit
			// update says who is importing it.
			rs, err := b.UpdateDue(ctx, time.Hour)
			if err != nil || len(rs) != 1 || rs[0].HeldBy != "replica-a" || rs[0].Err != nil {
				t.Fatalf("b.UpdateDue during a's import = %+v, %v", rs, err)
			}
			rs, err = b.Update(ctx)
			if apperr.Code(err) != apperr.ECONFLICT || len(rs) != 1 || rs[0].HeldBy != "replica-a" ||
				!strings.Contains(err.Error(), "being imported by replica-a") {
				t.Fatalf("b.Update during a's import = %+v, %v", rs, err)
			}
			srvExport.unblock()
			rs = <-done
			if len(rs) != 1 || rs[0].Err != nil || rs[0].Added != 453 {
				t.Fatalf("a's update = %+v", rs)
			}
			for _, s := range []*Service{a, b} {
				if st, err := s.Status(ctx); err != nil || len(st.Running) != 0 || st.Sources[0].Records != 453 {
					t.Fatalf("%s's status after the import: %+v, %v", s.Owner(), st, err)
				}
			}
			// The source is not due on either replica: no request at all.
			srvExport.block.Store(false)
			for _, s := range []*Service{a, b} {
				if rs, err := s.UpdateDue(ctx, time.Hour); err != nil || len(rs) != 0 {
					t.Fatalf("%s: UpdateDue right after an update = %+v, %v", s.Owner(), rs, err)
				}
			}
			if f, n := srvExport.full.Load(), srvExport.notMod.Load(); f != 1 || n != 0 {
				t.Fatalf("%d downloads and %d conditional requests, want 1 and 0", f, n)
			}

			// Both replicas find the source due at once: one of them asks
			// (a conditional request, answered 304), the other leaves it
			// (held, or attempted by then). every makes the last attempt
			// half a second overdue.
			st, err := a.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			every := time.Since(st.Sources[0].LastAttempt) - 500*time.Millisecond
			var wg sync.WaitGroup
			for _, s := range []*Service{a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := s.UpdateDue(ctx, every); err != nil {
						t.Errorf("%s: concurrent UpdateDue: %v", s.Owner(), err)
					}
				}()
			}
			wg.Wait()
			if f, n := srvExport.full.Load(), srvExport.notMod.Load(); f != 1 || n != 1 {
				t.Fatalf("after concurrent updates: %d downloads and %d conditional requests, want 1 and 1", f, n)
			}

			// A replica that died holding the lease: its import shows until
			// the lease expires, then b takes the source over.
			dead := &store.VulnImportRun{Source: "alpine", Location: src.Location, Owner: "replica-dead", Phase: "reading"}
			if holder, err := dbs[0].ClaimVulnImport(ctx, dead, 1500*time.Millisecond); err != nil || holder != nil {
				t.Fatalf("dead replica's claim: %+v, %v", holder, err)
			}
			if st, err := b.Status(ctx); err != nil || len(st.Running) != 1 || st.Running[0].Owner != "replica-dead" {
				t.Fatalf("status with the dead replica's lease: %+v, %v", st, err)
			}
			if rs, err := b.UpdateDue(ctx, time.Millisecond); err != nil || len(rs) != 1 || rs[0].HeldBy != "replica-dead" {
				t.Fatalf("b.UpdateDue under a live lease = %+v, %v", rs, err)
			}
			waitFor(t, "the dead replica's lease to expire", func() bool {
				st, err := b.Status(ctx)
				return err == nil && len(st.Running) == 0
			})
			rs, err = b.UpdateDue(ctx, time.Millisecond)
			if err != nil || len(rs) != 1 || rs[0].HeldBy != "" || !rs[0].Unchanged {
				t.Fatalf("b.UpdateDue after the lease expired = %+v, %v", rs, err)
			}

			// An import whose lease another process takes over gives up.
			srvExport.block.Store(true)
			go func() {
				rs, _ := a.Import(ctx, Source{Name: "alpine", Location: src.Location, Force: true})
				done <- rs
			}()
			waitFor(t, "a's forced download", func() bool {
				run := a.Running()
				return len(run) == 1 && run[0].Bytes == 1000
			})
			if err := dbs[1].ReleaseVulnImport(ctx, "alpine", "replica-a"); err != nil {
				t.Fatal(err)
			}
			intruder := &store.VulnImportRun{Source: "alpine", Location: src.Location, Owner: "intruder"}
			if holder, err := dbs[1].ClaimVulnImport(ctx, intruder, time.Minute); err != nil || holder != nil {
				t.Fatalf("intruder's claim: %+v, %v", holder, err)
			}
			rs = <-done
			if len(rs) != 1 || apperr.Code(rs[0].Err) != apperr.ECONFLICT || !strings.Contains(rs[0].Err.Error(), "lease was taken over") {
				t.Fatalf("a's import after losing its lease = %+v", rs)
			}
			st, err = b.Status(ctx)
			if err != nil || len(st.Running) != 1 || st.Running[0].Owner != "intruder" || st.Sources[0].LastError != "" {
				t.Fatalf("status after a gave up: %+v, %v (the intruder's lease stays, no failure recorded)", st, err)
			}
		})
	}
}

// waitFor polls cond until it holds, failing t after 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testClock is a settable clock shared by a store and a service.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestChangeLogRetention prunes the change log after imports and override
// changes, and AffectedSince of a pruned revision fails with ErrTooOld.
func TestChangeLogRetention(t *testing.T) {
	ctx := context.Background()
	clk := &testClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	day := 24 * time.Hour
	db := openSQLiteN(t, 1, sqlite.WithClock(clk.Now))[0]
	s := newService(t, Options{Store: db, Clock: clk.Now, ChangeLogRetention: 30 * day})
	keep := newService(t, Options{Store: db, Clock: clk.Now}) // keeps the log forever
	dir := t.TempDir()
	src := Source{Name: "dir", Location: dir}
	write := func(fixed string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "GO-1.json"), []byte(goRecord("GO-1", "example.com/a", fixed, "CVE-2024-1")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	key := store.InventoryKey{Digest: "sha256:aaaa"}
	if err := s.PutInventory(ctx, key, &inventory.Inventory{Packages: []inventory.Package{{Ecosystem: "Go", Name: "example.com/a", Version: "1.0.0"}}}); err != nil {
		t.Fatal(err)
	}
	affectedSince := func(since int64, wantRev int64) {
		t.Helper()
		res, err := s.AffectedSince(ctx, since)
		if err != nil {
			t.Fatalf("AffectedSince(%d): %v", since, err)
		}
		if res.Revision != wantRev || !slices.Contains(res.Changed, "GO-1") || len(res.Inventories) != 1 || res.Inventories[0].Key != key {
			t.Fatalf("AffectedSince(%d) = %+v, want GO-1 affecting %s at revision %d", since, res, key.Digest, wantRev)
		}
	}
	tooOld := func(since, prunedThrough int64) {
		t.Helper()
		_, err := s.AffectedSince(ctx, since)
		if !errors.Is(err, ErrTooOld) || apperr.Code(err) != apperr.ECONFLICT {
			t.Fatalf("AffectedSince(%d) = %v, want ErrTooOld", since, err)
		}
		for _, m := range []string{fmt.Sprintf("revision %d is too old", since), fmt.Sprintf("after revision %d", prunedThrough), "match every stored inventory again"} {
			if !strings.Contains(apperr.Message(err), m) {
				t.Errorf("ErrTooOld message %q does not say %q", apperr.Message(err), m)
			}
		}
		st, err := s.Status(ctx)
		if err != nil || st.ChangeLogFrom != prunedThrough {
			t.Fatalf("status: change log from %d, %v; want %d", st.ChangeLogFrom, err, prunedThrough)
		}
	}

	write("1.1.0")
	importOK(t, s, src) // revision 1
	affectedSince(0, 1)
	clk.Advance(20 * day)
	write("1.2.0")
	importOK(t, s, src) // revision 2; revision 1 is 20 days old: kept
	affectedSince(0, 2)
	clk.Advance(20 * day)
	write("1.3.0")
	importOK(t, s, src) // revision 3; revision 1 is 40 days old: pruned
	tooOld(0, 1)
	affectedSince(1, 3)
	// An override change prunes too (revision 2 is 40 days old then).
	clk.Advance(20 * day)
	if _, err := s.SetOverride(ctx, "CVE-2024-1", severity.High, "", "tester"); err != nil {
		t.Fatal(err)
	}
	tooOld(1, 2)
	affectedSince(2, 4)
	// Without a retention nothing more is pruned.
	clk.Advance(100 * day)
	if _, err := keep.SetOverride(ctx, "CVE-2024-1", severity.Low, "", "tester"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.IndexAt(ctx, 5); err != nil {
		t.Fatal(err)
	}
	affectedSince(2, 5)
}

// TestOpenOptions rejects contradictory lease options.
func TestOpenOptions(t *testing.T) {
	db := openSQLite(t)
	for _, o := range []Options{
		{Store: db, ImportLease: time.Second, ProgressEvery: time.Second},
		{Store: db, ChangeLogRetention: -time.Hour},
	} {
		if _, err := Open(o); apperr.Code(err) != apperr.EINVALID {
			t.Errorf("Open(%+v) = %v, want EINVALID", o, err)
		}
	}
	s := newService(t, Options{Store: db})
	if !strings.Contains(s.Owner(), "-") || s.Owner() == newService(t, Options{Store: db}).Owner() {
		t.Errorf("default owners are not distinct host-pid-random names: %q", s.Owner())
	}
}

// TestIsDue: which sources a scheduled update imports.
func TestIsDue(t *testing.T) {
	now := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	dueBefore := now.Add(-24 * time.Hour)
	src := Source{Name: "go", Location: "https://mirror/go.zip"}
	for _, tc := range []struct {
		name string
		prev *store.VulnSource
		want bool
	}{
		{"never imported", nil, true},
		{"attempted within the interval", &store.VulnSource{Location: src.Location, LastAttempt: now.Add(-time.Hour)}, false},
		{"attempted before the interval", &store.VulnSource{Location: src.Location, LastAttempt: now.Add(-25 * time.Hour)}, true},
		{"failed within the interval", &store.VulnSource{Location: src.Location, LastAttempt: now.Add(-time.Hour), LastError: "boom"}, false},
		{"moved to a new location", &store.VulnSource{Location: "https://old/go.zip", LastAttempt: now.Add(-time.Hour)}, true},
		{"failing at its new location", &store.VulnSource{Location: "https://old/go.zip", LastAttempt: now.Add(-time.Hour), LastError: "404"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isDue(tc.prev, src, dueBefore); got != tc.want {
				t.Fatalf("isDue = %v, want %v", got, tc.want)
			}
		})
	}
}
