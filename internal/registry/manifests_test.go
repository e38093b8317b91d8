package registry

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

func TestManifestPushAndPull(t *testing.T) {
	e := newEnv(t)
	im := e.pushImage("p/a", "v1", "one", nil)
	tests := []struct {
		name   string
		method string
		ref    string
		user   string
		header map[string]string
		status int
		code   string
		body   []byte
	}{
		{name: "get by tag", method: "GET", ref: "v1", user: "admin", status: 200, body: im.manifest},
		{name: "get by digest", method: "GET", ref: im.digest.String(), user: "admin", status: 200, body: im.manifest},
		{name: "head by tag", method: "HEAD", ref: "v1", user: "admin", status: 200, body: []byte{}},
		{name: "conditional get", method: "GET", ref: "v1", user: "admin", header: map[string]string{"If-None-Match": `"` + im.digest.String() + `"`}, status: 304},
		{name: "unknown tag", method: "GET", ref: "v2", user: "admin", status: 404, code: codeManifestUnknown},
		{name: "unknown digest", method: "GET", ref: digest.FromString("x").String(), user: "admin", status: 404, code: codeManifestUnknown},
		{name: "unknown repository", method: "GET", ref: "v1", user: "admin", status: 404, code: codeManifestUnknown},
		{name: "bad digest", method: "GET", ref: "sha256:baddigeststring", user: "admin", status: 400, code: codeDigestInvalid},
		{name: "bad tag", method: "GET", ref: ".bad", user: "admin", status: 400, code: codeManifestInvalid},
		{name: "anonymous", method: "GET", ref: "v1", status: 401, code: codeUnauthorized},
		{name: "denied", method: "GET", ref: "v1", user: "bob", status: 403, code: codeDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := "p/a"
			if tt.name == "unknown repository" {
				repo = "p/nothing"
			}
			r := e.do(req{method: tt.method, path: "/v2/" + repo + "/manifests/" + tt.ref, user: tt.user, header: tt.header})
			e.expect(r, tt.status, tt.code)
			if tt.status != 200 {
				return
			}
			if !bytes.Equal(r.body, tt.body) {
				t.Errorf("body differs from what was pushed")
			}
			want := map[string]string{
				"Content-Type":          mtOCIManifest,
				"Docker-Content-Digest": im.digest.String(),
				"Content-Length":        strconv.Itoa(len(im.manifest)),
			}
			for k, v := range want {
				if got := r.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
	ev := e.events.list()
	if !slices.Contains(ev, "pushed admin p/a@"+im.digest.String()+" [v1]") || !slices.Contains(ev, "pulled admin p/a@"+im.digest.String()) {
		t.Errorf("events = %q", ev)
	}
	// GETs (a 304 too: the client uses its copy) are pulls; HEADs are not.
	if n := strings.Count(strings.Join(ev, "\n"), "pulled"); n != 3 {
		t.Errorf("%d pull events, want 3: %q", n, ev)
	}
}

// TestManifestBytesAsBlob: as with distribution, a repository serves its
// manifests' bytes from the blobs endpoint; other repositories do not.
func TestManifestBytesAsBlob(t *testing.T) {
	e := newEnv(t)
	im := e.pushImage("p/a", "v1", "one", nil)
	r := e.do(req{method: "GET", path: "/v2/p/a/blobs/" + im.digest.String(), user: "admin"})
	e.expect(r, 200, "")
	if !bytes.Equal(r.body, im.manifest) {
		t.Error("blob GET of the manifest digest returned other bytes")
	}
	e.pushImage("p/b", "v1", "two", nil)
	r = e.do(req{method: "GET", path: "/v2/p/b/blobs/" + im.digest.String(), user: "admin"})
	e.expect(r, 404, codeBlobUnknown)
}

func TestManifestPushResponses(t *testing.T) {
	e := newEnv(t)
	cfg := e.pushBlob("p/a", []byte(`{"c":1}`))
	body := imageManifest(t, cfg, 7, nil, map[string]any{"annotations": map[string]string{"k": "v"}})
	d := digest.FromBytes(body)

	r := e.pushManifest("p/a", "latest", mtOCIManifest, body)
	e.expect(r, 201, "")
	if r.Header.Get("Location") != "/v2/p/a/manifests/"+d.String() || r.Header.Get("Docker-Content-Digest") != d.String() {
		t.Errorf("headers %v", r.Header)
	}
	if r.Header.Get("OCI-Subject") != "" {
		t.Errorf("OCI-Subject on a manifest without subject")
	}
	m, err := e.db.Manifest(context.Background(), "p/a", d)
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != mtOCIManifest || m.ArtifactType != mtOCIConfig || m.Size != int64(len(body)) || m.Annotations["k"] != "v" {
		t.Errorf("stored %+v", m)
	}

	// by digest with tag parameters
	r = e.do(req{method: "PUT", path: "/v2/p/a/manifests/" + d.String() + "?tag=a&tag=b&tag=a", user: "admin",
		header: map[string]string{"Content-Type": mtOCIManifest}, body: body})
	e.expect(r, 201, "")
	if got := r.Header.Values("OCI-Tag"); strings.Join(got, ",") != "a, b" {
		t.Errorf("OCI-Tag = %q", got)
	}
	tags, _ := e.db.Tags(context.Background(), "p/a", store.Page{})
	if strings.Join(tags, ",") != "a,b,latest" {
		t.Errorf("tags = %q", tags)
	}

	// sha512 by digest
	d512 := digest.SHA512.FromBytes(body)
	r = e.pushManifest("p/a", d512.String(), mtOCIManifest, body)
	e.expect(r, 201, "")
	if r.Header.Get("Docker-Content-Digest") != d512.String() {
		t.Errorf("sha512 push answered %q", r.Header.Get("Docker-Content-Digest"))
	}
	g := e.do(req{method: "GET", path: "/v2/p/a/manifests/" + d512.String(), user: "admin"})
	e.expect(g, 200, "")
	if !bytes.Equal(g.body, body) {
		t.Error("sha512 manifest body differs")
	}
}

func TestManifestPushErrors(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxManifestBytes = 64 << 10 })
	cfg := e.pushBlob("p/a", []byte(`{"c":1}`))
	good := imageManifest(t, cfg, 7, nil, nil)
	missing := digest.FromString("missing layer")
	withMissing := imageManifest(t, cfg, 7, []map[string]any{desc(mtOCILayer, missing, 5)}, nil)
	missingCfg := imageManifest(t, digest.FromString("no config"), 7, nil, nil)
	huge := imageManifest(t, cfg, 7, nil, map[string]any{"annotations": map[string]string{"big": strings.Repeat("x", 70<<10)}})
	index := jsonOf(t, map[string]any{"schemaVersion": 2, "mediaType": mtOCIIndex, "manifests": []any{desc(mtOCIManifest, digest.FromString("child"), 3)}})
	schema1 := []byte(`{"schemaVersion":1,"name":"p/a","tag":"v1","fsLayers":[],"history":[],"signatures":[]}`)
	tests := []struct {
		name        string
		repo        string
		ref         string
		user        string
		contentType string
		query       string
		body        []byte
		status      int
		code        string
		msg         string
	}{
		{name: "schema 1", ref: "v1", contentType: "application/vnd.docker.distribution.manifest.v1+prettyjws", body: schema1, status: 400, code: codeManifestInvalid,
			msg: "Docker schema 1 manifests are not supported; push the image as a schema 2 or OCI manifest"},
		{name: "invalid JSON", ref: "v1", contentType: mtOCIManifest, body: []byte(`{"schemaVersion":`), status: 400, code: codeManifestInvalid},
		{name: "missing layer", ref: "v1", contentType: mtOCIManifest, body: withMissing, status: 400, code: codeManifestBlobUnknown},
		{name: "missing config", ref: "v1", contentType: mtOCIManifest, body: missingCfg, status: 400, code: codeManifestBlobUnknown},
		{name: "missing index child", ref: "v1", contentType: mtOCIIndex, body: index, status: 400, code: codeManifestBlobUnknown},
		{name: "oversized", ref: "v1", contentType: mtOCIManifest, body: huge, status: 413, code: codeManifestInvalid,
			msg: "manifest is larger than the limit of 65536 bytes"},
		{name: "digest mismatch", ref: digest.FromString("other").String(), contentType: mtOCIManifest, body: good, status: 400, code: codeDigestInvalid},
		{name: "bad digest", ref: "sha256:baddigeststring", contentType: mtOCIManifest, body: good, status: 400, code: codeDigestInvalid},
		{name: "content type mismatch", ref: "v1", contentType: mtOCIIndex, body: good, status: 400, code: codeManifestInvalid},
		{name: "bad tag parameter", ref: digest.FromBytes(good).String(), query: "?tag=-x", contentType: mtOCIManifest, body: good, status: 400, code: codeManifestInvalid},
		{name: "missing project", repo: "nope/a", ref: "v1", contentType: mtOCIManifest, body: good, status: 404, code: codeNameUnknown,
			msg: `project "nope" does not exist; create it with: customs project create nope`},
		{name: "bad name", repo: "p/A", ref: "v1", contentType: mtOCIManifest, body: good, status: 400, code: codeNameInvalid},
		{name: "push denied", repo: "pub/a", ref: "v1", user: "bob", contentType: mtOCIManifest, body: good, status: 403, code: codeDenied},
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
			r := e.do(req{method: "PUT", path: "/v2/" + repo + "/manifests/" + tt.ref + tt.query, user: user,
				header: map[string]string{"Content-Type": tt.contentType}, body: tt.body})
			e.expect(r, tt.status, tt.code)
			if tt.msg != "" && r.message() != tt.msg {
				t.Errorf("message = %q, want %q", r.message(), tt.msg)
			}
		})
	}
	// Nothing was tagged by the refused pushes.
	if _, err := e.db.Tag(context.Background(), "p/a", "v1"); !apperr.Is(err, apperr.ENOTFOUND) {
		t.Errorf("tag v1 exists after refused pushes: %v", err)
	}
	// Each refused push is reported once (but a malformed name never
	// reaches the manifest handler), and none as pushed.
	ev := e.events.list()
	if n := strings.Count(strings.Join(ev, "\n"), "refused "); n != len(tests)-1 || strings.Contains(strings.Join(ev, "\n"), "pushed") {
		t.Errorf("events for %d refused pushes: %q", len(tests)-1, ev)
	}
	for _, want := range []string{"refused bob pub/a [push] denied", "refused admin nope/a [push] not_found", "refused admin p/a [push] invalid"} {
		if !slices.Contains(ev, want) {
			t.Errorf("events %q lack %q", ev, want)
		}
	}
}

