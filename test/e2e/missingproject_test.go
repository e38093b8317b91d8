package e2e_test

import (
	"strings"
	"testing"

	"github.com/customs-dev/customs/test/e2e/harness"
)

// TestMissingProject pushes into a project that does not exist with skopeo
// and crane: each push fails, and the message the user sees says how to
// create the project; nothing is created.
func TestMissingProject(t *testing.T) {
	t.Parallel()
	srv := harness.StartCustoms(t)
	img := randomImage(t, 5, 64<<10)
	src := writeImageLayout(t, img, "v1")
	const want = "customs project create nosuch"

	tests := []struct {
		name string
		push func(t *testing.T, c *harness.Client) harness.Result
	}{
		{"skopeo copy", func(t *testing.T, c *harness.Client) harness.Result {
			c.MustInput(t, srv.Password+"\n", "skopeo", "login", "--tls-verify=false", "-u", srv.Username, "--password-stdin", srv.Addr)
			return c.Run(t, "skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false",
				"oci:"+src+":v1", "docker://"+srv.Addr+"/nosuch/skopeo:v1")
		}},
		{"crane push", func(t *testing.T, c *harness.Client) harness.Result {
			c.MustInput(t, srv.Password, "crane", "auth", "login", srv.Addr, "-u", srv.Username, "--password-stdin")
			return c.Run(t, "crane", "push", "--insecure", src, srv.Addr+"/nosuch/crane:v1")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.push(t, harness.NewClient(t))
			switch {
			case r.Err == nil:
				t.Fatalf("pushing into a missing project succeeded:\n%s", r)
			case !strings.Contains(r.Stdout+r.Stderr, want):
				t.Errorf("pushing into a missing project failed without saying %q:\n%s", want, r)
			default:
				t.Logf("refused: %s", strings.TrimSpace(r.Stderr))
			}
		})
	}

	// Nothing was created: the catalog is empty.
	if repos := newRegAPI(srv).catalog(t); len(repos) != 0 {
		t.Errorf("the failed pushes left repositories behind: %v", repos)
	}
}
