package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// candidates returns the GC candidates for cutoff, sorted.
func (e *env) candidates(cutoff time.Time) []digest.Digest {
	e.t.Helper()
	ds, err := e.s.GCCandidates(e.ctx, cutoff, 0)
	ok(e.t, err)
	slices.Sort(ds)
	return ds
}

func sortedDigests(ds ...digest.Digest) []digest.Digest {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds
}

// deleteIfUnused runs DeleteBlobIfUnused and counts removeBytes calls.
func (e *env) deleteIfUnused(d digest.Digest, cutoff time.Time) (deleted bool, calls int) {
	e.t.Helper()
	deleted, err := e.s.DeleteBlobIfUnused(e.ctx, d, cutoff, func() error { calls++; return nil })
	ok(e.t, err)
	if deleted != (calls == 1) || calls > 1 {
		e.t.Errorf("DeleteBlobIfUnused(%s) = %v after %d removeBytes calls", d, deleted, calls)
	}
	return deleted, calls
}

var gcTests = []test{
	{"candidates", func(t *testing.T, e *env) {
		e.project("p")
		img := e.image("p/r", "img", "latest")
		orphan := dig("orphan")
		ok(t, e.s.PutBlob(e.ctx, orphan, 6))
		linked := e.blob("p/r", "linked only") // links alone do not protect
		optional := dig("optional")
		ok(t, e.s.PutBlob(e.ctx, optional, 8))
		withOptional := e.imageManifest("p/r", "with optional")
		withOptional.References = append(withOptional.References,
			store.Reference{Digest: optional, Kind: store.RefBlob})
		ok(t, e.s.PutManifest(e.ctx, withOptional, nil))
		e.clk.Advance(2 * time.Hour)
		recent := dig("recent")
		ok(t, e.s.PutBlob(e.ctx, recent, 6))

		cutoff := t0.Add(time.Hour)
		if got, want := e.candidates(cutoff), sortedDigests(orphan, linked); !slices.Equal(got, want) {
			t.Errorf("candidates = %v, want %v", got, want)
		}
		if got := e.candidates(micro(t0)); len(got) != 0 {
			t.Errorf("candidates touched exactly at the cutoff: %v", got)
		}
		if got, want := e.candidates(micro(t0).Add(time.Microsecond)), sortedDigests(orphan, linked); !slices.Equal(got, want) {
			t.Errorf("candidates a microsecond later = %v, want %v", got, want)
		}
		got, err := e.s.GCCandidates(e.ctx, cutoff, 1)
		ok(t, err)
		if len(got) != 1 {
			t.Errorf("GCCandidates(limit 1) = %v", got)
		}

		// Deleting the manifest frees its blobs and its own bytes.
		ok(t, e.s.DeleteManifest(e.ctx, "p/r", img.Digest))
		want := sortedDigests(orphan, linked, img.Digest, img.References[0].Digest, img.References[1].Digest)
		if got := e.candidates(cutoff); !slices.Equal(got, want) {
			t.Errorf("candidates after DeleteManifest = %v, want %v", got, want)
		}
		// Linking touches.
		ok(t, e.s.LinkBlob(e.ctx, "p/s", orphan))
		want = slices.DeleteFunc(want, func(d digest.Digest) bool { return d == orphan })
		if got := e.candidates(cutoff); !slices.Equal(got, want) {
			t.Errorf("candidates after linking the orphan = %v, want %v", got, want)
		}
		if got := e.candidates(e.clk.Now().Add(time.Second)); !slices.Contains(got, orphan) || slices.Contains(got, optional) {
			t.Errorf("candidates with a later cutoff = %v", got)
		}
	}},
	{"delete if unused", func(t *testing.T, e *env) {
		e.project("p")
		img := e.image("p/r", "img")
		optional := dig("optional")
		ok(t, e.s.PutBlob(e.ctx, optional, 8))
		m := e.imageManifest("p/r", "with optional")
		m.References = append(m.References, store.Reference{Digest: optional, Kind: store.RefBlob})
		ok(t, e.s.PutManifest(e.ctx, m, nil))
		unused := e.blob("p/a", "unused")
		ok(t, e.s.LinkBlob(e.ctx, "p/b", unused))
		e.clk.Advance(2 * time.Hour)
		recent := dig("recent")
		ok(t, e.s.PutBlob(e.ctx, recent, 6))
		count, _, err := e.s.BlobStats(e.ctx)
		ok(t, err)
		cutoff := t0.Add(time.Hour)

		for _, tc := range []struct {
			name string
			d    digest.Digest
		}{
			{"required layer", img.References[1].Digest},
			{"config", img.References[0].Digest},
			{"optional reference", optional},
			{"manifest's own blob", img.Digest},
			{"touched after the cutoff", recent},
			{"never recorded", dig("never")},
		} {
			if deleted, calls := e.deleteIfUnused(tc.d, cutoff); deleted || calls != 0 {
				t.Errorf("%s: deleted=%v, removeBytes calls=%d; want kept, no call", tc.name, deleted, calls)
			}
		}
		if n, _, _ := e.s.BlobStats(e.ctx); n != count {
			t.Errorf("blob count %d -> %d without a deletion", count, n)
		}

		if deleted, _ := e.deleteIfUnused(unused, cutoff); !deleted {
			t.Fatal("unused blob not deleted")
		}
		_, err = e.s.Blob(e.ctx, unused)
		wantCode(t, err, apperr.ENOTFOUND, "", "")
		for _, r := range []string{"p/a", "p/b"} {
			_, err = e.s.LinkedBlob(e.ctx, r, unused)
			wantCode(t, err, apperr.ENOTFOUND, "", "")
		}
		if rs, err := e.s.RepositoriesWithBlob(e.ctx, unused, 0); err != nil || len(rs) != 0 {
			t.Errorf("RepositoriesWithBlob after delete = %q, %v", rs, err)
		}
		if n, _, _ := e.s.BlobStats(e.ctx); n != count-1 {
			t.Errorf("blob count after delete = %d, want %d", n, count-1)
		}
		if deleted, calls := e.deleteIfUnused(unused, cutoff); deleted || calls != 0 {
			t.Error("second delete of the same blob did something")
		}

		// Pushed again, it is a new blob.
		ok(t, e.s.PutBlob(e.ctx, unused, 6))
		b, err := e.s.Blob(e.ctx, unused)
		ok(t, err)
		sameTime(t, "CreatedAt of the re-pushed blob", b.CreatedAt, e.clk.Now())
	}},
	{"failed byte removal rolls back", func(t *testing.T, e *env) {
		e.project("p")
		d := e.blob("p/r", "doomed")
		cutoff := t0.Add(time.Hour)
		boom := errors.New("disk on fire")
		deleted, err := e.s.DeleteBlobIfUnused(e.ctx, d, cutoff, func() error { return boom })
		if deleted || !errors.Is(err, boom) {
			t.Fatalf("DeleteBlobIfUnused = %v, %v; want false and the removeBytes error", deleted, err)
		}
		if _, err := e.s.LinkedBlob(e.ctx, "p/r", d); err != nil {
			t.Errorf("after a failed removal the blob or its link is gone: %v", err)
		}
		if deleted, _ := e.deleteIfUnused(d, cutoff); !deleted {
			t.Error("retry after a failed removal did not delete")
		}
	}},
	{"concurrent push and collection keep required blobs", func(t *testing.T, e *env) {
		raceGC(t, e, 60)
	}},
}