func TestSparseManifests(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AllowSparse = true })
	cfg := e.pushBlob("p/a", []byte(`{"c":1}`))
	withMissing := imageManifest(t, cfg, 7, []map[string]any{desc(mtOCILayer, digest.FromString("absent"), 5)}, nil)
	e.expect(e.pushManifest("p/a", "sparse", mtOCIManifest, withMissing), 201, "")
	index := jsonOf(t, map[string]any{"schemaVersion": 2, "mediaType": mtOCIIndex, "manifests": []any{desc(mtOCIManifest, digest.FromString("child"), 3)}})
	e.expect(e.pushManifest("p/a", "sparse-index", mtOCIIndex, index), 201, "")
	// The config is still required.
	missingCfg := imageManifest(t, digest.FromString("no config"), 7, nil, nil)
	e.expect(e.pushManifest("p/a", "v1", mtOCIManifest, missingCfg), 400, codeManifestBlobUnknown)
}

func TestIndexPush(t *testing.T) {
	e := newEnv(t)
	amd := e.pushImage("p/multi", "", "amd64", nil)
	arm := e.pushImage("p/multi", "", "arm64", nil)
	for _, mt := range []string{mtOCIIndex, mtDockerList} {
		childType := mtOCIManifest
		body := jsonOf(t, map[string]any{"schemaVersion": 2, "mediaType": mt, "manifests": []any{
			desc(childType, amd.digest, int64(len(amd.manifest))), desc(childType, arm.digest, int64(len(arm.manifest))),
		}})
		r := e.pushManifest("p/multi", "latest", mt, body)
		e.expect(r, 201, "")
		g := e.do(req{method: "GET", path: "/v2/p/multi/manifests/latest", user: "admin"})
		e.expect(g, 200, "")
		if g.Header.Get("Content-Type") != mt || !bytes.Equal(g.body, body) {
			t.Errorf("%s: pulled %s %q", mt, g.Header.Get("Content-Type"), g.body)
		}
	}
	// Docker schema 2 image.
	cfg := e.pushBlob("p/docker", []byte(`{"docker":true}`))
	layer := e.pushBlob("p/docker", []byte("docker layer"))
	body := jsonOf(t, map[string]any{"schemaVersion": 2, "mediaType": mtDockerV2,
		"config": desc(mtDockerCfg, cfg, 15), "layers": []any{desc(mtDockerLayer, layer, 12)}})
	e.expect(e.pushManifest("p/docker", "v1", mtDockerV2, body), 201, "")
}

