package api_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/blob/fs"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/sqlite"
	"github.com/customs-dev/customs/internal/vulndb"
)

// alpineImage is an Alpine 3.9 image whose apk database lists musl
// 1.1.20-r4 (affected by ALPINE-CVE-2019-14697, see muslAdvisory) and
// busybox.
func alpineImage(t *testing.T) v1.Image {
	t.Helper()
	files := []string{
		"etc/os-release", "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.9.6\nPRETTY_NAME=\"Alpine Linux v3.9\"\n",
		"lib/apk/db/installed", "C:Q1vB4eLrQvK0p2mF3o1gq6x1o4Hm0=\nP:musl\nV:1.1.20-r4\nA:x86_64\no:musl\nF:lib\nR:ld-musl-x86_64.so.1\n\n" +
			"C:Q1yT7J9T3pC0o2vU5sQ3lW5Aqv8jA=\nP:busybox\nV:1.29.3-r10\nA:x86_64\no:busybox\nF:bin\nR:busybox\n\n",
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i < len(files); i += 2 {
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
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	if img, err = mutate.AppendLayers(img, l); err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// pushImage stores img in repo under tag as the registry does (blobs,
// then the manifest) and returns its digest.
func pushImage(t *testing.T, db *sqlite.DB, blobs *fs.Store, repo, tag string, img v1.Image) digest.Digest {
	t.Helper()
	ctx := context.Background()
	put := func(b []byte) digest.Digest {
		d := digest.FromBytes(b)
		if _, err := blobs.Put(ctx, d, bytes.NewReader(b), func(size int64) error {
			return db.PutLinkedBlob(ctx, repo, d, size)
		}); err != nil {
			t.Fatal(err)
		}
		return d
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	refs := []store.Reference{{Digest: put(cfg), Kind: store.RefBlob, Required: true}}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, store.Reference{Digest: put(b), Kind: store.RefBlob, Required: true})
	}
	d := put(raw)
	m := &store.Manifest{Repository: repo, Digest: d, MediaType: string(types.OCIManifestSchema1), Size: int64(len(raw)),
		ArtifactType: string(types.OCIConfigJSON), References: refs}
	if err := db.PutManifest(ctx, m, []string{tag}); err != nil {
		t.Fatal(err)
	}
	return d
}

// muslAdvisory is ALPINE-CVE-2019-14697 (musl on Alpine v3.9, fixed in
// 1.1.20-r5), rated by a CVSS v3 vector.
var muslAdvisory = map[string]any{
	"schema_version": "1.6.0",
	"id":             "ALPINE-CVE-2019-14697",
	"modified":       "2024-01-01T00:00:00Z",
	"upstream":       []string{"CVE-2019-14697"},
	"summary":        "musl libc through 1.1.23 has an x87 floating-point stack adjustment imbalance",
	"affected": []any{map[string]any{
		"package": map[string]any{"ecosystem": "Alpine:v3.9", "name": "musl"},
		"ranges": []any{map[string]any{"type": "ECOSYSTEM", "events": []any{
			map[string]any{"introduced": "0"}, map[string]any{"fixed": "1.1.20-r5"}}}},
	}},
	"severity":   []any{map[string]any{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}},
	"references": []any{map[string]any{"type": "ADVISORY", "url": "https://security.alpinelinux.org/vuln/CVE-2019-14697"}},
}

// importAdvisories imports OSV records into vdb as the source "test".
func importAdvisories(t *testing.T, vdb *vulndb.Service, recs ...map[string]any) {
	t.Helper()
	dir := t.TempDir()
	for _, rec := range recs {
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, rec["id"].(string)+".json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := vdb.Import(context.Background(), vulndb.Source{Name: "test", Location: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil || len(r.Skipped) > 0 {
			t.Fatalf("import: %v %v", r.Err, r.Skipped)
		}
	}
}
