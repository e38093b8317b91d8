package registry

import (
	"fmt"
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/apperr"
)

func TestParseRoute(t *testing.T) {
	dig := "sha256:" + strings.Repeat("a", 64)
	tests := []struct {
		name   string
		path   string
		want   route
		detail string // expected error detail; "" means success
	}{
		{"base", "/v2/", route{Kind: routeBase}, ""},
		{"base without slash", "/v2", route{Kind: routeBase}, ""},
		{"catalog", "/v2/_catalog", route{Kind: routeCatalog}, ""},
		{"tags", "/v2/p/app/tags/list", route{Kind: routeTags, Name: "p/app", Project: "p"}, ""},
		{"manifest by tag", "/v2/p/a/b/manifests/latest", route{Kind: routeManifest, Name: "p/a/b", Project: "p", Arg: "latest"}, ""},
		{"manifest by digest", "/v2/p/a/manifests/" + dig, route{Kind: routeManifest, Name: "p/a", Project: "p", Arg: dig}, ""},
		{"blob", "/v2/p/a/blobs/" + dig, route{Kind: routeBlob, Name: "p/a", Project: "p", Arg: dig}, ""},
		{"uploads", "/v2/p/a/blobs/uploads/", route{Kind: routeUploads, Name: "p/a", Project: "p"}, ""},
		{"uploads without slash", "/v2/p/a/blobs/uploads", route{Kind: routeUploads, Name: "p/a", Project: "p"}, ""},
		{"upload session", "/v2/p/a/blobs/uploads/abc.def", route{Kind: routeUpload, Name: "p/a", Project: "p", Arg: "abc.def"}, ""},
		{"referrers", "/v2/p/a/referrers/" + dig, route{Kind: routeReferrers, Name: "p/a", Project: "p", Arg: dig}, ""},
		// Names may contain the endpoint words; the tail decides.
		{"name containing blobs", "/v2/p/blobs/manifests/x", route{Kind: routeManifest, Name: "p/blobs", Project: "p", Arg: "x"}, ""},
		{"name containing uploads", "/v2/p/blobs/uploads/blobs/uploads/", route{Kind: routeUploads, Name: "p/blobs/uploads", Project: "p"}, ""},
		{"name containing tags", "/v2/tags/list/tags/list", route{Kind: routeTags, Name: "tags/list", Project: "tags"}, ""},
		{"name containing manifests", "/v2/p/manifests/blobs/" + dig, route{Kind: routeBlob, Name: "p/manifests", Project: "p", Arg: dig}, ""},
		{"single component name", "/v2/app/tags/list", route{}, codeNameInvalid},
		{"uppercase name", "/v2/p/App/manifests/latest", route{}, codeNameInvalid},
		{"empty name component", "/v2/p//a/tags/list", route{}, codeNameInvalid},
		{"no name", "/v2/tags/list", route{}, codeNotFound},
		{"unknown endpoint", "/v2/p/a/things/x", route{}, codeNotFound},
		{"empty manifest reference", "/v2/p/a/manifests/", route{}, codeNotFound},
		{"not under v2", "/v1/p/a/tags/list", route{}, codeNotFound},
		{"tags without list", "/v2/p/a/tags/", route{}, codeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRoute(tt.path)
			if tt.detail != "" {
				if apperr.Detail(err) != tt.detail {
					t.Fatalf("parseRoute(%q) = %+v, %v; want detail %s", tt.path, got, err, tt.detail)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseRoute(%q): %v", tt.path, err)
			}
			if got != tt.want {
				t.Errorf("parseRoute(%q) = %+v, want %+v", tt.path, got, tt.want)
			}
		})
	}
}

// routePath rebuilds the path of a parsed route.
func routePath(r route) string {
	switch r.Kind {
	case routeBase:
		return "/v2/"
	case routeCatalog:
		return "/v2/_catalog"
	case routeTags:
		return "/v2/" + r.Name + "/tags/list"
	case routeManifest:
		return "/v2/" + r.Name + "/manifests/" + r.Arg
	case routeBlob:
		return "/v2/" + r.Name + "/blobs/" + r.Arg
	case routeUploads:
		return "/v2/" + r.Name + "/blobs/uploads/"
	case routeUpload:
		return "/v2/" + r.Name + "/blobs/uploads/" + r.Arg
	case routeReferrers:
		return "/v2/" + r.Name + "/referrers/" + r.Arg
	}
	panic(fmt.Sprintf("unknown route kind %d", r.Kind))
}

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{
		"/v2/", "/v2/_catalog", "/v2/p/a/tags/list", "/v2/p/a/manifests/latest",
		"/v2/p/a/blobs/sha256:" + strings.Repeat("0", 64), "/v2/p/a/blobs/uploads/", "/v2/p/a/blobs/uploads/x.y",
		"/v2/p/blobs/uploads/blobs/uploads/z", "/v2/a/referrers/sha256:1", "/v2//", "/v2/a//b/tags/list",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		r, err := parseRoute(path)
		if err != nil {
			if apperr.Code(err) != apperr.ENOTFOUND && apperr.Detail(err) != codeNameInvalid {
				t.Fatalf("parseRoute(%q): unexpected error %v", path, err)
			}
			return
		}
		if r.Kind == routeBase || r.Kind == routeCatalog {
			return
		}
		if len(r.Name) > maxNameLength {
			t.Fatalf("accepted a name of %d bytes", len(r.Name))
		}
		if p, err := validateName(r.Name); err != nil || p != r.Project {
			t.Fatalf("route name %q does not validate (%v) or project %q != %q", r.Name, err, r.Project, p)
		}
		if strings.Contains(r.Arg, "/") {
			t.Fatalf("argument %q contains a slash", r.Arg)
		}
		again, err := parseRoute(routePath(r))
		if err != nil || again != r {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", path, again, err, r)
		}
	})
}