// raceGC pushes rounds images while collecting each image's blobs at the
// same time, every blob already a GC candidate, and checks the invariant:
// a manifest is stored only if every blob it requires is still recorded,
// and a push that lost the race failed with MANIFEST_BLOB_UNKNOWN.
func raceGC(t *testing.T, e *env, rounds int) {
	e.project("p")
	const repo = "p/race"
	type round struct {
		m       *store.Manifest
		blobs   []digest.Digest // m's own blob, config, layer
		pushErr error
		deleted [3]bool
	}
	rs := make([]*round, rounds)
	for i := range rs {
		m := e.imageManifest(repo, fmt.Sprintf("race-%d", i))
		rs[i] = &round{m: m, blobs: []digest.Digest{m.Digest, m.References[0].Digest, m.References[1].Digest}}
	}
	cutoff := e.clk.Now().Add(time.Hour) // every blob is a candidate
	var removed atomic.Int64

	const parallel = 4 // rounds in flight at once
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, r := range rs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			start := make(chan struct{})
			var inner sync.WaitGroup
			inner.Add(1 + len(r.blobs))
			// Random start delays vary which side gets in first; the
			// collector's are longer because a push runs more statements.
			jitter := func(d time.Duration) { time.Sleep(rand.N(d)) }
			go func() {
				defer inner.Done()
				<-start
				jitter(time.Millisecond)
				r.pushErr = e.s.PutManifest(e.ctx, r.m, []string{fmt.Sprintf("t%d", i)})
			}()
			for j, d := range r.blobs {
				go func() {
					defer inner.Done()
					<-start
					jitter(3 * time.Millisecond)
					deleted, err := e.s.DeleteBlobIfUnused(e.ctx, d, cutoff, func() error { removed.Add(1); return nil })
					if err != nil {
						t.Errorf("round %d: DeleteBlobIfUnused: %v", i, err)
					}
					r.deleted[j] = deleted
				}()
			}
			close(start)
			inner.Wait()
		}()
	}
	wg.Wait()

	var stored, refused, deletions int64
	for i, r := range rs {
		anyDeleted := false
		for j, del := range r.deleted {
			if del {
				deletions++
				anyDeleted = true
				if _, err := e.s.Blob(e.ctx, r.blobs[j]); apperr.Code(err) != apperr.ENOTFOUND {
					t.Errorf("round %d: blob reported deleted is still recorded (err %v)", i, err)
				}
			}
		}
		_, getErr := e.s.Manifest(e.ctx, repo, r.m.Digest)
		switch {
		case r.pushErr == nil:
			stored++
			if getErr != nil {
				t.Errorf("round %d: acknowledged manifest not stored: %v", i, getErr)
			}
			if anyDeleted {
				t.Errorf("round %d: manifest stored although its blobs were collected: %v", i, r.deleted)
			}
			for _, d := range r.blobs {
				if _, err := e.s.Blob(e.ctx, d); err != nil {
					t.Errorf("round %d: stored manifest's blob %s is gone: %v", i, d, err)
				}
			}
		default:
			refused++
			if apperr.Code(r.pushErr) != apperr.EINVALID || apperr.Detail(r.pushErr) != "MANIFEST_BLOB_UNKNOWN" {
				t.Errorf("round %d: push failed with %v, want MANIFEST_BLOB_UNKNOWN", i, r.pushErr)
			}
			if apperr.Code(getErr) != apperr.ENOTFOUND {
				t.Errorf("round %d: refused manifest is stored (err %v)", i, getErr)
			}
			if !anyDeleted {
				t.Errorf("round %d: push refused although no blob was collected: %v", i, r.pushErr)
			}
		}
	}
	if removed.Load() != deletions {
		t.Errorf("removeBytes ran %d times for %d deletions", removed.Load(), deletions)
	}
	t.Logf("%d rounds: %d pushes stored, %d refused, %d blobs collected", rounds, stored, refused, deletions)
}
