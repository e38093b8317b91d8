package api

import (
	_ "embed"
	"encoding/json"
	"net/http"

	"gopkg.in/yaml.v3"
)

// openapiYAML is the OpenAPI 3.1 document of this API (openapi.yaml beside
// this file). It is embedded so that a binary always serves the description
// of the routes it was built with; openapi_test.go checks that every route
// New registers is in it, and that answers match it.
//
//go:embed openapi.yaml
var openapiYAML []byte

// openapiRoutes serves the document at GET /api/v1/openapi.yaml and, as
// JSON, /api/v1/openapi.json, to anyone: the handlers are not wrapped, so
// no credentials are needed and bad ones are not refused.
func (h *handler) openapiRoutes(mux *http.ServeMux) {
	js, err := yamlToJSON(openapiYAML)
	if err != nil {
		panic("api: openapi.yaml: " + err.Error()) // caught by every test of New
	}
	serve := func(contentType string, body []byte) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", contentType)
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = w.Write(body)
		})
	}
	mux.Handle("GET /api/v1/openapi.yaml", serve("application/yaml", openapiYAML))
	mux.Handle("GET /api/v1/openapi.json", serve("application/json", js))
}

// yamlToJSON converts a YAML 1.2 document to JSON (yaml.v3 decodes
// mappings with string keys, as JSON has them; YAML 1.1 converters would
// read n and y as booleans).
func yamlToJSON(doc []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}
