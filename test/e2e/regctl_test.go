package e2e_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/customs-dev/customs/test/e2e/harness"
)

// TestRegctl imports an image with regctl, lists tags, copies it into
// another project and reads the copy's manifest back.
func TestRegctl(t *testing.T) {
	t.Parallel()
	harness.Tool(t, "regctl") // skip (or fail) before starting a server
	src := harness.Image(t, debianImage)
	srcDigest, srcManifest := layoutManifest(t, src)

	srv := harness.Start(t)
	srv.CreateProject(t, "library", false)
	srv.CreateProject(t, "mirror", false)
	c := harness.NewClient(t)
	repo := srv.Addr + "/library/regctl"
	mirror := srv.Addr + "/mirror/debian"

	// --skip-check: the check pings the registry, which refuses anonymous
	// requests; the login below checks with the credentials.
	c.Must(t, "regctl", "registry", "set", "--tls", "disabled", "--skip-check", srv.Addr)
	c.MustInput(t, srv.Password, "regctl", "registry", "login", srv.Addr, "-u", srv.Username, "--pass-stdin")
	c.Must(t, "regctl", "image", "copy", "ocidir://"+src+":bookworm", repo+":bookworm")

	t.Run("tag ls", func(t *testing.T) {
		if got := strings.Fields(c.Must(t, "regctl", "tag", "ls", repo)); !slices.Equal(got, []string{"bookworm"}) {
			t.Errorf("tags %v, want [bookworm]", got)
		}
	})
	t.Run("image copy to another project", func(t *testing.T) {
		c.Must(t, "regctl", "image", "copy", repo+":bookworm", mirror+":bookworm")
		if got := strings.TrimSpace(c.Must(t, "regctl", "image", "digest", mirror+":bookworm")); got != srcDigest {
			t.Errorf("copy digest %s, want %s", got, srcDigest)
		}
		if got := strings.Fields(c.Must(t, "regctl", "tag", "ls", mirror)); !slices.Equal(got, []string{"bookworm"}) {
			t.Errorf("tags of the copy %v, want [bookworm]", got)
		}
	})
	t.Run("manifest get", func(t *testing.T) {
		got := c.Must(t, "regctl", "manifest", "get", "--format", "raw-body", mirror+":bookworm")
		if !bytes.Equal([]byte(got), srcManifest) {
			t.Errorf("manifest of the copy differs from the one pushed:\n%s\nwant:\n%s", got, srcManifest)
		}
	})
}
