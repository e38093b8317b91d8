package scancli_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/customs-dev/customs/test/e2e/harness"
)

// TestScanRegistry pushes the Alpine image to a private project of a real
// customs server and scans it by tag and by digest: refused without
// credentials, then with those of `customs login`, then with those of the
// Docker config.
func TestScanRegistry(t *testing.T) {
	t.Parallel()
	srv := harness.StartCustoms(t)
	srv.CreateProject(t, "private", false)
	img := imageOf(t, alpineFiles("1.1.20-r4"), "amd64")
	ref, err := name.ParseReference(srv.Addr+"/private/alpine:3.9", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: srv.Username, Password: srv.Password})); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, _ := img.Digest()
	byTag := srv.Addr + "/private/alpine:3.9"
	byDigest := srv.Addr + "/private/alpine@" + d.String()
	db := alpineDB(t)

	t.Run("anonymous", func(t *testing.T) {
		r := scan(t, harness.NewClient(t), "--vulndb", db, "--plain-http", byTag)
		wantExit(t, r, 2)
		if !strings.Contains(r.Stderr, "pulling "+byTag) || !strings.Contains(strings.ToUpper(r.Stderr), "UNAUTHORIZED") {
			t.Errorf("stderr:\n%s", r.Stderr)
		}
	})
	t.Run("customs login", func(t *testing.T) {
		c := harness.NewClient(t)
		login := c.RunInput(t, srv.Password+"\n", harness.CustomsBinary(t), "login", srv.URL(), "-u", srv.Username, "--password-stdin")
		if login.ExitCode != 0 {
			t.Fatalf("login:\n%s", login)
		}
		for _, target := range []string{byTag, byDigest} {
			r := scan(t, c, "--vulndb", db, "--plain-http", "--format", "json", "--fail-on", "unknown", target)
			wantExit(t, r, 1)
			rep := decodeReport(t, r)
			if got := findingKeys(rep); !slices.Equal(got, muslFindings) || rep.Digest != d.String() {
				t.Errorf("%s: findings %q, digest %s", target, got, rep.Digest)
			}
		}
	})
	t.Run("docker config", func(t *testing.T) {
		c := harness.NewClient(t)
		auth := base64.StdEncoding.EncodeToString([]byte(srv.Username + ":" + srv.Password))
		cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{srv.Addr: map[string]string{"auth": auth}}})
		if err := os.WriteFile(filepath.Join(c.Home, ".docker", "config.json"), cfg, 0o600); err != nil {
			t.Fatal(err)
		}
		r := scan(t, c, "--vulndb", db, "--plain-http", "--format", "json", byTag)
		wantExit(t, r, 0)
		if got := findingKeys(decodeReport(t, r)); !slices.Equal(got, muslFindings) {
			t.Errorf("findings %q", got)
		}
	})
	t.Run("no such tag", func(t *testing.T) {
		r := scan(t, harness.NewClient(t), "--vulndb", db, "--plain-http", srv.Addr+"/private/alpine:nope")
		wantExit(t, r, 2)
	})
}
