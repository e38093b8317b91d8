package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/blob/fs"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/sqlite"
)

// testGuard is a Guard over a fixed table: Basic credentials user:"pw", and
// per user the repository-name prefixes and the actions allowed on them.
// The anonymous user is "".
type testGuard struct {
	grants map[string][]grant
}

type grant struct {
	prefix  string
	actions []string
}

func (g *testGuard) Authenticate(r *http.Request) (auth.Principal, error) {
	if r.Header.Get("Authorization") == "" {
		return auth.Anonymous, nil
	}
	user, pass, ok := r.BasicAuth()
	if _, known := g.grants[user]; !ok || !known || user == "" || pass != "pw" {
		return auth.Principal{}, apperr.Errorf(apperr.EUNAUTHORIZED, "invalid username or password")
	}
	return auth.Principal{Kind: auth.KindUser, Name: user}, nil
}

func (g *testGuard) allowed(p auth.Principal, repo, action string) bool {
	for _, gr := range g.grants[p.Name] {
		if strings.HasPrefix(repo, gr.prefix) && (slices.Contains(gr.actions, action) || slices.Contains(gr.actions, auth.ActionAll)) {
			return true
		}
	}
	return false
}

func (g *testGuard) Authorize(ctx context.Context, p auth.Principal, a auth.Access) error {
	for _, act := range a.Actions {
		if !g.allowed(p, a.Name, act) {
			if p.Kind == auth.KindAnonymous {
				return apperr.Errorf(apperr.EUNAUTHORIZED, "authentication required")
			}
			return apperr.Errorf(apperr.EDENIED, "requested access to the resource is denied")
		}
	}
	return nil
}

func (g *testGuard) Entitled(ctx context.Context, p auth.Principal, repo, action string) bool {
	return g.allowed(p, repo, action)
}

func (g *testGuard) Challenge(r *http.Request, scopes ...auth.Access) string {
	s := `Basic realm="customs-test"`
	var parts []string
	for _, sc := range scopes {
		parts = append(parts, sc.Type+":"+sc.Name+":"+strings.Join(sc.Actions, ","))
	}
	if len(parts) > 0 {
		s += `,scope="` + strings.Join(parts, " ") + `"`
	}
	return s
}

// defaultGrants: admin may do everything; bob may pull and push p/bob*,
// pull pub/ and nothing else; anonymous may pull pub/.
func defaultGrants() map[string][]grant {
	all := []string{auth.ActionPull, auth.ActionPush, auth.ActionDelete}
	return map[string][]grant{
		"admin": {{prefix: "", actions: all}},
		"bob":   {{prefix: "p/bob", actions: []string{auth.ActionPull, auth.ActionPush}}, {prefix: "pub/", actions: []string{auth.ActionPull}}},
		"":      {{prefix: "pub/", actions: []string{auth.ActionPull}}},
	}
}

// recorder is an Events that records what it is told.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
}

func (r *recorder) ManifestPushed(ctx context.Context, p auth.Principal, m *store.Manifest, tags []string) {
	r.add(fmt.Sprintf("pushed %s %s@%s %v", p.Name, m.Repository, m.Digest, tags))
}

func (r *recorder) ManifestDeleted(ctx context.Context, p auth.Principal, repo string, d digest.Digest, tag string) {
	r.add(fmt.Sprintf("deleted %s %s@%s %q", p.Name, repo, d, tag))
}

func (r *recorder) ManifestPulled(ctx context.Context, p auth.Principal, m *store.Manifest) {
	r.add(fmt.Sprintf("pulled %s %s@%s", p.Name, m.Repository, m.Digest))
}

