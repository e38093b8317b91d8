package pulldoor_test

import (
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/pulldoor"
	"github.com/customs-dev/customs/internal/registry"
	"github.com/customs-dev/customs/internal/store"
)

// FuzzInput: whatever host, repository and reference a request carries,
// Input either builds an input naming that repository or fails with
// EINVALID; it never panics.
func FuzzInput(f *testing.F) {
	for _, s := range [][3]string{
		{"registry.example:5000", "kuard/kuard-amd64", "blue"},
		{"", "library/nginx", "sha256:" + digest.FromString("x").Encoded()},
		{"LOCALHOST", "a/b", "latest"},
		{"h", "a//b", "t"},
		{"h", "a/b", "sha256:zz"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, host, repo, ref string) {
		in, err := pulldoor.Input(registry.Pull{Host: host, Repository: repo, Reference: ref,
			Manifest: &store.Manifest{Repository: repo, Digest: digest.FromString(repo + ref)}})
		if err != nil {
			if apperr.Code(err) != apperr.EINVALID {
				t.Fatalf("Input(%q, %q, %q): %v, want EINVALID", host, repo, ref, err)
			}
			return
		}
		if in.Image.Repository == "" || in.Digest == "" {
			t.Fatalf("Input(%q, %q, %q) = %+v", host, repo, ref, in)
		}
	})
}