func TestManifestDelete(t *testing.T) {
	e := newEnv(t)
	im := e.pushImage("p/a", "v1", "del", nil)
	e.expect(e.do(req{method: "PUT", path: "/v2/p/a/manifests/" + im.digest.String() + "?tag=v2", user: "admin",
		header: map[string]string{"Content-Type": mtOCIManifest}, body: im.manifest}), 201, "")

	e.expect(e.do(req{method: "DELETE", path: "/v2/p/a/manifests/v1", user: "bob"}), 403, codeDenied)
	e.expect(e.do(req{method: "DELETE", path: "/v2/p/a/manifests/v1"}), 401, codeUnauthorized)

	// Deleting a tag leaves the manifest and the other tags.
	e.expect(e.do(req{method: "DELETE", path: "/v2/p/a/manifests/v1", user: "admin"}), 202, "")
	e.expect(e.do(req{method: "HEAD", path: "/v2/p/a/manifests/v1", user: "admin"}), 404, "")
	e.expect(e.do(req{method: "HEAD", path: "/v2/p/a/manifests/v2", user: "admin"}), 200, "")
	e.expect(e.do(req{method: "DELETE", path: "/v2/p/a/manifests/v1", user: "admin"}), 404, codeManifestUnknown)

	// Deleting the manifest removes its tags.
	e.expect(e.do(req{method: "DELETE", path: "/v2/p/a/manifests/" + im.digest.String(), user: "admin"}), 202, "")
	e.expect(e.do(req{method: "HEAD", path: "/v2/p/a/manifests/" + im.digest.String(), user: "admin"}), 404, "")
	e.expect(e.do(req{method: "GET", path: "/v2/p/a/manifests/v2", user: "admin"}), 404, codeManifestUnknown)
	e.expect(e.do(req{method: "DELETE", path: "/v2/p/a/manifests/" + im.digest.String(), user: "admin"}), 404, codeManifestUnknown)

	ev := e.events.list()
	want := []string{
		`deleted admin p/a@` + im.digest.String() + ` "v1"`,
		`deleted admin p/a@` + im.digest.String() + ` ""`,
		`refused bob p/a [delete] denied`,
		`refused admin p/a [delete] not_found`,
	}
	for _, w := range want {
		if !slices.Contains(ev, w) {
			t.Errorf("events %q lack %q", ev, w)
		}
	}
}