func (r *recorder) Refused(ctx context.Context, p auth.Principal, repo string, actions []string, err error) {
	r.add(fmt.Sprintf("refused %s %s %v %s", p.Name, repo, actions, apperr.Code(err)))
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// env is a registry served by httptest over real SQLite and filesystem
// stores, with projects "p" (private) and "pub" (public).
type env struct {
	t      testing.TB
	srv    *httptest.Server
	db     *sqlite.DB
	blobs  *fs.Store
	guard  *testGuard
	events *recorder
	logs   *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newEnv starts a registry; edit adjusts its Options before New.
func newEnv(t testing.TB, edit ...func(*Options)) *env {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := fs.New(filepath.Join(dir, "blobs"), fs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []store.Project{{Name: "p"}, {Name: "pub", Public: true}} {
		if err := db.CreateProject(ctx, &p); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{t: t, db: db, blobs: blobs, guard: &testGuard{grants: defaultGrants()}, events: &recorder{}, logs: &syncBuffer{}}
	o := Options{
		Store:        db,
		Projects:     db,
		Blobs:        blobs,
		Guard:        e.guard,
		UploadSecret: bytes.Repeat([]byte("s"), MinUploadSecret),
		Events:       e.events,
		Logger:       slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range edit {
		f(&o)
	}
	e.srv = httptest.NewServer(New(o))
	t.Cleanup(e.srv.Close)
	return e
}

// resp is a response with its body read.
type resp struct {
	*http.Response
	body []byte
}

// code is the first OCI error code of the body, or "".
func (r *resp) code() string {
	var b errorBody
	if json.Unmarshal(r.body, &b) != nil || len(b.Errors) == 0 {
		return ""
	}
	return b.Errors[0].Code
}

// message is the first OCI error message of the body, or "".
func (r *resp) message() string {
	var b errorBody
	if json.Unmarshal(r.body, &b) != nil || len(b.Errors) == 0 {
		return ""
	}
	return b.Errors[0].Message
}

// req describes a request: user "" is anonymous.
type req struct {
	method  string
	path    string // may be a Location value with a query
	user    string
	header  map[string]string
	body    []byte
	noBody  bool // send no body at all (nil reader)
	rawBody io.Reader
}

// do sends rq and reads the whole response.
func (e *env) do(rq req) *resp {
	e.t.Helper()
	var body io.Reader
	switch {
	case rq.rawBody != nil:
		body = rq.rawBody
	case rq.body != nil:
		body = bytes.NewReader(rq.body)
	}
	r, err := http.NewRequest(rq.method, e.srv.URL+rq.path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if rq.user != "" {
		r.SetBasicAuth(rq.user, "pw")
	}
	for k, v := range rq.header {
		r.Header.Set(k, v)
	}
	res, err := e.srv.Client().Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if res.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		e.t.Errorf("%s %s: no Docker-Distribution-API-Version header", rq.method, rq.path)
	}
	return &resp{Response: res, body: b}
}

// expect checks a response's status and, when code is not "", its OCI code.
func (e *env) expect(r *resp, status int, code string) {
	e.t.Helper()
	if r.StatusCode != status || code != "" && r.code() != code {
		e.t.Fatalf("%s %s: got %d %s (%s), want %d %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, r.code(), r.body, status, code)
	}
}

// pushBlob uploads b monolithically to repo as admin and returns its digest.
func (e *env) pushBlob(repo string, b []byte) digest.Digest {
	e.t.Helper()
	d := digest.FromBytes(b)
	r := e.do(req{method: "POST", path: "/v2/" + repo + "/blobs/uploads/?digest=" + d.String(), user: "admin", body: b})
	e.expect(r, http.StatusCreated, "")
	return d
}

// pushManifest PUTs body to repo under ref as admin with its mediaType.
func (e *env) pushManifest(repo, ref string, mediaType string, body []byte) *resp {
	e.t.Helper()
	return e.do(req{method: "PUT", path: "/v2/" + repo + "/manifests/" + ref, user: "admin",
		header: map[string]string{"Content-Type": mediaType}, body: body})
}

// image is a pushed image: its config and layer contents and its manifest.
type image struct {
	config, layer []byte
	manifest      []byte
	digest        digest.Digest
}

// imageManifest builds an OCI image manifest over config and layers.
func imageManifest(t testing.TB, config digest.Digest, configSize int64, layers []map[string]any, extra map[string]any) []byte {
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     mtOCIManifest,
		"config":        desc(mtOCIConfig, config, configSize),
		"layers":        layers,
	}
	if layers == nil {
		m["layers"] = []any{}
	}
	for k, v := range extra {
		m[k] = v
	}
	return jsonOf(t, m)
}

// pushImage pushes a config, one layer and the manifest (by tag, if not
// "") to repo.
func (e *env) pushImage(repo, tag string, seed string, extra map[string]any) image {
	e.t.Helper()
	im := image{config: []byte(`{"seed":"` + seed + `"}`), layer: []byte("layer of " + seed)}
	cd := e.pushBlob(repo, im.config)
	ld := e.pushBlob(repo, im.layer)
	im.manifest = imageManifest(e.t, cd, int64(len(im.config)), []map[string]any{desc(mtOCILayer, ld, int64(len(im.layer)))}, extra)
	im.digest = digest.FromBytes(im.manifest)
	ref := tag
	if ref == "" {
		ref = im.digest.String()
	}
	e.expect(e.pushManifest(repo, ref, mtOCIManifest, im.manifest), http.StatusCreated, "")
	return im
}
