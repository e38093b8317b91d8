package admission

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/customs-dev/customs/internal/policy"
)

// TestRegistryResolver: customs' hosts resolve through the store (a
// missing tag noted, not an error); outside images resolve by a HEAD to a
// real registry only when Remote is on, and an unreachable registry leaves
// the digest unknown with a note.
func TestRegistryResolver(t *testing.T) {
	reg := httptest.NewServer(registry.New())
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(host+"/team/app:v1", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()

	parse := func(s string) policy.Image {
		i, err := policy.ParseImage(s)
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	r := &RegistryResolver{Store: newTagMap(), Hosts: []string{"Registry.Local:5000"}, RemoteTimeout: 2 * time.Second}
	ctx := context.Background()
	for _, tc := range []struct {
		name, ref string
		remote    bool
		want      Resolution
		note      string
	}{
		{"customs tag", "registry.local:5000/kuard/kuard-clean:1", false, Resolution{InCustoms: true, Project: "kuard", Digest: cleanDigest}, ""},
		{"customs no tag means latest", "registry.local:5000/kuard/kuard-clean", false, Resolution{InCustoms: true, Project: "kuard", Digest: cleanDigest}, ""},
		{"customs missing tag", "registry.local:5000/kuard/kuard-clean:2", false, Resolution{InCustoms: true, Project: "kuard"}, `customs has no tag "2"`},
		{"customs digest as written", "registry.local:5000/kuard/x@" + remoteDigest, false, Resolution{InCustoms: true, Project: "kuard", Digest: remoteDigest}, ""},
		{"outside, remote off", host + "/team/app:v1", false, Resolution{}, "resolveExternal is off"},
		{"outside, remote on", host + "/team/app:v1", true, Resolution{Digest: want.String()}, ""},
		{"outside, unknown tag", host + "/team/app:v9", true, Resolution{}, "did not resolve"},
		{"outside, unreachable", "127.0.0.1:1/team/app:v1", true, Resolution{}, "did not resolve"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.Remote = tc.remote
			got, err := r.Resolve(ctx, parse(tc.ref))
			if err != nil {
				t.Fatal(err)
			}
			note := got.Note
			got.Note = ""
			if got != tc.want || !strings.Contains(note, tc.note) || (tc.note == "" && note != "") {
				t.Errorf("got %+v (note %q), want %+v (note with %q)", got, note, tc.want, tc.note)
			}
		})
	}
}
