package storetest

import (
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

var blobRefTests = []test{
	{"manifests with a blob: shared layers, other repositories, limit", func(t *testing.T, e *env) {
		e.project("p")
		a := e.image("p/app", "a", "v1")
		// b shares a's layer (a base layer) and has its own config.
		cfgB := e.blob("p/app", "b/config")
		selfB := dig("b")
		ok(t, e.s.PutBlob(e.ctx, selfB, 1))
		b := &store.Manifest{Repository: "p/app", Digest: selfB, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 1,
			References: []store.Reference{{Digest: cfgB, Kind: store.RefBlob, Required: true}, a.References[1]}}
		ok(t, e.s.PutManifest(e.ctx, b, nil))
		// The same image in another repository is not listed for p/app.
		e.image("p/other", "a")

		layer := a.References[1].Digest
		got, err := e.s.ManifestsWithBlob(e.ctx, "p/app", layer, 10)
		ok(t, err)
		want := []digest.Digest{a.Digest, b.Digest}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("ManifestsWithBlob(shared layer) = %v, want %v", got, want)
		}
		got, err = e.s.ManifestsWithBlob(e.ctx, "p/app", cfgB, 10)
		ok(t, err)
		if !slices.Equal(got, []digest.Digest{b.Digest}) {
			t.Fatalf("ManifestsWithBlob(b's config) = %v", got)
		}
		got, err = e.s.ManifestsWithBlob(e.ctx, "p/app", layer, 1)
		ok(t, err)
		if len(got) != 1 || got[0] != want[0] {
			t.Fatalf("ManifestsWithBlob limit 1 = %v", got)
		}
		got, err = e.s.ManifestsWithBlob(e.ctx, "p/app", dig("unreferenced"), 10)
		ok(t, err)
		if len(got) != 0 {
			t.Fatalf("ManifestsWithBlob(unreferenced) = %v", got)
		}
		got, err = e.s.ManifestsWithBlob(e.ctx, "p/missing", layer, 10)
		ok(t, err)
		if len(got) != 0 {
			t.Fatalf("ManifestsWithBlob(missing repository) = %v", got)
		}
		_, err = e.s.ManifestsWithBlob(e.ctx, "p/app", layer, 0)
		wantCode(t, err, apperr.EINVALID, "", "")
		// Deleting a manifest drops its references.
		ok(t, e.s.DeleteManifest(e.ctx, "p/app", a.Digest))
		got, err = e.s.ManifestsWithBlob(e.ctx, "p/app", layer, 10)
		ok(t, err)
		if !slices.Equal(got, []digest.Digest{b.Digest}) {
			t.Fatalf("after deleting a: %v", got)
		}
	}},
}
