package registry

import (
	"net/http"
	"strings"

	"github.com/customs-dev/customs/internal/apperr"
)

// routeKind names an endpoint of the distribution API.
type routeKind int

// Endpoints.
const (
	routeBase      routeKind = iota + 1 // /v2/
	routeCatalog                        // /v2/_catalog
	routeTags                           // /v2/<name>/tags/list
	routeManifest                       // /v2/<name>/manifests/<reference>
	routeBlob                           // /v2/<name>/blobs/<digest>
	routeUploads                        // /v2/<name>/blobs/uploads/
	routeUpload                         // /v2/<name>/blobs/uploads/<session>
	routeReferrers                      // /v2/<name>/referrers/<digest>
)

// route is a parsed request path. Name is validated; Arg is the reference,
// digest or session as it appears in the path (validated by the handler).
type route struct {
	Kind    routeKind
	Name    string
	Project string
	Arg     string
}

// routeMethods lists the methods each endpoint serves, for 405 answers.
var routeMethods = map[routeKind][]string{
	routeBase:      {http.MethodGet, http.MethodHead},
	routeCatalog:   {http.MethodGet},
	routeTags:      {http.MethodGet},
	routeManifest:  {http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete},
	routeBlob:      {http.MethodGet, http.MethodHead, http.MethodDelete},
	routeUploads:   {http.MethodPost},
	routeUpload:    {http.MethodGet, http.MethodPatch, http.MethodPut, http.MethodDelete},
	routeReferrers: {http.MethodGet},
}

// parseRoute parses a URL path under /v2/. Repository names contain
// slashes, so the fixed tail of each endpoint is matched from the right and
// what precedes it is the name. It returns ENOTFOUND for paths that are no
// endpoint and EINVALID/NAME_INVALID for endpoints with a bad name.
func parseRoute(path string) (route, error) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		if path == "/v2" {
			return route{Kind: routeBase}, nil
		}
		return route{}, errNoRoute
	}
	switch rest {
	case "":
		return route{Kind: routeBase}, nil
	case "_catalog":
		return route{Kind: routeCatalog}, nil
	}
	seg := strings.Split(rest, "/")
	n := len(seg)
	at := func(i int) string { // i-th segment from the right, 1-based
		if i > n {
			return ""
		}
		return seg[n-i]
	}
	var r route
	var nameSegs int
	switch {
	case n >= 3 && at(2) == "tags" && at(1) == "list":
		r, nameSegs = route{Kind: routeTags}, n-2
	case n >= 3 && at(2) == "manifests" && at(1) != "":
		r, nameSegs = route{Kind: routeManifest, Arg: at(1)}, n-2
	case n >= 4 && at(3) == "blobs" && at(2) == "uploads":
		if at(1) == "" {
			r, nameSegs = route{Kind: routeUploads}, n-3
		} else {
			r, nameSegs = route{Kind: routeUpload, Arg: at(1)}, n-3
		}
	case n >= 3 && at(2) == "blobs" && at(1) == "uploads":
		r, nameSegs = route{Kind: routeUploads}, n-2
	case n >= 3 && at(2) == "blobs" && at(1) != "":
		r, nameSegs = route{Kind: routeBlob, Arg: at(1)}, n-2
	case n >= 3 && at(2) == "referrers" && at(1) != "":
		r, nameSegs = route{Kind: routeReferrers, Arg: at(1)}, n-2
	default:
		return route{}, errNoRoute
	}
	r.Name = strings.Join(seg[:nameSegs], "/")
	project, err := validateName(r.Name)
	if err != nil {
		return route{}, err
	}
	r.Project = project
	return r, nil
}

// errNoRoute answers paths that are no endpoint of the API.
var errNoRoute = apperr.Errorf(apperr.ENOTFOUND, "no such registry API endpoint").WithDetail(codeNotFound)
