package e2e_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/customs-dev/customs/test/e2e/harness"
)

// unauthorized matches how clients report a 401 / rejected credentials.
var unauthorized = regexp.MustCompile(`(?i)\b401\b|unauthorized|authentication required|invalid username|incorrect username`)

// TestLogin logs in with each client: the administrator's password works,
// a wrong one is refused as unauthorized.
func TestLogin(t *testing.T) {
	t.Parallel()
	srv := harness.Start(t)
	srv.CreateProject(t, "library", false)

	tests := []struct {
		name string
		// login logs in with password and returns the result of the first
		// command that talks to the registry with it.
		login func(t *testing.T, c *harness.Client, password string) harness.Result
	}{
		{"skopeo", func(t *testing.T, c *harness.Client, pw string) harness.Result {
			return c.RunInput(t, pw, "skopeo", "login", "--tls-verify=false", "-u", srv.Username, "--password-stdin", srv.Addr)
		}},
		// podman as root keeps credentials in /run unless told otherwise;
		// --authfile keeps each client's in its own home.
		{"podman", func(t *testing.T, c *harness.Client, pw string) harness.Result {
			return c.RunInput(t, pw, "podman", "login", "--authfile", c.Home+"/auth.json", "--tls-verify=false",
				"-u", srv.Username, "--password-stdin", srv.Addr)
		}},
		{"oras", func(t *testing.T, c *harness.Client, pw string) harness.Result {
			return c.RunInput(t, pw, "oras", "login", "--plain-http", "-u", srv.Username, "--password-stdin", srv.Addr)
		}},
		{"regctl", func(t *testing.T, c *harness.Client, pw string) harness.Result {
			c.Must(t, "regctl", "registry", "set", "--tls", "disabled", "--skip-check", srv.Addr)
			return c.RunInput(t, pw, "regctl", "registry", "login", srv.Addr, "-u", srv.Username, "--pass-stdin")
		}},
		// crane auth login only stores credentials; the first request
		// that uses them is what must succeed or be refused.
		{"crane", func(t *testing.T, c *harness.Client, pw string) harness.Result {
			c.MustInput(t, pw, "crane", "auth", "login", srv.Addr, "-u", srv.Username, "--password-stdin")
			return c.Run(t, "crane", "catalog", "--insecure", srv.Addr)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			harness.Tool(t, tc.name)
			if r := tc.login(t, harness.NewClient(t), srv.Password); r.Err != nil {
				t.Errorf("login with the right password failed:\n%s", r)
			}
			r := tc.login(t, harness.NewClient(t), srv.Password+"-wrong")
			switch {
			case r.Err == nil:
				t.Errorf("login with a wrong password succeeded:\n%s", r)
			case !unauthorized.MatchString(r.Stdout + r.Stderr):
				t.Errorf("login with a wrong password failed, but not as unauthorized:\n%s", r)
			default:
				t.Logf("wrong password refused: %s", strings.TrimSpace(r.Stderr))
			}
		})
	}
}
