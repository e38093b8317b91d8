package e2e_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"

	specv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// debianImage is the cached test image scripts/test-deps.sh builds.
const debianImage = "debian-bookworm"

// layoutManifest returns the digest and bytes of the only manifest in the
// OCI layout dir's index.json.
func layoutManifest(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx specv1.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatalf("%s/index.json: %v", dir, err)
	}
	if len(idx.Manifests) != 1 {
		t.Fatalf("%s/index.json lists %d manifests, want 1", dir, len(idx.Manifests))
	}
	d := idx.Manifests[0].Digest
	body, err := os.ReadFile(filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	return d.String(), body
}

// layoutBlobs returns the layout's blobs as digest -> size, checking that
// every blob's bytes hash to its name (sha256 only, which is what the test
// images use).
func layoutBlobs(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	blobs := map[string]int64{}
	root := filepath.Join(dir, "blobs")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		alg, hexName := filepath.Dir(rel), filepath.Base(rel)
		body, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if alg != "sha256" {
			t.Errorf("%s: unexpected digest algorithm directory %s", dir, alg)
			return nil
		}
		sum := sha256.Sum256(body)
		if got := hex.EncodeToString(sum[:]); got != hexName {
			t.Errorf("%s: blob %s hashes to %s", dir, rel, got)
		}
		blobs[alg+":"+hexName] = int64(len(body))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return blobs
}

// sameBlobs fails the test unless the two layouts hold exactly the same
// blobs.
func sameBlobs(t *testing.T, want, got string) {
	t.Helper()
	w, g := layoutBlobs(t, want), layoutBlobs(t, got)
	var missing, extra []string
	for d, size := range w {
		if gs, ok := g[d]; !ok || gs != size {
			missing = append(missing, d)
		}
	}
	for d := range g {
		if _, ok := w[d]; !ok {
			extra = append(extra, d)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("layouts differ: %d blobs missing or different in %s: %v; %d unexpected: %v", len(missing), got, missing, len(extra), extra)
	}
}

// manifestLayers returns the layer digests of an image manifest.
func manifestLayers(t *testing.T, raw []byte) []string {
	t.Helper()
	var m specv1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("image manifest: %v", err)
	}
	var out []string
	for _, l := range m.Layers {
		out = append(out, l.Digest.String())
	}
	return out
}
