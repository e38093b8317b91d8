package e2e_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	"github.com/customs-dev/customs/test/e2e/harness"
)

// TestSkopeo copies a real Debian image from an OCI layout into customs and
// back with skopeo, and requires the round trip to be byte-identical.
func TestSkopeo(t *testing.T) {
	t.Parallel()
	harness.Tool(t, "skopeo") // skip (or fail) before starting a server
	src := harness.Image(t, debianImage)
	srcDigest, srcManifest := layoutManifest(t, src)

	srv := harness.Start(t)
	srv.CreateProject(t, "library", false)
	c := harness.NewClient(t)
	ref := "docker://" + srv.Addr + "/library/debian:bookworm"

	c.MustInput(t, srv.Password+"\n", "skopeo", "login", "--tls-verify=false", "--username", srv.Username, "--password-stdin", srv.Addr)
	c.Must(t, "skopeo", "--insecure-policy", "copy", "--preserve-digests", "--dest-tls-verify=false",
		"oci:"+src+":bookworm", ref)

	t.Run("inspect", func(t *testing.T) {
		var info struct {
			Digest       string
			Architecture string
			Os           string
			Layers       []string
		}
		out := c.Must(t, "skopeo", "inspect", "--tls-verify=false", ref)
		if err := json.Unmarshal([]byte(out), &info); err != nil {
			t.Fatalf("skopeo inspect output: %v\n%s", err, out)
		}
		if info.Digest != srcDigest {
			t.Errorf("inspect digest %s, pushed %s", info.Digest, srcDigest)
		}
		if info.Os != "linux" || info.Architecture == "" {
			t.Errorf("inspect platform %s/%s, want linux/<arch>", info.Os, info.Architecture)
		}
		if want := manifestLayers(t, srcManifest); !slices.Equal(info.Layers, want) {
			t.Errorf("inspect layers %v, want %v", info.Layers, want)
		}
		raw := c.Must(t, "skopeo", "inspect", "--raw", "--tls-verify=false", ref)
		if !bytes.Equal([]byte(raw), srcManifest) {
			t.Errorf("inspect --raw returned a manifest different from the one pushed:\n%s\nwant:\n%s", raw, srcManifest)
		}
	})

	t.Run("list-tags", func(t *testing.T) {
		var tags struct {
			Repository string
			Tags       []string
		}
		out := c.Must(t, "skopeo", "list-tags", "--tls-verify=false", "docker://"+srv.Addr+"/library/debian")
		if err := json.Unmarshal([]byte(out), &tags); err != nil {
			t.Fatalf("skopeo list-tags output: %v\n%s", err, out)
		}
		if !slices.Equal(tags.Tags, []string{"bookworm"}) {
			t.Errorf("tags %v, want [bookworm]", tags.Tags)
		}
	})

	t.Run("copy back byte-identical", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "out")
		c.Must(t, "skopeo", "--insecure-policy", "copy", "--preserve-digests", "--src-tls-verify=false",
			ref, "oci:"+dst+":bookworm")
		gotDigest, gotManifest := layoutManifest(t, dst)
		if gotDigest != srcDigest || !bytes.Equal(gotManifest, srcManifest) {
			t.Errorf("copied back manifest %s, pushed %s", gotDigest, srcDigest)
		}
		sameBlobs(t, src, dst)
	})
}
