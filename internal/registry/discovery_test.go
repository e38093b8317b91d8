package registry

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/customs-dev/customs/internal/store"
)

func TestTagsList(t *testing.T) {
	e := newEnv(t)
	im := e.pushImage("p/a", "", "tags", nil)
	for _, tag := range []string{"b", "a", "c", "B", "d"} {
		e.expect(e.pushManifest("p/a", tag, mtOCIManifest, im.manifest), 201, "")
	}
	tests := []struct {
		name   string
		repo   string
		user   string
		query  string
		status int
		code   string
		tags   []string
		link   string
	}{
		{name: "all", query: "", status: 200, tags: []string{"B", "a", "b", "c", "d"}},
		{name: "first page", query: "?n=2", status: 200, tags: []string{"B", "a"}, link: `</v2/p/a/tags/list?last=a&n=2>; rel="next"`},
		{name: "middle page", query: "?n=2&last=a", status: 200, tags: []string{"b", "c"}, link: `</v2/p/a/tags/list?last=c&n=2>; rel="next"`},
		{name: "last page exactly full", query: "?n=1&last=c", status: 200, tags: []string{"d"}},
		{name: "past the end", query: "?n=2&last=d", status: 200, tags: []string{}},
		{name: "last without n", query: "?last=b", status: 200, tags: []string{"c", "d"}},
		{name: "n zero", query: "?n=0", status: 200, tags: []string{}},
		{name: "n larger than the list", query: "?n=100", status: 200, tags: []string{"B", "a", "b", "c", "d"}},
		{name: "negative n", query: "?n=-1", status: 400, code: codePaginationInvalid},
		{name: "non-numeric n", query: "?n=x", status: 400, code: codePaginationInvalid},
		{name: "unknown repository", repo: "p/none", status: 404, code: codeNameUnknown},
		{name: "anonymous", user: "-", status: 401, code: codeUnauthorized},
		{name: "denied", user: "bob", status: 403, code: codeDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo, user := tt.repo, tt.user
			if repo == "" {
				repo = "p/a"
			}
			switch user {
			case "":
				user = "admin"
			case "-":
				user = ""
			}
			r := e.do(req{method: "GET", path: "/v2/" + repo + "/tags/list" + tt.query, user: user})
			e.expect(r, tt.status, tt.code)
			if tt.status != 200 {
				return
			}
			var got tagList
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			if got.Name != repo || got.Tags == nil || strings.Join(got.Tags, ",") != strings.Join(tt.tags, ",") {
				t.Errorf("got %s, want tags %q", r.body, tt.tags)
			}
			if link := r.Header.Get("Link"); link != tt.link {
				t.Errorf("Link = %q, want %q", link, tt.link)
			}
		})
	}
}

// smallPages is a store whose Repositories answers at most two names a
// page, so that the catalog's batching is exercised across pages.
type smallPages struct{ Metadata }

func (s smallPages) Repositories(ctx context.Context, project string, page store.Page) ([]string, error) {
	page.N = min(page.N, 2)
	return s.Metadata.Repositories(ctx, project, page)
}

func TestCatalog(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Store = smallPages{o.Store} })
	for _, repo := range []string{"p/a", "p/bob-1", "p/bob-2", "p/z", "pub/lib"} {
		e.pushBlob(repo, []byte("x"))
	}
	tests := []struct {
		name   string
		user   string
		query  string
		status int
		code   string
		repos  []string
		link   string
	}{
		{name: "admin sees all", user: "admin", status: 200, repos: []string{"p/a", "p/bob-1", "p/bob-2", "p/z", "pub/lib"}},
		{name: "bob sees what he may pull", user: "bob", status: 200, repos: []string{"p/bob-1", "p/bob-2", "pub/lib"}},
		{name: "bob paginated", user: "bob", query: "?n=2", status: 200, repos: []string{"p/bob-1", "p/bob-2"},
			link: `</v2/_catalog?last=p%2Fbob-2&n=2>; rel="next"`},
		{name: "bob next page", user: "bob", query: "?n=2&last=p/bob-2", status: 200, repos: []string{"pub/lib"}},
		{name: "admin page", user: "admin", query: "?n=3&last=p/a", status: 200, repos: []string{"p/bob-1", "p/bob-2", "p/z"},
			link: `</v2/_catalog?last=p%2Fz&n=3>; rel="next"`},
		{name: "n zero", user: "admin", query: "?n=0", status: 200, repos: []string{}},
		{name: "bad n", user: "admin", query: "?n=two", status: 400, code: codePaginationInvalid},
		{name: "anonymous", user: "", status: 401, code: codeUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(req{method: "GET", path: "/v2/_catalog" + tt.query, user: tt.user})
			e.expect(r, tt.status, tt.code)
			if tt.status == 401 && !strings.Contains(r.Header.Get("WWW-Authenticate"), `scope="registry:catalog:*"`) {
				t.Errorf("challenge %q", r.Header.Get("WWW-Authenticate"))
			}
			if tt.status != 200 {
				return
			}
			var got catalog
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			if got.Repositories == nil || strings.Join(got.Repositories, ",") != strings.Join(tt.repos, ",") {
				t.Errorf("got %s, want %q", r.body, tt.repos)
			}
			if link := r.Header.Get("Link"); link != tt.link {
				t.Errorf("Link = %q, want %q", link, tt.link)
			}
		})
	}
}

