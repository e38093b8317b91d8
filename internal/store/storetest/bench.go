package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/customs-dev/customs/internal/store"
)

// benchRepos and benchImages size the benchmark's database: lookups run
// against benchRepos repositories of benchImages tagged images each.
const (
	benchRepos  = 20
	benchImages = 10
)

// benchStore opens a store holding benchRepos*benchImages tagged images and
// returns one of them.
func benchStore(b *testing.B, open OpenFunc) (store.Store, *store.Manifest, string) {
	b.Helper()
	clk := newClock()
	s := open(b, clk.Now)
	ctx := context.Background()
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(s.CreateProject(ctx, &store.Project{Name: "bench"}))
	var target *store.Manifest
	for r := range benchRepos {
		repo := fmt.Sprintf("bench/repo-%02d", r)
		for i := range benchImages {
			name := fmt.Sprintf("%s/image-%02d", repo, i)
			var refs []store.Reference
			for _, part := range []string{"config", "layer1", "layer2", "layer3"} {
				d := dig(name + "/" + part)
				must(s.PutBlob(ctx, d, 100))
				must(s.LinkBlob(ctx, repo, d))
				refs = append(refs, store.Reference{Digest: d, Kind: store.RefBlob, Required: true})
			}
			m := &store.Manifest{Repository: repo, Digest: dig(name), MediaType: "application/vnd.oci.image.manifest.v1+json",
				Size: 1234, ArtifactType: "application/vnd.oci.image.config.v1+json", References: refs,
				Annotations: map[string]string{"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}}
			must(s.PutBlob(ctx, m.Digest, m.Size))
			must(s.PutManifest(ctx, m, []string{fmt.Sprintf("v%d", i)}))
			target = m
		}
	}
	return s, target, fmt.Sprintf("v%d", benchImages-1)
}

// BenchTagLookup measures Tag, which the registry runs on every manifest
// HEAD/GET by tag.
func BenchTagLookup(b *testing.B, open OpenFunc) {
	s, m, tag := benchStore(b, open)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		t, err := s.Tag(ctx, m.Repository, tag)
		if err != nil || t.Digest != m.Digest {
			b.Fatalf("Tag = %+v, %v", t, err)
		}
	}
}

// BenchManifestLookup measures Manifest (with its references), which the
// registry runs on every manifest HEAD/GET.
func BenchManifestLookup(b *testing.B, open OpenFunc) {
	s, m, _ := benchStore(b, open)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		got, err := s.Manifest(ctx, m.Repository, m.Digest)
		if err != nil || len(got.References) != 4 {
			b.Fatalf("Manifest = %+v, %v", got, err)
		}
	}
}
