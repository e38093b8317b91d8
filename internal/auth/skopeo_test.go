package auth

import (
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSkopeo runs containers/image's client (skopeo, the same code as
// podman) through login and an authenticated tags list against the token
// service. It is skipped where skopeo is not installed.
func TestSkopeo(t *testing.T) {
	bin, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo not installed")
	}
	f := newFixture(t)
	srv := httptest.NewServer(miniRegistry(f.svc))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	authfile := filepath.Join(t.TempDir(), "auth.json")
	skopeo := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	tests := []struct {
		name    string
		stdin   string
		args    []string
		wantErr bool
		want    string
	}{
		{"login", adminPW, []string{"login", "--authfile", authfile, "--tls-verify=false", "-u", "admin", "--password-stdin", host}, false, "Login Succeeded"},
		{"login wrong password", "nope", []string{"login", "--authfile", filepath.Join(t.TempDir(), "a.json"), "--tls-verify=false", "-u", "admin", "--password-stdin", host}, true, "invalid username/password"},
		{"login disabled user", bobPW, []string{"login", "--authfile", filepath.Join(t.TempDir(), "b.json"), "--tls-verify=false", "-u", "bob", "--password-stdin", host}, true, "invalid username/password"},
		{"list private with saved login", "", []string{"list-tags", "--authfile", authfile, "--tls-verify=false", "docker://" + host + "/priv/app"}, false, `"v1"`},
		{"list private with --creds", "", []string{"list-tags", "--creds", "admin:" + adminPW, "--tls-verify=false", "docker://" + host + "/priv/app"}, false, `"v1"`},
		{"list public anonymously", "", []string{"list-tags", "--no-creds", "--tls-verify=false", "docker://" + host + "/pub/app"}, false, `"v1"`},
		{"list private anonymously", "", []string{"list-tags", "--no-creds", "--tls-verify=false", "docker://" + host + "/priv/app"}, true, "unauthorized"},
		{"list private as user", "", []string{"list-tags", "--creds", "alice:" + alicePW, "--tls-verify=false", "docker://" + host + "/priv/app"}, true, "denied"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := skopeo(tc.stdin, tc.args...)
			if (err != nil) != tc.wantErr || !strings.Contains(out, tc.want) {
				t.Fatalf("skopeo %s: err %v, output:\n%s\nwant error=%v and output containing %q", strings.Join(tc.args, " "), err, out, tc.wantErr, tc.want)
			}
		})
	}
}
