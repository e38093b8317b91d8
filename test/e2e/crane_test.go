package e2e_test

import (
	"bytes"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/customs-dev/customs/test/e2e/harness"
)

// TestCrane pushes, pulls, lists, resolves, copies (with cross-repository
// mounts) and deletes an image with crane.
func TestCrane(t *testing.T) {
	t.Parallel()
	harness.Tool(t, "crane") // skip (or fail) before starting a server
	src := harness.Image(t, debianImage)
	srcDigest, srcManifest := layoutManifest(t, src)

	srv := harness.Start(t)
	srv.CreateProject(t, "library", false)
	c := harness.NewClient(t)
	repo := srv.Addr + "/library/crane"
	copyRepo := srv.Addr + "/library/crane-copy"

	c.MustInput(t, srv.Password, "crane", "auth", "login", srv.Addr, "-u", srv.Username, "--password-stdin")
	out := c.Must(t, "crane", "push", "--insecure", src, repo+":v1")
	if want := repo + "@" + srcDigest; strings.TrimSpace(out) != want {
		t.Fatalf("crane push printed %q, want %q", out, want)
	}

	t.Run("digest", func(t *testing.T) {
		if got := strings.TrimSpace(c.Must(t, "crane", "digest", "--insecure", repo+":v1")); got != srcDigest {
			t.Errorf("digest %s, pushed %s", got, srcDigest)
		}
	})
	t.Run("manifest", func(t *testing.T) {
		got := c.Must(t, "crane", "manifest", "--insecure", repo+"@"+srcDigest)
		if !bytes.Equal([]byte(got), srcManifest) {
			t.Errorf("manifest by digest differs from the one pushed:\n%s", got)
		}
	})
	t.Run("ls", func(t *testing.T) {
		if got := strings.Fields(c.Must(t, "crane", "ls", "--insecure", repo)); !slices.Equal(got, []string{"v1"}) {
			t.Errorf("tags %v, want [v1]", got)
		}
	})
	t.Run("pull", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "pulled")
		c.Must(t, "crane", "pull", "--insecure", "--format=oci", repo+":v1", dst)
		if got, _ := layoutManifest(t, dst); got != srcDigest {
			t.Errorf("pulled manifest %s, pushed %s", got, srcDigest)
		}
		sameBlobs(t, src, dst)
	})

	// Copying within the registry mounts every blob from the source
	// repository instead of uploading it again.
	t.Run("copy mounts blobs", func(t *testing.T) {
		r := c.Run(t, "crane", "copy", "--insecure", "-v", repo+":v1", copyRepo+":v1")
		if r.Err != nil {
			t.Fatalf("crane copy failed:\n%s", r)
		}
		mounted := map[string]bool{}
		for _, m := range regexp.MustCompile(`mounted blob: (sha256:[0-9a-f]{64})`).FindAllStringSubmatch(r.Stderr, -1) {
			mounted[m[1]] = true
		}
		var want []string
		for d := range layoutBlobs(t, src) {
			if d != srcDigest {
				want = append(want, d)
			}
		}
		for _, d := range want {
			if !mounted[d] {
				t.Errorf("blob %s was not mounted from library/crane (mounted: %v)", d, mounted)
			}
		}
		if got := strings.TrimSpace(c.Must(t, "crane", "digest", "--insecure", copyRepo+":v1")); got != srcDigest {
			t.Errorf("copy digest %s, want %s", got, srcDigest)
		}
		cat := strings.Fields(c.Must(t, "crane", "catalog", "--insecure", srv.Addr))
		for _, name := range []string{"library/crane", "library/crane-copy"} {
			if !slices.Contains(cat, name) {
				t.Errorf("catalog %v lacks %s", cat, name)
			}
		}
	})

	// Deleting the copy's manifest removes it (and its tag) from that
	// repository only.
	t.Run("delete", func(t *testing.T) {
		c.Must(t, "crane", "delete", "--insecure", copyRepo+"@"+srcDigest)
		for _, ref := range []string{copyRepo + "@" + srcDigest, copyRepo + ":v1"} {
			r := c.Run(t, "crane", "digest", "--insecure", ref)
			if r.Err == nil {
				t.Errorf("%s still resolves after delete:\n%s", ref, r)
			} else if !strings.Contains(r.Stderr, "MANIFEST_UNKNOWN") && !strings.Contains(r.Stderr, "404") {
				t.Errorf("%s after delete: want MANIFEST_UNKNOWN/404:\n%s", ref, r)
			}
		}
		if got := strings.TrimSpace(c.Must(t, "crane", "digest", "--insecure", repo+":v1")); got != srcDigest {
			t.Errorf("original %s:v1 resolves to %s after deleting the copy, want %s", repo, got, srcDigest)
		}
	})
}
