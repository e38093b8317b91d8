package e2e_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/customs-dev/customs/test/e2e/harness"
)

const (
	bundleType    = "application/vnd.customs.test.bundle.v1"
	signatureType = "application/vnd.customs.test.signature.v1"
	sbomType      = "application/vnd.customs.test.sbom.v1"
)

// orasDescriptor is the part of oras' --format json output the test reads.
type orasDescriptor struct {
	Digest       string           `json:"digest"`
	MediaType    string           `json:"mediaType"`
	ArtifactType string           `json:"artifactType"`
	Referrers    []orasDescriptor `json:"referrers"`
}

// TestOras pushes an artifact with oras, attaches referrers to it through
// the referrers API, discovers them (with and without an artifactType
// filter) and pulls the artifact back.
func TestOras(t *testing.T) {
	t.Parallel()
	harness.Tool(t, "oras") // skip (or fail) before starting a server
	srv := harness.Start(t)
	srv.CreateProject(t, "artifacts", false)
	c := harness.NewClient(t)
	c.Dir = t.TempDir()
	ref := srv.Addr + "/artifacts/bundle:v1"

	// files are pushed as the artifact's layers; the others are referrers.
	files := map[string][]byte{"readme.txt": []byte("customs end-to-end test artifact\n"), "data.bin": make([]byte, 1<<20)}
	if _, err := rand.Read(files["data.bin"]); err != nil {
		t.Fatal(err)
	}
	all := map[string][]byte{"sig.txt": []byte("not really a signature\n"), "sbom.json": []byte(`{"packages":[]}`)}
	maps.Copy(all, files)
	for name, body := range all {
		if err := os.WriteFile(filepath.Join(c.Dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	c.MustInput(t, srv.Password, "oras", "login", "--plain-http", "-u", srv.Username, "--password-stdin", srv.Addr)
	var pushed orasDescriptor
	decode(t, c.Must(t, "oras", "push", "--plain-http", "--format", "json", "--artifact-type", bundleType,
		ref, "readme.txt:text/plain", "data.bin:application/octet-stream"), &pushed)
	if pushed.ArtifactType != bundleType || pushed.Digest == "" {
		t.Fatalf("oras push returned %+v, want artifactType %s and a digest", pushed, bundleType)
	}

	// Referrers attached and found through the referrers API only (no
	// fallback tag schema).
	var sig, sbom orasDescriptor
	decode(t, c.Must(t, "oras", "attach", "--plain-http", "--format", "json", "--distribution-spec", "v1.1-referrers-api",
		"--artifact-type", signatureType, ref, "sig.txt:text/plain"), &sig)
	decode(t, c.Must(t, "oras", "attach", "--plain-http", "--format", "json", "--distribution-spec", "v1.1-referrers-api",
		"--artifact-type", sbomType, ref, "sbom.json:application/json"), &sbom)

	t.Run("discover", func(t *testing.T) {
		var root orasDescriptor
		decode(t, c.Must(t, "oras", "discover", "--plain-http", "--format", "json", "--distribution-spec", "v1.1-referrers-api", ref), &root)
		if root.Digest != pushed.Digest {
			t.Errorf("discover subject %s, pushed %s", root.Digest, pushed.Digest)
		}
		got := map[string]string{}
		for _, r := range root.Referrers {
			got[r.Digest] = r.ArtifactType
		}
		want := map[string]string{sig.Digest: signatureType, sbom.Digest: sbomType}
		if len(got) != len(want) || got[sig.Digest] != signatureType || got[sbom.Digest] != sbomType {
			t.Errorf("referrers %v, want %v", got, want)
		}
	})
	t.Run("discover filtered by artifactType", func(t *testing.T) {
		var root orasDescriptor
		decode(t, c.Must(t, "oras", "discover", "--plain-http", "--format", "json", "--distribution-spec", "v1.1-referrers-api",
			"--artifact-type", signatureType, ref), &root)
		var got []string
		for _, r := range root.Referrers {
			got = append(got, r.Digest)
		}
		if !slices.Equal(got, []string{sig.Digest}) {
			t.Errorf("referrers of type %s: %v, want [%s]", signatureType, got, sig.Digest)
		}
	})
	t.Run("pull", func(t *testing.T) {
		out := t.TempDir()
		c.Must(t, "oras", "pull", "--plain-http", "-o", out, ref)
		for name, want := range files {
			got, err := os.ReadFile(filepath.Join(out, name))
			if err != nil {
				t.Errorf("pulled artifact lacks %s: %v", name, err)
				continue
			}
			if !bytes.Equal(got, want) {
				t.Errorf("pulled %s differs from the pushed file (%d bytes, want %d)", name, len(got), len(want))
			}
		}
	})
}

func decode(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
}