func TestReferrers(t *testing.T) {
	e := newEnv(t)
	subject := e.pushImage("p/a", "v1", "subject", nil)
	subjDesc := desc(mtOCIManifest, subject.digest, int64(len(subject.manifest)))
	sbom := e.pushImage("p/a", "", "sbom", map[string]any{"artifactType": "application/spdx+json", "subject": subjDesc,
		"annotations": map[string]string{"org.example": "sbom"}})
	sig := e.pushImage("p/a", "", "sig", map[string]any{"subject": subjDesc}) // artifactType falls back to the config's
	// A referrer whose subject was never pushed is accepted.
	ghost := digest.FromString("ghost")
	orphan := e.pushImage("p/a", "", "orphan", map[string]any{"subject": desc(mtOCIManifest, ghost, 1)})
	// An index referrer without artifactType.
	idx := jsonOf(t, map[string]any{"schemaVersion": 2, "mediaType": mtOCIIndex, "manifests": []any{}, "subject": subjDesc})
	r := e.pushManifest("p/a", digest.FromBytes(idx).String(), mtOCIIndex, idx)
	e.expect(r, 201, "")
	if r.Header.Get("OCI-Subject") != subject.digest.String() {
		t.Errorf("OCI-Subject = %q", r.Header.Get("OCI-Subject"))
	}
	tests := []struct {
		name     string
		repo     string
		subject  string
		query    string
		user     string
		status   int
		code     string
		want     map[digest.Digest]string // digest -> artifactType
		filtered bool
	}{
		{name: "all", subject: subject.digest.String(), status: 200, want: map[digest.Digest]string{
			sbom.digest: "application/spdx+json", sig.digest: mtOCIConfig, digest.FromBytes(idx): ""}},
		{name: "filtered", subject: subject.digest.String(), query: "?artifactType=application/spdx%2Bjson", status: 200,
			want: map[digest.Digest]string{sbom.digest: "application/spdx+json"}, filtered: true},
		{name: "filter matching nothing", subject: subject.digest.String(), query: "?artifactType=x/y", status: 200,
			want: map[digest.Digest]string{}, filtered: true},
		{name: "missing subject", subject: ghost.String(), status: 200, want: map[digest.Digest]string{orphan.digest: mtOCIConfig}},
		{name: "no referrers", subject: digest.FromString("none").String(), status: 200, want: map[digest.Digest]string{}},
		{name: "unknown repository", repo: "p/none", subject: subject.digest.String(), status: 200, want: map[digest.Digest]string{}},
		{name: "invalid digest", subject: "sha256:nope", status: 400, code: codeDigestInvalid},
		{name: "denied", subject: subject.digest.String(), user: "bob", status: 403, code: codeDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo, user := tt.repo, tt.user
			if repo == "" {
				repo = "p/a"
			}
			if user == "" {
				user = "admin"
			}
			r := e.do(req{method: "GET", path: "/v2/" + repo + "/referrers/" + tt.subject + tt.query, user: user})
			e.expect(r, tt.status, tt.code)
			if tt.status != 200 {
				return
			}
			if r.Header.Get("Content-Type") != mtOCIIndex {
				t.Errorf("Content-Type = %q", r.Header.Get("Content-Type"))
			}
			if got := r.Header.Get("OCI-Filters-Applied"); (got == "artifactType") != tt.filtered {
				t.Errorf("OCI-Filters-Applied = %q", got)
			}
			var index v1.Index
			if err := json.Unmarshal(r.body, &index); err != nil {
				t.Fatal(err)
			}
			if index.SchemaVersion != 2 || index.MediaType != mtOCIIndex || index.Manifests == nil {
				t.Errorf("not an index: %s", r.body)
			}
			if len(index.Manifests) != len(tt.want) {
				t.Fatalf("got %d referrers, want %d: %s", len(index.Manifests), len(tt.want), r.body)
			}
			for _, m := range index.Manifests {
				at, ok := tt.want[m.Digest]
				if !ok || m.ArtifactType != at || m.Size <= 0 || m.MediaType == "" {
					t.Errorf("unexpected descriptor %+v", m)
				}
				if m.Digest == sbom.digest && m.Annotations["org.example"] != "sbom" {
					t.Errorf("annotations not copied: %+v", m)
				}
			}
			if strings.Contains(string(r.body), `"artifactType":""`) {
				t.Errorf("empty artifactType not omitted: %s", r.body)
			}
		})
	}
}

func TestRoutingErrors(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		method string
		path   string
		status int
		code   string
		allow  string
	}{
		{"unknown endpoint", "GET", "/v2/p/a/nothing/here", 404, codeNotFound, ""},
		{"single component name", "GET", "/v2/app/tags/list", 400, codeNameInvalid, ""},
		{"name too long", "GET", "/v2/p/" + strings.Repeat("a", 300) + "/tags/list", 400, codeNameInvalid, ""},
		{"put on tags", "PUT", "/v2/p/a/tags/list", 405, codeUnsupported, "GET"},
		{"post on manifest", "POST", "/v2/p/a/manifests/v1", 405, codeUnsupported, "GET, HEAD, PUT, DELETE"},
		{"delete on catalog", "DELETE", "/v2/_catalog", 405, codeUnsupported, "GET"},
		{"get on uploads", "GET", "/v2/p/a/blobs/uploads/", 405, codeUnsupported, "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(req{method: tt.method, path: tt.path, user: "admin"})
			e.expect(r, tt.status, tt.code)
			if r.Header.Get("Allow") != tt.allow {
				t.Errorf("Allow = %q, want %q", r.Header.Get("Allow"), tt.allow)
			}
		})
	}
	// Bad credentials are refused before anything else.
	r := e.do(req{method: "GET", path: "/v2/pub/lib/tags/list", header: map[string]string{"Authorization": "Basic Ym9iOndyb25n"}})
	e.expect(r, http.StatusUnauthorized, codeUnauthorized)
	if !strings.Contains(r.Header.Get("WWW-Authenticate"), `scope="repository:pub/lib:pull"`) {
		t.Errorf("challenge %q", r.Header.Get("WWW-Authenticate"))
	}
}
