package e2e_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/customs-dev/customs/test/e2e/harness"
)

// TestOpenAPIServed fetches the API's OpenAPI document from a real customs
// serve with curl, without credentials (and with wrong ones), checks it
// with jq and kin-openapi, and validates real answers of the whole server
// (its middleware included) against it: curl's status, content type and
// body must be what the document says for the operation its router finds.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	harness.Tool(t, "curl")
	harness.Tool(t, "jq")
	srv := harness.StartCustoms(t)
	c := harness.NewClient(t)
	dir := t.TempDir()
	yamlFile := filepath.Join(dir, "openapi.yaml")
	c.Must(t, "curl", "-sS", "--fail-with-body", "-o", yamlFile, srv.URL()+"/api/v1/openapi.yaml")
	jsonFile := filepath.Join(dir, "openapi.json")
	c.Must(t, "curl", "-sS", "--fail-with-body", "-u", srv.Username+":wrong-password", "-o", jsonFile, srv.URL()+"/api/v1/openapi.json")
	if got := strings.TrimSpace(c.Must(t, "jq", "-r", `.openapi + " " + (.paths | length | tostring)`, jsonFile)); !strings.HasPrefix(got, "3.1.") {
		t.Errorf("jq says %q; want an OpenAPI 3.1 document", got)
	} else if n, _ := strconv.Atoi(strings.Fields(got)[1]); n < 40 {
		t.Errorf("the served document has %d paths", n)
	}
	ctx := context.Background()
	doc, err := openapi3.NewLoader().LoadFromFile(yamlFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("served document is not valid OpenAPI: %v", err)
	}
	// The document's server is "/" (wherever it is served from); the
	// router matches requests to this one.
	doc.Servers = openapi3.Servers{{URL: srv.URL()}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	admin := srv.Username + ":" + srv.Password
	for _, tc := range []struct {
		method, path, creds, body string
		want                      int
	}{
		{"GET", "/api/v1/system/info", admin, "", 200},
		{"POST", "/api/v1/projects", admin, `{"name":"openapi","public":true}`, 201},
		{"GET", "/api/v1/projects", "", "", 200},
		{"GET", "/api/v1/projects/openapi", admin, "", 200},
		{"PATCH", "/api/v1/projects/openapi", admin, `{"preventVulnerable":true,"severity":"critical","scanOnPush":false}`, 200},
		{"GET", "/api/v1/projects/no-such-project", admin, "", 404},
		{"GET", "/api/v1/users/me", "", "", 401},
		{"GET", "/api/v1/users/me", admin, "", 200},
		{"GET", "/api/v1/vulndb", admin, "", 200},
		{"GET", "/api/v1/scans", admin, "", 200},
		{"GET", "/api/v1/policies", admin, "", 200},
		{"GET", "/api/v1/system/allowlist", admin, "", 200},
		{"GET", "/api/v1/audit/events?n=3", admin, "", 200},
		{"GET", "/api/v1/audit/verify", admin, "", 200},
	} {
		bodyFile := filepath.Join(dir, "body")
		args := []string{"curl", "-sS", "-o", bodyFile, "-w", "%{http_code} %{content_type}", "-X", tc.method}
		if tc.creds != "" {
			args = append(args, "-u", tc.creds)
		}
		if tc.body != "" {
			args = append(args, "-H", "Content-Type: application/json", "--data-binary", tc.body)
		}
		out := strings.Fields(c.Must(t, append(args, srv.URL()+tc.path)...))
		body, err := os.ReadFile(bodyFile)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 2 || out[0] != strconv.Itoa(tc.want) {
			t.Errorf("%s %s: curl says %v, want %d: %s", tc.method, tc.path, out, tc.want, body)
			continue
		}
		req, err := http.NewRequest(tc.method, srv.URL()+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if tc.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Errorf("%s %s: no operation of the document: %v", tc.method, tc.path, err)
			continue
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}}
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			t.Errorf("%s %s: the request breaks the document: %v", tc.method, tc.path, err)
		}
		status, _ := strconv.Atoi(out[0])
		res := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status,
			Header: http.Header{"Content-Type": {out[1]}}, Options: in.Options}
		res.SetBodyBytes(bytes.Clone(body))
		if err := openapi3filter.ValidateResponse(ctx, res); err != nil {
			t.Errorf("%s %s: the answer does not match the document: %v\n%s", tc.method, tc.path, err, body)
		}
	}
}
