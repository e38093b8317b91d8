package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/auth/oidc"
	"github.com/customs-dev/customs/internal/blob/fs"
	"github.com/customs-dev/customs/internal/config"
	"github.com/customs-dev/customs/internal/decide"
	"github.com/customs-dev/customs/internal/policy"
	"github.com/customs-dev/customs/internal/scan"
	"github.com/customs-dev/customs/internal/scan/extract"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/sqlite"
	"github.com/customs-dev/customs/internal/vulndb"
)

// fullEnv is the API with every optional part the server wires (audit
// log, vulnerability database, scanner, policies, allowlists, what-if
// evaluators), all real and over one SQLite store: New then registers
// every route it has. Scan workers do not run, so requested scans stay
// queued.
type fullEnv struct {
	url     string
	handler http.Handler
	// oidc serves the OIDC login endpoints beside the API, as customs
	// serve mounts them; its provider cannot be reached.
	oidc    *oidc.Handler
	db      *sqlite.DB
	audit   *audit.Writer
	scanner *scan.Scanner
	// digest is that of p/team/app:latest and pub/app:latest (project pub
	// is public), an Alpine image with a vulnerable musl.
	digest digest.Digest
}

// runScans runs the queued scan jobs, as a worker would, until none is
// left.
func (e *fullEnv) runScans(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for range 100 {
		ran, err := e.scanner.RunOne(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !ran {
			st, err := e.db.ScanQueueStats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Queued == 0 && st.Running == 0 {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Fatal("the scan queue did not drain")
}

func newFullEnv(t *testing.T) *fullEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	db, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	keys, err := auth.OpenKeyDir(filepath.Join(dir, "keys"), auth.KeyDirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	aw := audit.NewWriter(audit.WriterOptions{Store: db, Logger: logger})
	t.Cleanup(func() { _ = aw.Close(context.Background()) })
	svc, err := auth.NewService(auth.Options{Users: db, Projects: db, Members: db, Robots: db,
		RobotPepper: []byte("0123456789abcdef0123456789abcdef"), Keys: keys, PasswordParams: fast, Recorder: aw})
	if err != nil {
		t.Fatal(err)
	}
	h, err := auth.HashPassword(adminPW, fast)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateUser(ctx, &store.User{Name: "admin", PasswordHash: h, Admin: true}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"p", "q"} {
		if err := db.CreateProject(ctx, &store.Project{Name: p}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateProject(ctx, &store.Project{Name: "pub", Public: true}); err != nil {
		t.Fatal(err)
	}
	vdb, err := vulndb.Open(vulndb.Options{Store: db, Logger: logger, RevisionCheck: -1})
	if err != nil {
		t.Fatal(err)
	}
	importAdvisories(t, vdb, muslAdvisory)
	blobs, err := fs.New(filepath.Join(dir, "blobs"), fs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	self := pushImage(t, db, blobs, "p/team/app", "latest", alpineImage(t))
	pushImage(t, db, blobs, "pub/app", "latest", alpineImage(t))
	xcfg := extract.DefaultConfig()
	xcfg.TempDir = t.TempDir()
	sc, err := scan.New(scan.Options{Store: db, Blobs: blobs, VulnDB: vdb, Logger: logger, Registerer: prometheus.NewRegistry(),
		Extract: xcfg, IndexWait: time.Millisecond, ToolVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	handler := api.New(api.Options{Store: db, Auth: svc, Recorder: aw, Logger: logger, Version: "test",
		AuditLog: db, Vulndb: vdb, Scans: sc, ScanStore: db, Policies: db, Allowlists: db,
		Evaluators: api.Evaluators{Tags: db,
			Registry: decide.New(decide.Options{Store: db, Allowlists: db, Config: policy.Config{Default: policy.Allowed},
				Select: func(p *policy.Policy) bool { return len(p.Spec.Scope.Projects) > 0 }}),
			Runtime: decide.New(decide.Options{Store: db, Allowlists: db})},
		Workloads: db, TokenKeys: keys, TokenKeyMinAge: 90 * 24 * time.Hour})
	seedWorkloadAudit(t, db)
	oh, err := oidc.New(oidc.Options{Config: config.OIDC{Issuer: "http://127.0.0.1:1/no-provider", ClientID: "customs"},
		RedirectURL: "http://customs.test" + oidc.CallbackPath, Logins: svc, StateKey: make([]byte, 32), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	outer := http.NewServeMux()
	outer.Handle("/api/v1/auth/oidc/", oh) // as internal/server mounts it
	outer.Handle("/", handler)
	srv := httptest.NewServer(outer)
	t.Cleanup(srv.Close)
	return &fullEnv{url: srv.URL, handler: handler, oidc: oh, db: db, audit: aw, scanner: sc, digest: self}
}

// loadDoc fetches the document the server serves at path and loads it
// with kin-openapi, resolving its references.
func loadDoc(t *testing.T, url string) *openapi3.T {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	doc, err := openapi3.NewLoader().LoadFromData(body)
	if err != nil {
		t.Fatalf("GET %s: not an OpenAPI document: %v", url, err)
	}
	return doc
}

// TestOpenAPIDocumentValid checks that the served document is valid
// OpenAPI 3.1, without credentials, as YAML and as the same JSON.
func TestOpenAPIDocumentValid(t *testing.T) {
	e := newFullEnv(t)
	doc := loadDoc(t, e.url+"/api/v1/openapi.yaml")
	if !doc.IsOpenAPI31OrLater() || !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not valid OpenAPI 3.1: %v", err)
	}
	js := loadDoc(t, e.url+"/api/v1/openapi.json")
	a, _ := json.Marshal(doc)
	b, _ := json.Marshal(js)
	if !bytes.Equal(a, b) {
		t.Error("openapi.json is not the same document as openapi.yaml")
	}
	// Bad credentials do not keep anyone from reading it.
	req, _ := http.NewRequest("GET", e.url+"/api/v1/openapi.yaml", nil)
	req.SetBasicAuth("admin", "wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/yaml" {
		t.Errorf("with bad credentials: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
}

// registeredPatterns returns the patterns this package's production code
// gives to mux.Handle and mux.HandleFunc, read from its source: every one
// must be a string literal, so that none escapes this test.
func registeredPatterns(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var out []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") || len(call.Args) != 2 {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: a route registered with a pattern that is not a string literal; this test cannot check it",
					fset.Position(call.Pos()))
				return true
			}
			p, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
			return true
		})
	}
	if len(out) < 50 {
		t.Fatalf("found only %d route registrations in the package source", len(out))
	}
	return out
}

// samplePath fills a path template's {params} ({name...} too) with values
// that route.
func samplePath(path string) string {
	values := map[string]string{"ref": "p/team/app:latest", "repository": "team/app", "reference": "latest",
		"digest": "sha256:" + strings.Repeat("a", 64), "rest": "team/app/scans"}
	var b strings.Builder
	for {
		i := strings.Index(path, "{")
		if i < 0 {
			b.WriteString(path)
			return b.String()
		}
		j := strings.Index(path[i:], "}") + i
		name := strings.TrimSuffix(path[i+1:j], "...")
		v, ok := values[name]
		if !ok {
			v = name + "1"
		}
		b.WriteString(path[:i] + v)
		path = path[j+1:]
	}
}

// muxPattern is the ServeMux pattern an operation of the document is
// served by: its x-mux-pattern (for parameters spanning segments), or its
// method and path.
func muxPattern(method, path string, op *openapi3.Operation) string {
	if p, ok := op.Extensions["x-mux-pattern"].(string); ok {
		return p
	}
	return method + " " + path
}

// TestOpenAPIComplete checks that every route the API registers is
// documented and every documented operation is routed to the handler
// registered for it, by asking New's own ServeMux which pattern serves a
// request.
func TestOpenAPIComplete(t *testing.T) {
	e := newFullEnv(t)
	mux, ok := e.handler.(*http.ServeMux)
	if !ok {
		t.Fatalf("api.New returns a %T; this test asks a *http.ServeMux which pattern serves a request", e.handler)
	}
	served := func(method, path string) string {
		req := httptest.NewRequest(method, path, nil)
		_, pattern := mux.Handler(req)
		return pattern
	}
	registered := map[string]bool{}
	for _, p := range registeredPatterns(t) {
		if p == "/api/" { // the catch-all answering 404 not_found
			continue
		}
		method, path, _ := strings.Cut(p, " ")
		if got := served(method, samplePath(path)); got != p {
			t.Errorf("%s is in the source but New does not serve it (%s %s goes to %q)", p, method, samplePath(path), got)
		}
		registered[p] = true
	}
	// The OIDC login endpoints are served beside the API by the OIDC
	// handler (x-served-by: oidc in the document).
	oidcRoutes := map[string]bool{}
	for _, p := range e.oidc.Patterns() {
		oidcRoutes[p] = true
	}
	doc := loadDoc(t, e.url+"/api/v1/openapi.yaml")
	documented := map[string]bool{}
	oidcDocumented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			want := muxPattern(method, path, op)
			if op.Extensions["x-served-by"] == "oidc" {
				oidcDocumented[want] = true
				if !oidcRoutes[want] {
					t.Errorf("openapi.yaml documents %q as served by the OIDC handler, which does not serve it (it serves %v)", want, e.oidc.Patterns())
				}
				continue
			}
			documented[want] = true
			if got := served(method, samplePath(path)); got != want {
				t.Errorf("documented %s %s is served by %q, not %q", method, path, got, want)
			}
		}
	}
	for p := range registered {
		if !documented[p] {
			t.Errorf("route %q is not in openapi.yaml", p)
		}
	}
	for p := range documented {
		if !registered[p] {
			t.Errorf("openapi.yaml documents %q, which the API does not register", p)
		}
	}
	for p := range oidcRoutes {
		if !oidcDocumented[p] {
			t.Errorf("OIDC route %q is not in openapi.yaml (with x-served-by: oidc)", p)
		}
	}
}

// apiCall is one real request to the server and the document's operation
// it is an instance of.
type apiCall struct {
	name   string
	method string
	// path is the document's path template; params fill it.
	path   string
	params map[string]string
	query  string
	// user and pw are Basic credentials ("" user: anonymous), bearer an
	// Authorization: Bearer value.
	user, pw, bearer string
	body             any
	// want is the status expected.
	want int
	// invalid says the request breaks a rule the document states too, so
	// that its validation must fail as the server refuses it.
	invalid bool
}

// conformance validates requests and answers against the document.
type conformance struct {
	t   *testing.T
	e   *fullEnv
	doc *openapi3.T
	// called are the operations do sent requests of ("METHOD path").
	called map[string]bool
}

// do sends c, checks its status, validates the request and the answer
// (status documented, headers, body against the schema) and returns the
// answer's body.
func (k *conformance) do(c apiCall) []byte {
	t := k.t
	t.Helper()
	k.called[c.method+" "+c.path] = true
	path := c.path
	for name, v := range c.params {
		path = strings.Replace(path, "{"+name+"}", v, 1)
	}
	var body []byte
	if c.body != nil {
		var err error
		if body, err = json.Marshal(c.body); err != nil {
			t.Fatal(err)
		}
	}
	url := k.e.url + path
	if c.query != "" {
		url += "?" + c.query
	}
	req, err := http.NewRequest(c.method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case c.bearer != "":
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	case c.user != "":
		req.SetBasicAuth(c.user, c.pw)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != c.want {
		t.Errorf("%s: %s %s: %s, want %d: %s", c.name, c.method, path, resp.Status, c.want, got)
		return got
	}
	item := k.doc.Paths.Value(c.path)
	if item == nil || item.GetOperation(c.method) == nil {
		t.Fatalf("%s: %s %s is not in the document", c.name, c.method, c.path)
	}
	route := &routers.Route{Spec: k.doc, Path: c.path, PathItem: item, Method: c.method, Operation: item.GetOperation(c.method)}
	// The request as the server got it, for the validator.
	vreq, _ := http.NewRequest(c.method, url, bytes.NewReader(body))
	vreq.Header = req.Header.Clone()
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: c.params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}}
	ctx := context.Background()
	switch err := openapi3filter.ValidateRequest(ctx, in); {
	case err != nil && !c.invalid:
		t.Errorf("%s: the request does not match the document: %v", c.name, err)
	case err == nil && c.invalid:
		t.Errorf("%s: the server refuses the request (%d) but the document allows it", c.name, resp.StatusCode)
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: in.Options}
	if ct == "application/json" || ct == "application/yaml" {
		out.SetBodyBytes(got)
	} else {
		// ndjson and SBOM media types have no decoder here: the status
		// and content type are still checked.
		opts := *in.Options
		opts.ExcludeResponseBody = true
		out.Options = &opts
		if len(got) > 0 && route.Operation.Responses.Status(resp.StatusCode).Value.Content.Get(ct) == nil {
			t.Errorf("%s: %d answered %q, which the document does not list", c.name, resp.StatusCode, ct)
		}
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("%s: the answer does not match the document: %v\n%s", c.name, err, got)
	}
	return got
}

// TestOpenAPIResponses makes real calls of every kind of endpoint, their
// usual failures included, and validates each request and answer against
// the document.
func TestOpenAPIResponses(t *testing.T) {
	e := newFullEnv(t)
	k := &conformance{t: t, e: e, doc: loadDoc(t, e.url+"/api/v1/openapi.yaml"), called: map[string]bool{}}
	const a, apw = "admin", adminPW
	const b, bpw = "bob", "bob-password-1"
	p := map[string]string{"name": "p"}
	calls := []apiCall{
		{name: "document as JSON", method: "GET", path: "/api/v1/openapi.json", want: 200},
		{name: "document as YAML", method: "GET", path: "/api/v1/openapi.yaml", want: 200},
		{name: "system info", method: "GET", path: "/api/v1/system/info", user: a, pw: apw, want: 200},
		{name: "wrong password", method: "GET", path: "/api/v1/system/info", user: a, pw: "nope", want: 401},

		{name: "create project", method: "POST", path: "/api/v1/projects", user: a, pw: apw,
			body: api.CreateProjectRequest{Name: "docs", Public: true}, want: 201},
		{name: "create project twice", method: "POST", path: "/api/v1/projects", user: a, pw: apw,
			body: api.CreateProjectRequest{Name: "docs"}, want: 409},
		{name: "bad project name", method: "POST", path: "/api/v1/projects", user: a, pw: apw,
			body: map[string]any{"name": "Docs!"}, want: 400, invalid: true},
		{name: "list projects anonymously", method: "GET", path: "/api/v1/projects", want: 200},
		{name: "list projects", method: "GET", path: "/api/v1/projects", query: "n=10", user: a, pw: apw, want: 200},
		{name: "get project", method: "GET", path: "/api/v1/projects/{name}", params: p, user: a, pw: apw, want: 200},
		{name: "update project", method: "PATCH", path: "/api/v1/projects/{name}", params: p, user: a, pw: apw,
			body: map[string]any{"scanOnPush": true, "preventVulnerable": true, "severity": "high"}, want: 200},
		{name: "repositories", method: "GET", path: "/api/v1/projects/{name}/repositories", params: p, user: a, pw: apw, want: 200},
		{name: "private project anonymously", method: "GET", path: "/api/v1/projects/{name}/repositories", params: p, want: 401},
		{name: "delete project", method: "DELETE", path: "/api/v1/projects/{name}", params: map[string]string{"name": "docs"},
			user: a, pw: apw, want: 204},

		{name: "create user", method: "POST", path: "/api/v1/users", user: a, pw: apw,
			body: api.CreateUserRequest{Name: b, Password: bpw}, want: 201},
		{name: "short password", method: "POST", path: "/api/v1/users", user: a, pw: apw,
			body: api.CreateUserRequest{Name: "carol", Password: "short"}, want: 400, invalid: true},
		{name: "list users", method: "GET", path: "/api/v1/users", user: a, pw: apw, want: 200},
		{name: "list users as bob", method: "GET", path: "/api/v1/users", user: b, pw: bpw, want: 403},
		{name: "me", method: "GET", path: "/api/v1/users/me", user: b, pw: bpw, want: 200},
		{name: "get user", method: "GET", path: "/api/v1/users/{user}", params: map[string]string{"user": b}, user: b, pw: bpw, want: 200},
		{name: "update user", method: "PATCH", path: "/api/v1/users/{user}", params: map[string]string{"user": b}, user: a, pw: apw,
			body: api.UpdateUserRequest{Disabled: new(false)}, want: 200},
		{name: "end own sessions", method: "DELETE", path: "/api/v1/users/me/sessions", user: b, pw: bpw, want: 204},
		{name: "end a user's sessions", method: "DELETE", path: "/api/v1/users/{user}/sessions", params: map[string]string{"user": b},
			user: a, pw: apw, want: 204},
		{name: "end another's sessions", method: "DELETE", path: "/api/v1/users/{user}/sessions", params: map[string]string{"user": a},
			user: b, pw: bpw, want: 403},
		{name: "end a missing user's sessions", method: "DELETE", path: "/api/v1/users/{user}/sessions", params: map[string]string{"user": "nobody"},
			user: a, pw: apw, want: 404},
		{name: "end sessions anonymously", method: "DELETE", path: "/api/v1/users/me/sessions", want: 401},
		{name: "cli secret of a local user", method: "GET", path: "/api/v1/users/me/cli-secret", user: b, pw: bpw, want: 400},
		{name: "revoke cli secret of a local user", method: "DELETE", path: "/api/v1/users/{user}/cli-secret",
			params: map[string]string{"user": b}, user: a, pw: apw, want: 400},

		{name: "add member", method: "POST", path: "/api/v1/projects/{name}/members", params: p, user: a, pw: apw,
			body: map[string]any{"name": b, "role": "developer"}, want: 201},
		{name: "delete repository as a developer", method: "DELETE", path: "/api/v1/projects/{name}/repositories/{repository}",
			params: map[string]string{"name": "p", "repository": "team/app"}, user: b, pw: bpw, want: 403},
		{name: "delete a repository that does not exist", method: "DELETE", path: "/api/v1/projects/{name}/repositories/{repository}",
			params: map[string]string{"name": "p", "repository": "team/none"}, user: a, pw: apw, want: 404},
		{name: "list members", method: "GET", path: "/api/v1/projects/{name}/members", params: p, user: b, pw: bpw, want: 200},
		{name: "change member", method: "PATCH", path: "/api/v1/projects/{name}/members/{member}",
			params: map[string]string{"name": "p", "member": b}, user: a, pw: apw, body: map[string]any{"role": "maintainer"}, want: 200},
		{name: "permissions", method: "GET", path: "/api/v1/projects/{name}/permissions", params: p, user: b, pw: bpw, want: 200},
		{name: "member kind", method: "DELETE", path: "/api/v1/projects/{name}/members/{member}",
			params: map[string]string{"name": "p", "member": b}, query: "kind=team", user: a, pw: apw, want: 400, invalid: true},

		{name: "system robot", method: "POST", path: "/api/v1/robots", user: a, pw: apw,
			body: map[string]any{"name": "ci", "permissions": []map[string]any{{"project": "*", "actions": []string{"pull"}}}, "expiresIn": "30d"}, want: 201},
		{name: "project robot", method: "POST", path: "/api/v1/projects/{name}/robots", params: p, user: a, pw: apw,
			body: map[string]any{"name": "push", "actions": []string{"push"}}, want: 201},
		{name: "list robots", method: "GET", path: "/api/v1/robots", user: a, pw: apw, want: 200},
		{name: "list project robots", method: "GET", path: "/api/v1/projects/{name}/robots", params: p, user: a, pw: apw, want: 200},
		{name: "get robot", method: "GET", path: "/api/v1/robots/{robot}", params: map[string]string{"robot": "robot$p+push"}, user: a, pw: apw, want: 200},
		{name: "update robot", method: "PATCH", path: "/api/v1/robots/{robot}", params: map[string]string{"robot": "robot$ci"}, user: a, pw: apw,
			body: map[string]any{"description": "CI", "neverExpires": true}, want: 200},
		{name: "robot with actions", method: "PATCH", path: "/api/v1/robots/{robot}", params: map[string]string{"robot": "robot$ci"}, user: a, pw: apw,
			body: map[string]any{"actions": []string{"pull"}}, want: 400},
		{name: "rotate robot", method: "POST", path: "/api/v1/robots/{robot}/rotate", params: map[string]string{"robot": "robot$ci"}, user: a, pw: apw, want: 200},
		{name: "robot nobody has", method: "GET", path: "/api/v1/robots/{robot}", params: map[string]string{"robot": "robot$nope"}, user: b, pw: bpw, want: 404},

		{name: "vulndb status", method: "GET", path: "/api/v1/vulndb", user: b, pw: bpw, want: 200},
		{name: "vulndb match", method: "POST", path: "/api/v1/vulndb/match", user: b, pw: bpw,
			body: map[string]any{"distro": map[string]any{"id": "alpine", "versionID": "3.9.6"},
				"packages": []map[string]any{{"ecosystem": "Alpine", "name": "musl", "version": "1.1.20-r4"}}}, want: 200},
		{name: "vulndb match without names", method: "POST", path: "/api/v1/vulndb/match", user: b, pw: bpw,
			body: map[string]any{"packages": []map[string]any{{"ecosystem": "Alpine", "version": "1"}}}, want: 400, invalid: true},
		{name: "advisory not held", method: "GET", path: "/api/v1/vulndb/advisories/{id}", params: map[string]string{"id": "CVE-2019-14697"}, user: b, pw: bpw, want: 404},
		{name: "vulndb update without configured sources", method: "POST", path: "/api/v1/vulndb/update", user: a, pw: apw, want: 400},

		{name: "request scan", method: "POST", path: "/api/v1/projects/{name}/repositories/{repository}/manifests/{reference}/scan",
			params: map[string]string{"name": "p", "repository": "team/app", "reference": "latest"}, user: b, pw: bpw, want: 202},
		{name: "scan queue", method: "GET", path: "/api/v1/scans", query: "n=5", user: a, pw: apw, want: 200},
		{name: "scan queue n", method: "GET", path: "/api/v1/scans", query: "n=0", user: a, pw: apw, want: 400, invalid: true},
		{name: "repository scans", method: "GET", path: "/api/v1/projects/{name}/repositories/{repository}/scans",
			params: map[string]string{"name": "p", "repository": "team/app"}, user: b, pw: bpw, want: 200},
		{name: "project scans", method: "GET", path: "/api/v1/projects/{name}/scans", params: p, user: b, pw: bpw, want: 200},
		{name: "scan report", method: "GET", path: "/api/v1/scans/{digest}", params: map[string]string{"digest": e.digest.String()}, user: b, pw: bpw, want: 200},
		{name: "not a digest", method: "GET", path: "/api/v1/scans/{digest}", params: map[string]string{"digest": "sha256:nope"}, user: b, pw: bpw, want: 400},
		{name: "sbom of an unscanned image", method: "GET", path: "/api/v1/scans/{digest}/sbom", params: map[string]string{"digest": digest.FromString("never").String()},
			user: a, pw: apw, want: 404},
		{name: "image while queued", method: "GET", path: "/api/v1/images/{ref}", params: map[string]string{"ref": "p/team/app:latest"}, user: b, pw: bpw, want: 202},
		{name: "image any status", method: "GET", path: "/api/v1/images/{ref}", params: map[string]string{"ref": e.digest.String()},
			query: "anyStatus=true&unknownAs=high", user: b, pw: bpw, want: 200},
		{name: "image anonymously", method: "GET", path: "/api/v1/images/{ref}", params: map[string]string{"ref": "p/team/app:latest"}, want: 401},
		{name: "image bad unknownAs", method: "GET", path: "/api/v1/images/{ref}", params: map[string]string{"ref": "p/team/app:latest"},
			query: "unknownAs=severe", user: b, pw: bpw, want: 400, invalid: true},

		{name: "put policy", method: "PUT", path: "/api/v1/policies/{policy}", params: map[string]string{"policy": "base"}, user: a, pw: apw,
			body: api.PutPolicyRequest{Document: basePolicy}, want: 201},
		{name: "put policy by a developer", method: "PUT", path: "/api/v1/policies/{policy}", params: map[string]string{"policy": "base"}, user: b, pw: bpw,
			body: api.PutPolicyRequest{Document: basePolicy}, want: 403},
		{name: "invalid policy", method: "PUT", path: "/api/v1/policies/{policy}", params: map[string]string{"policy": "base"}, user: a, pw: apw,
			body: api.PutPolicyRequest{Document: "kind: Nonsense"}, want: 400},
		{name: "list policies", method: "GET", path: "/api/v1/policies", user: b, pw: bpw, want: 200},
		{name: "get policy", method: "GET", path: "/api/v1/policies/{policy}", params: map[string]string{"policy": "base"}, user: b, pw: bpw, want: 200},
		{name: "policy history", method: "GET", path: "/api/v1/policies/{policy}/history", params: map[string]string{"policy": "base"}, user: b, pw: bpw, want: 200},
		{name: "evaluate (denied by the tags rule)", method: "POST", path: "/api/v1/policies/evaluate", user: b, pw: bpw,
			body: api.EvaluateRequest{Image: "docker.io/library/nginx:latest", Environment: "prod"}, want: 200},
		{name: "evaluate with extra policy", method: "POST", path: "/api/v1/policies/evaluate", user: b, pw: bpw,
			body: api.EvaluateRequest{Image: "docker.io/library/nginx:1.27", Door: "runtime", Policies: []string{projectPPolicy}}, want: 200},
		{name: "evaluate bad door", method: "POST", path: "/api/v1/policies/evaluate", user: b, pw: bpw,
			body: api.EvaluateRequest{Image: "nginx", Door: "front"}, want: 400, invalid: true},
		{name: "delete policy", method: "DELETE", path: "/api/v1/policies/{policy}", params: map[string]string{"policy": "base"}, user: a, pw: apw, want: 204},

		{name: "add allowlist entry", method: "POST", path: "/api/v1/projects/{name}/allowlist", params: p, user: a, pw: apw,
			body: api.AllowlistEntry{ID: "CVE-2019-14697", Package: "musl", Expires: "30d", Reason: "no fix yet"}, want: 201},
		{name: "allowlist", method: "GET", path: "/api/v1/projects/{name}/allowlist", params: p, user: b, pw: bpw, want: 200},
		{name: "remove allowlist entry", method: "DELETE", path: "/api/v1/projects/{name}/allowlist/{id}",
			params: map[string]string{"name": "p", "id": "cve-2019-14697"}, user: a, pw: apw, want: 200},
		{name: "remove it again", method: "DELETE", path: "/api/v1/projects/{name}/allowlist/{id}",
			params: map[string]string{"name": "p", "id": "CVE-2019-14697"}, user: a, pw: apw, want: 404},
		{name: "add system allowlist entry", method: "POST", path: "/api/v1/system/allowlist", user: a, pw: apw,
			body: api.AllowlistEntry{ID: "CVE-2023-0001", Expires: "2099-01-31"}, want: 201},
		{name: "system allowlist", method: "GET", path: "/api/v1/system/allowlist", user: b, pw: bpw, want: 200},
		{name: "system allowlist entry by bob", method: "POST", path: "/api/v1/system/allowlist", user: b, pw: bpw,
			body: api.AllowlistEntry{ID: "CVE-2023-0002"}, want: 403},
		{name: "remove system allowlist entry", method: "DELETE", path: "/api/v1/system/allowlist/{id}",
			params: map[string]string{"id": "CVE-2023-0001"}, user: a, pw: apw, want: 200},

		{name: "OIDC login, provider down", method: "GET", path: "/api/v1/auth/oidc/login", query: "next=/api/v1/projects", want: 503},
		{name: "OIDC callback without state", method: "GET", path: "/api/v1/auth/oidc/callback", query: "code=x", want: 401},
		{name: "OIDC callback refused by the provider", method: "GET", path: "/api/v1/auth/oidc/callback",
			query: "error=access_denied&error_description=no", want: 401},
		{name: "OIDC logout without a session", method: "POST", path: "/api/v1/auth/oidc/logout", want: 204},

		{name: "token keys", method: "GET", path: "/api/v1/system/token-keys", user: a, pw: apw, want: 200},
		{name: "token keys as bob", method: "GET", path: "/api/v1/system/token-keys", user: b, pw: bpw, want: 403},
		{name: "rotate token key", method: "POST", path: "/api/v1/system/token-keys:rotate", user: a, pw: apw, want: 201},
		{name: "rotate token key as bob", method: "POST", path: "/api/v1/system/token-keys:rotate", user: b, pw: bpw, want: 403},
		{name: "prune token keys", method: "POST", path: "/api/v1/system/token-keys:prune", user: a, pw: apw,
			body: api.TokenKeyPruneRequest{OlderThan: "100d"}, want: 200},
		{name: "prune token keys too young", method: "POST", path: "/api/v1/system/token-keys:prune", user: a, pw: apw,
			body: api.TokenKeyPruneRequest{OlderThan: "1h"}, want: 400},
		{name: "prune token keys without an age", method: "POST", path: "/api/v1/system/token-keys:prune", user: a, pw: apw,
			body: map[string]any{}, want: 400, invalid: true},

		{name: "refused workloads", method: "GET", path: "/api/v1/workloads/refused", user: a, pw: apw, want: 200},
		{name: "refused workloads as bob", method: "GET", path: "/api/v1/workloads/refused", user: b, pw: bpw, want: 403},

		{name: "change own password", method: "PUT", path: "/api/v1/users/{user}/password", params: map[string]string{"user": b}, user: b, pw: bpw,
			body: api.ChangePasswordRequest{OldPassword: bpw, NewPassword: "bob-password-2"}, want: 204},
		{name: "unknown field", method: "PATCH", path: "/api/v1/users/{user}", params: map[string]string{"user": b}, user: a, pw: apw,
			body: map[string]any{"administrator": true}, want: 400, invalid: true},
		{name: "remove member", method: "DELETE", path: "/api/v1/projects/{name}/members/{member}",
			params: map[string]string{"name": "p", "member": b}, user: a, pw: apw, want: 204},
		{name: "delete robot", method: "DELETE", path: "/api/v1/robots/{robot}", params: map[string]string{"robot": "robot$p+push"}, user: a, pw: apw, want: 204},
		{name: "delete user", method: "DELETE", path: "/api/v1/users/{user}", params: map[string]string{"user": b}, user: a, pw: apw, want: 204},
		{name: "delete repository", method: "DELETE", path: "/api/v1/projects/{name}/repositories/{repository}",
			params: map[string]string{"name": "pub", "repository": "app"}, user: a, pw: apw, want: 200},
	}
	for _, c := range calls {
		k.do(c)
	}

	// The scan requested above, run: the answers with findings.
	e.runScans(t)
	d := map[string]string{"digest": e.digest.String()}
	scanned := []apiCall{
		{name: "report with findings", method: "GET", path: "/api/v1/scans/{digest}", params: d, user: a, pw: apw, want: 200},
		{name: "CycloneDX SBOM", method: "GET", path: "/api/v1/scans/{digest}/sbom", params: d, user: a, pw: apw, want: 200},
		{name: "SPDX SBOM", method: "GET", path: "/api/v1/scans/{digest}/sbom", params: d, query: "format=spdx", user: a, pw: apw, want: 200},
		{name: "SBOM format", method: "GET", path: "/api/v1/scans/{digest}/sbom", params: d, query: "format=swid", user: a, pw: apw, want: 400, invalid: true},
		{name: "image done", method: "GET", path: "/api/v1/images/{ref}", params: map[string]string{"ref": "p/team/app:latest"}, user: a, pw: apw, want: 200},
		{name: "image by digest", method: "GET", path: "/api/v1/images/{ref}", params: map[string]string{"ref": "p/team/app@" + e.digest.String()},
			query: "unknownAs=ignore", user: a, pw: apw, want: 200},
		{name: "repository scans after the scan", method: "GET", path: "/api/v1/projects/{name}/repositories/{repository}/scans",
			params: map[string]string{"name": "p", "repository": "team/app"}, user: a, pw: apw, want: 200},
		{name: "project scans after the scan", method: "GET", path: "/api/v1/projects/{name}/scans", params: p, user: a, pw: apw, want: 200},
		{name: "advisory", method: "GET", path: "/api/v1/vulndb/advisories/{id}", params: map[string]string{"id": "ALPINE-CVE-2019-14697"}, user: a, pw: apw, want: 200},
		{name: "evaluate a scanned image of this server", method: "POST", path: "/api/v1/policies/evaluate", user: a, pw: apw,
			body: api.EvaluateRequest{Image: strings.TrimPrefix(e.url, "http://") + "/p/team/app:latest"}, want: 200},
	}
	for _, c := range scanned {
		k.do(c)
	}
	var img api.ImageVulnerabilities
	if err := json.Unmarshal(k.do(scanned[4]), &img); err != nil {
		t.Fatal(err)
	}
	if img.Status != "done" || len(img.Packages) != 1 || img.Packages[0].Name != "musl" || len(img.Packages[0].Vulnerabilities) != 1 ||
		img.Packages[0].Vulnerabilities[0].CVEID != "CVE-2019-14697" {
		t.Errorf("image after the scan: %+v", img)
	}
	var ev api.EvaluateResult
	if err := json.Unmarshal(k.do(scanned[len(scanned)-1]), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Decision == nil || ev.Decision.Outcome != policy.Denied || ev.Input.Scan == nil || len(ev.Input.Scan.Findings) != 1 {
		t.Errorf("the project's settings (prevent vulnerable, high) should deny the scanned image: %+v", ev)
	}

	// A robot's credentials as a bearer token (seed 004's Task).
	var rb api.Robot
	if err := json.Unmarshal(k.do(apiCall{name: "robot for the bearer", method: "POST", path: "/api/v1/robots", user: a, pw: apw,
		body: map[string]any{"name": "task", "permissions": []map[string]any{{"project": "p", "actions": []string{"pull"}}}}, want: 201}), &rb); err != nil {
		t.Fatal(err)
	}
	token := base64.StdEncoding.EncodeToString([]byte(rb.Name + ":" + rb.Secret))
	k.do(apiCall{name: "image with a robot bearer", method: "GET", path: "/api/v1/images/{ref}", params: map[string]string{"ref": "p/team/app:latest"},
		bearer: token, want: 200})

	// The audit trail, once the writer has stored what it was given.
	for i := 0; e.audit.Pending() > 0 && i < 500; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	var page api.AuditPage
	if err := json.Unmarshal(k.do(apiCall{name: "audit events", method: "GET", path: "/api/v1/audit/events", query: "n=5&outcome=success",
		user: a, pw: apw, want: 200}), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 5 || page.Next == "" {
		t.Errorf("audit page: %d events, next %q; want 5 and a next page", len(page.Events), page.Next)
	}
	k.do(apiCall{name: "audit events, bad outcome", method: "GET", path: "/api/v1/audit/events", query: "outcome=meh", user: a, pw: apw, want: 400, invalid: true})
	k.do(apiCall{name: "audit verify", method: "GET", path: "/api/v1/audit/verify", user: a, pw: apw, want: 200})
	k.do(apiCall{name: "audit export", method: "GET", path: "/api/v1/audit/export", user: a, pw: apw, want: 200})
	k.do(apiCall{name: "audit purge", method: "POST", path: "/api/v1/audit/purge", user: a, pw: apw,
		body: api.PurgeAuditRequest{OlderThan: "90d"}, want: 200})
	k.do(apiCall{name: "audit purge without age", method: "POST", path: "/api/v1/audit/purge", user: a, pw: apw,
		body: map[string]any{}, want: 400, invalid: true})

	// An OIDC user logging in with a CLI secret, as registry clients do.
	secretHash, err := auth.HashPassword("olga-cli-secret-1", fast)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.CreateUser(context.Background(), &store.User{Name: "olga", Source: store.SourceOIDC, PasswordHash: secretHash}); err != nil {
		t.Fatal(err)
	}
	k.do(apiCall{name: "OIDC user's CLI secret", method: "GET", path: "/api/v1/users/me/cli-secret", user: "olga", pw: "olga-cli-secret-1", want: 200})
	var cs api.CLISecret
	if err := json.Unmarshal(k.do(apiCall{name: "new CLI secret", method: "POST", path: "/api/v1/users/me/cli-secret",
		user: "olga", pw: "olga-cli-secret-1", want: 201}), &cs); err != nil {
		t.Fatal(err)
	}
	k.do(apiCall{name: "the old secret no longer works", method: "GET", path: "/api/v1/users/me/cli-secret", user: "olga", pw: "olga-cli-secret-1", want: 401})
	k.do(apiCall{name: "revoke own CLI secret", method: "DELETE", path: "/api/v1/users/me/cli-secret", user: "olga", pw: cs.Secret, want: 204})
	k.do(apiCall{name: "revoke an OIDC user's CLI secret", method: "DELETE", path: "/api/v1/users/{user}/cli-secret",
		params: map[string]string{"user": "olga"}, user: a, pw: apw, want: 204})

	// Every documented operation was called at least once here: a route
	// added to the document needs a call here too.
	var missing []string
	for path, item := range k.doc.Paths.Map() {
		for method := range item.Operations() {
			if op := method + " " + path; !k.called[op] {
				missing = append(missing, op)
			}
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("documented operations no call here checks: %v", missing)
	}
}

// TestOpenAPISecurity checks each operation's security requirements by
// calling it anonymously about the public project pub and its image:
// operations that do not list {} (no credentials) must answer 401 with a
// Basic challenge, the others must not refuse an anonymous caller.
func TestOpenAPISecurity(t *testing.T) {
	e := newFullEnv(t)
	doc := loadDoc(t, e.url+"/api/v1/openapi.yaml")
	values := map[string]string{"name": "pub", "repository": "app", "reference": "latest", "ref": "pub/app:latest",
		"digest": e.digest.String(), "user": "admin", "robot": "robot$nobody", "policy": "nothing", "id": "CVE-2019-14697",
		"member": "nobody"}
	n := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.Extensions["x-served-by"] == "oidc" {
				continue // browser logins: a 401 there is a failed login, not missing credentials
			}
			security := doc.Security
			if op.Security != nil {
				security = *op.Security
			}
			anonymous := slices.ContainsFunc(security, func(r openapi3.SecurityRequirement) bool { return len(r) == 0 })
			url := e.url + path
			for k, v := range values {
				url = strings.ReplaceAll(url, "{"+k+"}", v)
			}
			var body io.Reader
			if op.RequestBody != nil {
				body = strings.NewReader("{}")
			}
			req, err := http.NewRequest(method, url, body)
			if err != nil {
				t.Fatal(err)
			}
			if body != nil {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			n++
			switch {
			case !anonymous && (resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ")):
				t.Errorf("%s %s needs credentials by the document, but answers an anonymous caller %s (WWW-Authenticate %q): %s",
					method, path, resp.Status, resp.Header.Get("WWW-Authenticate"), got)
			case anonymous && resp.StatusCode == http.StatusUnauthorized:
				t.Errorf("%s %s lists no credentials among its security requirements, but refuses an anonymous caller: %s", method, path, got)
			}
		}
	}
	if n < 50 {
		t.Errorf("only %d operations checked", n)
	}
}

// TestOpenAPIErrorSchemaIsErrorBody checks that the document's Error
// schema has exactly the members api.ErrorBody writes.
func TestOpenAPIErrorSchemaIsErrorBody(t *testing.T) {
	e := newFullEnv(t)
	doc := loadDoc(t, e.url+"/api/v1/openapi.yaml")
	s := doc.Components.Schemas["Error"].Value
	if !reflect.DeepEqual(slices.Sorted(maps.Keys(s.Properties)), []string{"error"}) {
		t.Errorf("Error has properties %v", slices.Sorted(maps.Keys(s.Properties)))
	}
	detail := s.Properties["error"].Value
	typ := reflect.TypeOf(api.ErrorBody{}.Error)
	var fields []string
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		fields = append(fields, name)
	}
	slices.Sort(fields)
	if got := slices.Sorted(maps.Keys(detail.Properties)); !reflect.DeepEqual(got, fields) {
		t.Errorf("Error.error has %v; api.ErrorBody writes %v", got, fields)
	}
}

// seedWorkloadAudit stores a workload audit with a refused and a warned
// container, as package workloadaudit would.
func seedWorkloadAudit(t *testing.T, db store.Store) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.ClaimWorkloadAudit(ctx, "seed", time.Minute); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	err := db.PutWorkloadAudit(ctx, &store.WorkloadAudit{Owner: "seed", Trigger: "policy", Started: now, Finished: now,
		PolicyRevision: 2, Pods: 2, Containers: 2, Images: 2, Findings: []store.WorkloadFinding{
			{Namespace: "production", Pod: "kuard", Container: "kuard", Kind: "container", Image: "gcr.io/kuar-demo/kuard-amd64:blue",
				Outcome: "refused", Reason: "Forbidden: no matching image policy: no policy applies"},
			{Namespace: "dev", Pod: "web", Container: "web", Kind: "container", Image: "nginx:latest",
				Digest: "sha256:" + strings.Repeat("a", 64), Outcome: "warned", Reason: "the latest tag is discouraged"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.ReleaseWorkloadAudit(ctx, "seed"); err != nil {
		t.Fatal(err)
	}
}
