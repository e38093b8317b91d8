package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	specv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// writeRootfs writes a small rootfs tarball and returns its path and the
// sha256 of its bytes (the layer's diff_id).
func writeRootfs(t *testing.T) (string, string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entries := []struct {
		name, body string
		typ        byte
	}{
		{"./", "", tar.TypeDir},
		{"./etc/", "", tar.TypeDir},
		{"./etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n", tar.TypeReg},
		{"./bin", "usr/bin", tar.TypeSymlink},
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o755, ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		switch e.typ {
		case tar.TypeReg:
			h.Size = int64(len(e.body))
			h.Mode = 0o644
		case tar.TypeSymlink:
			h.Linkname = e.body
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return p, "sha256:" + hex.EncodeToString(sum[:])
}

func TestConvert(t *testing.T) {
	rootfs, diffID := writeRootfs(t)
	out := filepath.Join(t.TempDir(), "layout")
	created := time.Date(2025, 5, 20, 0, 0, 0, 0, time.UTC)
	d, err := convert(options{rootfs: rootfs, out: out, tag: "bookworm", os: "linux", arch: "arm64",
		cmd: []string{"bash"}, created: created, comment: "test"})
	if err != nil {
		t.Fatal(err)
	}

	// index.json names exactly one OCI manifest, by tag and platform.
	raw, err := os.ReadFile(filepath.Join(out, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx specv1.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 1 {
		t.Fatalf("index.json has %d manifests, want 1", len(idx.Manifests))
	}
	desc := idx.Manifests[0]
	if desc.MediaType != specv1.MediaTypeImageManifest {
		t.Errorf("manifest media type %q, want %q", desc.MediaType, specv1.MediaTypeImageManifest)
	}
	if desc.Digest.String() != d.String() {
		t.Errorf("index.json digest %s, convert returned %s", desc.Digest, d)
	}
	if got := desc.Annotations[specv1.AnnotationRefName]; got != "bookworm" {
		t.Errorf("ref.name annotation %q, want bookworm", got)
	}
	if desc.Platform == nil || desc.Platform.OS != "linux" || desc.Platform.Architecture != "arm64" {
		t.Errorf("descriptor platform %+v, want linux/arm64", desc.Platform)
	}
	if _, err := os.Stat(filepath.Join(out, "oci-layout")); err != nil {
		t.Errorf("oci-layout marker: %v", err)
	}

	// The image reads back with an OCI config carrying os/arch/diff_ids and
	// one gzip layer whose uncompressed bytes are the rootfs.
	lp, err := layout.FromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	img, err := lp.Image(d)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("config media type %q, want %q", m.Config.MediaType, types.OCIConfigJSON)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
		t.Fatalf("layers %+v, want one %s", m.Layers, types.OCILayer)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "arm64" {
		t.Errorf("config platform %s/%s, want linux/arm64", cf.OS, cf.Architecture)
	}
	if cf.RootFS.Type != "layers" || len(cf.RootFS.DiffIDs) != 1 || cf.RootFS.DiffIDs[0].String() != diffID {
		t.Errorf("rootfs %+v, want layers [%s]", cf.RootFS, diffID)
	}
	if !cf.Created.Time.Equal(created) {
		t.Errorf("created %v, want %v", cf.Created.Time, created)
	}
	if strings.Join(cf.Config.Cmd, " ") != "bash" {
		t.Errorf("cmd %v, want [bash]", cf.Config.Cmd)
	}
	if len(cf.History) != 1 || cf.History[0].CreatedBy != "test" {
		t.Errorf("history %+v, want one entry created by test", cf.History)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	ld, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	blob, err := os.ReadFile(filepath.Join(out, "blobs", ld.Algorithm, ld.Hex))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(blob)
	if got := hex.EncodeToString(sum[:]); got != ld.Hex {
		t.Errorf("layer blob hashes to %s, named %s", got, ld.Hex)
	}
	if len(blob) < 2 || blob[0] != 0x1f || blob[1] != 0x8b {
		t.Errorf("layer blob is not gzip")
	}
}

func TestConvertRefuses(t *testing.T) {
	rootfs, _ := writeRootfs(t)
	notTar := filepath.Join(t.TempDir(), "rootfs.tar.gz")
	if err := os.WriteFile(notTar, bytes.Repeat([]byte{0x1f, 0x8b, 0}, 400), 0o644); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(t.TempDir(), "short.tar")
	if err := os.WriteFile(short, []byte("tiny"), 0o644); err != nil {
		t.Fatal(err)
	}
	existing := t.TempDir()
	tests := []struct {
		name    string
		rootfs  string
		out     string
		wantErr string
	}{
		{"output exists", rootfs, existing, "already exists"},
		{"compressed input", notTar, filepath.Join(t.TempDir(), "a"), "not an uncompressed tar"},
		{"truncated input", short, filepath.Join(t.TempDir(), "b"), "not a tar archive"},
		{"missing input", filepath.Join(t.TempDir(), "nope.tar"), filepath.Join(t.TempDir(), "c"), "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := convert(options{rootfs: tc.rootfs, out: tc.out, tag: "x", os: "linux", arch: "amd64"})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
			if tc.out != existing {
				if _, err := os.Stat(tc.out); err == nil {
					t.Errorf("%s was created despite the error", tc.out)
				}
			}
		})
	}
}