// failingStore fails Tags with an internal error.
type failingStore struct {
	Metadata
}

func (failingStore) Tags(context.Context, string, store.Page) ([]string, error) {
	return nil, apperr.Wrap(errFake, apperr.EINTERNAL, "cannot list tags")
}

var errFake = &fakeErr{}

type fakeErr struct{}

func (*fakeErr) Error() string { return "database file /var/lib/secret.db is corrupt" }

func TestInternalErrorsAreLoggedNotShown(t *testing.T) {
	var e *env
	e = newEnv(t, func(o *Options) { o.Store = failingStore{o.Store} })
	r := e.do(req{method: "GET", path: "/v2/p/a/tags/list", user: "admin"})
	e.expect(r, http.StatusInternalServerError, codeUnknown)
	if strings.Contains(string(r.body), "secret.db") || r.message() != "internal error" {
		t.Errorf("body %s", r.body)
	}
	if !strings.Contains(e.logs.String(), "secret.db") {
		t.Errorf("cause not logged: %s", e.logs.String())
	}
}

func TestRequestLogger(t *testing.T) {
	var got []string
	e := newEnv(t, func(o *Options) {
		o.LoggerFrom = func(ctx context.Context, fallback *slog.Logger) *slog.Logger {
			got = append(got, "called")
			return fallback.With("request_id", "r-42")
		}
		o.Store = failingStore{o.Store}
	})
	e.do(req{method: "GET", path: "/v2/p/a/tags/list", user: "admin"})
	if len(got) == 0 || !strings.Contains(e.logs.String(), "request_id=r-42") {
		t.Errorf("request logger not used: %s", e.logs.String())
	}
}
