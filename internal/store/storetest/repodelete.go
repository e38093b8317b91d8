package storetest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

var repoDeleteTests = []test{
	{"removes tags, manifests, referrers and links, not shared blobs", func(t *testing.T, e *env) {
		e.project("p")
		a := e.image("p/a/b", "img", "v1", "latest")
		b := e.image("p/a/b", "other", "v2")
		sig := e.imageManifest("p/a/b", "signature")
		sig.Subject = a.Digest
		ok(t, e.s.PutManifest(e.ctx, sig, nil))
		shared := a.References[1].Digest
		ok(t, e.s.LinkBlob(e.ctx, "p/keep", shared))
		e.image("p/a", "neighbour", "v1") // a prefix of the name, untouched

		del, err := e.s.DeleteRepository(e.ctx, "p/a/b")
		ok(t, err)
		// 3 manifests; 3 tags; 2 blobs of each of 3 manifests linked.
		if want := (store.RepositoryDeletion{Tags: 3, Manifests: 3, BlobLinks: 6}); del != want {
			t.Errorf("DeleteRepository = %+v, want %+v", del, want)
		}
		_, err = e.s.Repository(e.ctx, "p/a/b")
		wantCode(t, err, apperr.ENOTFOUND, "", "p/a/b")
		_, err = e.s.Tag(e.ctx, "p/a/b", "v1")
		wantCode(t, err, apperr.ENOTFOUND, "", "")
		for _, m := range []*store.Manifest{a, b, sig} {
			_, err = e.s.Manifest(e.ctx, "p/a/b", m.Digest)
			wantCode(t, err, apperr.ENOTFOUND, "", "")
		}
		refs, err := e.s.Referrers(e.ctx, "p/a/b", a.Digest, "")
		ok(t, err)
		if len(refs) != 0 {
			t.Errorf("referrers after delete = %v", refs)
		}
		_, err = e.s.LinkedBlob(e.ctx, "p/a/b", shared)
		wantCode(t, err, apperr.ENOTFOUND, "", "")
		got, err := e.s.Repositories(e.ctx, "p", store.Page{})
		ok(t, err)
		if want := []string{"p/a", "p/keep"}; !slices.Equal(got, want) {
			t.Errorf("Repositories = %q, want %q", got, want)
		}
		if _, err := e.s.Tag(e.ctx, "p/a", "v1"); err != nil {
			t.Errorf("neighbour repository's tag: %v", err)
		}

		// Blob records stay for GC: those only p/a/b used become
		// candidates, the one p/keep links does too (no manifest
		// references it) but its link stays.
		if _, err := e.s.Blob(e.ctx, a.References[0].Digest); err != nil {
			t.Errorf("blob record removed by DeleteRepository: %v", err)
		}
		if _, err := e.s.LinkedBlob(e.ctx, "p/keep", shared); err != nil {
			t.Errorf("shared blob's link in p/keep: %v", err)
		}
		cands := e.candidates(e.clk.Now().Add(time.Hour))
		for _, d := range []digest.Digest{a.Digest, b.Digest, sig.Digest, a.References[0].Digest} {
			if !slices.Contains(cands, d) {
				t.Errorf("%s is not a GC candidate after the delete", d)
			}
		}

		_, err = e.s.DeleteRepository(e.ctx, "p/a/b")
		wantCode(t, err, apperr.ENOTFOUND, "", "p/a/b")
		_, err = e.s.DeleteRepository(e.ctx, "none/x")
		wantCode(t, err, apperr.ENOTFOUND, "", "none/x")

		// The name can be pushed to again.
		e.image("p/a/b", "img", "v1")
		if _, err := e.s.Tag(e.ctx, "p/a/b", "v1"); err != nil {
			t.Errorf("tag pushed after delete: %v", err)
		}
	}},
	{"an empty project can be deleted afterwards", func(t *testing.T, e *env) {
		e.project("p")
		e.image("p/r", "img", "v1")
		wantCode(t, e.s.DeleteProject(e.ctx, "p"), apperr.ECONFLICT, "", "")
		_, err := e.s.DeleteRepository(e.ctx, "p/r")
		ok(t, err)
		ok(t, e.s.DeleteProject(e.ctx, "p"))
	}},
	{"concurrent pushes are kept whole or gone whole", func(t *testing.T, e *env) {
		raceRepoDelete(t, e, 30)
	}},
}

// raceRepoDelete, rounds times, links an image's blobs into a repository
// and then pushes the image's manifest while deleting the repository. The
// delete always finds the repository, so whichever goes first, nothing is
// left: a push before the delete is removed whole, a push after it finds
// its blobs unlinked and fails with MANIFEST_BLOB_UNKNOWN, storing nothing
// (not even the repository it would have created).
func raceRepoDelete(t *testing.T, e *env, rounds int) {
	e.project("p")
	const repo = "p/race"
	var acked, refused int
	for i := range rounds {
		m := e.imageManifest(repo, fmt.Sprintf("race-%d", i))
		var pushErr, delErr error
		var del store.RepositoryDeletion
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			time.Sleep(rand.N(time.Millisecond))
			pushErr = e.s.PutManifest(e.ctx, m, []string{fmt.Sprintf("t%d", i)})
		}()
		go func() {
			defer wg.Done()
			time.Sleep(rand.N(time.Millisecond))
			del, delErr = e.s.DeleteRepository(e.ctx, repo)
		}()
		wg.Wait()
		if delErr != nil {
			t.Fatalf("round %d: DeleteRepository: %v", i, delErr)
		}
		if pushErr != nil {
			refused++
			wantCode(t, pushErr, apperr.EINVALID, "MANIFEST_BLOB_UNKNOWN", "")
			if del.Manifests != 0 || del.Tags != 0 {
				t.Errorf("round %d: push refused but the delete removed %+v", i, del)
			}
		} else {
			acked++
			if want := (store.RepositoryDeletion{Tags: 1, Manifests: 1, BlobLinks: 2}); del != want {
				t.Errorf("round %d: push acknowledged first, delete removed %+v, want %+v", i, del, want)
			}
		}
		_, err := e.s.Repository(e.ctx, repo)
		wantCode(t, err, apperr.ENOTFOUND, "", "")
		_, err = e.s.Manifest(e.ctx, repo, m.Digest)
		wantCode(t, err, apperr.ENOTFOUND, "", "")
	}
	t.Logf("%d pushes before the delete, %d after", acked, refused)
}
