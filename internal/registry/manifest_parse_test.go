package registry

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

const (
	mtOCIManifest = "application/vnd.oci.image.manifest.v1+json"
	mtOCIIndex    = "application/vnd.oci.image.index.v1+json"
	mtOCIConfig   = "application/vnd.oci.image.config.v1+json"
	mtOCILayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
	mtDockerV2    = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerList  = "application/vnd.docker.distribution.manifest.list.v2+json"
	mtDockerCfg   = "application/vnd.docker.container.image.v1+json"
	mtDockerLayer = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// jsonOf marshals v, failing the test on error.
func jsonOf(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// desc is a descriptor as a JSON map.
func desc(mediaType string, d digest.Digest, size int64) map[string]any {
	return map[string]any{"mediaType": mediaType, "digest": d.String(), "size": size}
}

func TestParseManifest(t *testing.T) {
	cfg := digest.FromString("config")
	l1 := digest.FromString("layer1")
	l2 := digest.FromString("layer2")
	child := digest.FromString("child")
	subj := digest.FromString("subject")
	foreign := desc("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", l2, 9)
	withURL := desc(mtOCILayer, l2, 9)
	withURL["urls"] = []string{"https://example.com/l2"}
	ndZstd := desc("application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", l2, 9)

	image := func(extra map[string]any) map[string]any {
		m := map[string]any{
			"schemaVersion": 2, "mediaType": mtOCIManifest,
			"config": desc(mtOCIConfig, cfg, 10),
			"layers": []any{desc(mtOCILayer, l1, 20)},
		}
		for k, v := range extra {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	req := func(d digest.Digest, kind store.RefKind, required bool) store.Reference {
		return store.Reference{Digest: d, Kind: kind, Required: required}
	}
	tests := []struct {
		name        string
		body        any // marshalled unless a string
		contentType string
		sparse      bool
		want        *parsedManifest
		wantErr     string // substring of the MANIFEST_INVALID message
	}{
		{
			name: "oci image", body: image(nil), contentType: mtOCIManifest,
			want: &parsedManifest{MediaType: mtOCIManifest, ArtifactType: mtOCIConfig,
				References: []store.Reference{req(cfg, store.RefBlob, true), req(l1, store.RefBlob, true)}},
		},
		{
			name: "content type with parameters", body: image(nil), contentType: mtOCIManifest + "; charset=utf-8",
			want: &parsedManifest{MediaType: mtOCIManifest, ArtifactType: mtOCIConfig,
				References: []store.Reference{req(cfg, store.RefBlob, true), req(l1, store.RefBlob, true)}},
		},
		{
			name: "no mediaType, content type decides", body: image(map[string]any{"mediaType": nil}), contentType: mtOCIManifest,
			want: &parsedManifest{MediaType: mtOCIManifest, ArtifactType: mtOCIConfig,
				References: []store.Reference{req(cfg, store.RefBlob, true), req(l1, store.RefBlob, true)}},
		},
		{
			name: "no mediaType nor content type: detected image", body: image(map[string]any{"mediaType": nil}),
			want: &parsedManifest{MediaType: mtOCIManifest, ArtifactType: mtOCIConfig,
				References: []store.Reference{req(cfg, store.RefBlob, true), req(l1, store.RefBlob, true)}},
		},
		{
			name: "generic content type", body: image(nil), contentType: "application/json",
			want: &parsedManifest{MediaType: mtOCIManifest, ArtifactType: mtOCIConfig,
				References: []store.Reference{req(cfg, store.RefBlob, true), req(l1, store.RefBlob, true)}},
		},
		{
			name: "artifact with subject and annotations",
			body: image(map[string]any{
				"artifactType": "application/vnd.example+type", "subject": desc(mtOCIManifest, subj, 5),
				"annotations": map[string]string{"a": "b"},
			}),
			contentType: mtOCIManifest,
			want: &parsedManifest{MediaType: mtOCIManifest, ArtifactType: "application/vnd.example+type", Subject: subj,
				Annotations: map[string]string{"a": "b"},
				References:  []store.Reference{req(cfg, store.RefBlob, true), req(l1, store.RefBlob, true)}},
		},
		{
			name: "non-distributable and foreign layers are optional",
			body: image(map[string]any{"layers": []any{desc(mtOCILayer, l1, 1), foreign}}), contentType: mtOCIManifest,
			want: &parsedManifest{MediaType: mtOCIManifest, ArtifactType: mtOCIConfig,
				References: []store.Reference{req(cfg, store.RefBlob, true), req(l1, store.RefBlob, true), req(l2, store.RefBlob, false)}},
		},
		{
			name: "layers with urls are optional", body: image(map[string]any{"layers": []any{withURL}}), contentType: mtOCIManifest,
			want: &parsedManifest{MediaType: mtOCIManifest, ArtifactType: mtOCIConfig,
				References: []store.Reference{req(cfg, store.RefBlob, true), req(l2, store.RefBlob, false)}},
		},
		{
			name: "nondistributable zstd is optional", body: image(map[string]any{"layers": []any{ndZstd}}), contentType: mtOCIManifest,
			want: &parsedManifest{MediaType: mtOCIManifest, ArtifactType: mtOCIConfig,
				References: []store.Reference{req(cfg, store.RefBlob, true), req(l2, store.RefBlob, false)}},
		},
		{
			name: "sparse: layers optional, config required", body: image(nil), contentType: mtOCIManifest, sparse: true,
			want: &parsedManifest{MediaType: mtOCIManifest, ArtifactType: mtOCIConfig,
				References: []store.Reference{req(cfg, store.RefBlob, true), req(l1, store.RefBlob, false)}},
		},
		{
			name: "layer named twice is recorded once",
			body: image(map[string]any{"layers": []any{desc(mtOCILayer, l1, 1), desc(mtOCILayer, l1, 1)}}), contentType: mtOCIManifest,
			want: &parsedManifest{MediaType: mtOCIManifest, ArtifactType: mtOCIConfig,
				References: []store.Reference{req(cfg, store.RefBlob, true), req(l1, store.RefBlob, true)}},
		},
		{
			name: "docker schema 2",
			body: map[string]any{"schemaVersion": 2, "mediaType": mtDockerV2, "config": desc(mtDockerCfg, cfg, 1),
				"layers": []any{desc(mtDockerLayer, l1, 2)}},
			contentType: mtDockerV2,
			want: &parsedManifest{MediaType: mtDockerV2, ArtifactType: mtDockerCfg,
				References: []store.Reference{req(cfg, store.RefBlob, true), req(l1, store.RefBlob, true)}},
		},
		{
			name: "oci index",
			body: map[string]any{"schemaVersion": 2, "mediaType": mtOCIIndex, "manifests": []any{desc(mtOCIManifest, child, 3)},
				"artifactType": "application/x"},
			contentType: mtOCIIndex,
			want: &parsedManifest{MediaType: mtOCIIndex, ArtifactType: "application/x",
				References: []store.Reference{req(child, store.RefManifest, true)}},
		},
		{
			name:        "sparse index",
			body:        map[string]any{"schemaVersion": 2, "mediaType": mtOCIIndex, "manifests": []any{desc(mtOCIManifest, child, 3)}},
			contentType: mtOCIIndex, sparse: true,
			want: &parsedManifest{MediaType: mtOCIIndex, References: []store.Reference{req(child, store.RefManifest, false)}},
		},
		{
			name:        "empty index without mediaType is detected",
			body:        map[string]any{"schemaVersion": 2, "manifests": []any{}},
			want:        &parsedManifest{MediaType: mtOCIIndex},
			contentType: "",
		},
		{
			name:        "docker manifest list",
			body:        map[string]any{"schemaVersion": 2, "mediaType": mtDockerList, "manifests": []any{desc(mtDockerV2, child, 3)}},
			contentType: mtDockerList,
			want:        &parsedManifest{MediaType: mtDockerList, References: []store.Reference{req(child, store.RefManifest, true)}},
		},
		{name: "invalid JSON", body: `{"schemaVersion": 2,`, contentType: mtOCIManifest, wantErr: "not a valid JSON object"},
		{name: "JSON array", body: `[]`, contentType: mtOCIManifest, wantErr: "not a valid JSON object"},
		{name: "empty body", body: ``, contentType: mtOCIManifest, wantErr: "not a valid JSON object"},
		{name: "schema 1 by version", body: map[string]any{"schemaVersion": 1, "fsLayers": []any{}}, wantErr: "schema 1 manifests are not supported"},
		{name: "schema 1 by content type", body: image(nil), contentType: "application/vnd.docker.distribution.manifest.v1+prettyjws", wantErr: "schema 1"},
		{name: "schema 1 by mediaType", body: image(map[string]any{"mediaType": "application/vnd.docker.distribution.manifest.v1+json"}), wantErr: "schema 1"},
		{name: "schema 1 by fsLayers", body: image(map[string]any{"fsLayers": []any{}}), wantErr: "schema 1"},
		{name: "schema version 3", body: image(map[string]any{"schemaVersion": 3}), contentType: mtOCIManifest, wantErr: "schemaVersion must be 2"},
		{name: "no schema version", body: image(map[string]any{"schemaVersion": nil}), contentType: mtOCIManifest, wantErr: "schemaVersion must be 2"},
		{name: "content type mismatch", body: image(nil), contentType: mtOCIIndex, wantErr: "does not match the manifest's mediaType"},
		{name: "bad content type", body: image(nil), contentType: "a/b; =", wantErr: "invalid Content-Type"},
		{name: "unknown media type", body: image(map[string]any{"mediaType": "application/vnd.oci.artifact.manifest.v1+json"}), wantErr: "unsupported manifest media type"},
		{name: "image without config", body: image(map[string]any{"config": nil}), contentType: mtOCIManifest, wantErr: "no config descriptor"},
		{name: "image with manifests", body: image(map[string]any{"manifests": []any{}}), contentType: mtOCIManifest, wantErr: "must not have a manifests list"},
		{name: "index with layers", body: map[string]any{"schemaVersion": 2, "mediaType": mtOCIIndex, "manifests": []any{}, "layers": []any{}}, contentType: mtOCIIndex, wantErr: "must not have config or layers"},
		{name: "config without mediaType", body: image(map[string]any{"config": map[string]any{"digest": cfg.String(), "size": 1}}), contentType: mtOCIManifest, wantErr: "config descriptor has no mediaType"},
		{name: "layer with bad digest", body: image(map[string]any{"layers": []any{map[string]any{"mediaType": mtOCILayer, "digest": "sha256:abc", "size": 1}}}), contentType: mtOCIManifest, wantErr: "layers[0] descriptor has an invalid digest"},
		{name: "layer with sha384", body: image(map[string]any{"layers": []any{desc(mtOCILayer, digest.SHA384.FromString("x"), 1)}}), contentType: mtOCIManifest, wantErr: "unsupported digest algorithm"},
		{name: "negative size", body: image(map[string]any{"layers": []any{desc(mtOCILayer, l1, -1)}}), contentType: mtOCIManifest, wantErr: "negative size"},
		{name: "bad subject", body: image(map[string]any{"subject": map[string]any{"mediaType": mtOCIManifest, "digest": "x", "size": 1}}), contentType: mtOCIManifest, wantErr: "subject descriptor has an invalid digest"},
		{name: "index child with bad digest", body: map[string]any{"schemaVersion": 2, "mediaType": mtOCIIndex, "manifests": []any{map[string]any{"mediaType": mtOCIManifest, "digest": "", "size": 1}}}, contentType: mtOCIIndex, wantErr: "manifests[0] descriptor has an invalid digest"},
		{name: "wrong field type", body: `{"schemaVersion":"2"}`, wantErr: "not a valid JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, ok := tt.body.(string)
			if !ok {
				body = string(jsonOf(t, tt.body))
			}
			got, err := parseManifest([]byte(body), tt.contentType, tt.sparse)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("accepted: %+v", got)
				}
				if apperr.Detail(err) != codeManifestInvalid || !strings.Contains(apperr.Message(err), tt.wantErr) {
					t.Fatalf("err = %v, want MANIFEST_INVALID containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a, b := string(jsonOf(t, got)), string(jsonOf(t, tt.want)); a != b {
				t.Errorf("got  %s\nwant %s", a, b)
			}
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	cfg := digest.FromString("config")
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"`+mtOCIManifest+`","config":{"mediaType":"`+mtOCIConfig+`","digest":"`+cfg.String()+`","size":1},"layers":[]}`), mtOCIManifest, false)
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"`+mtOCIManifest+`","digest":"`+cfg.String()+`","size":1,"urls":["x"]}],"subject":{"mediaType":"a","digest":"`+cfg.String()+`","size":0}}`), "", true)
	f.Add([]byte(`{"schemaVersion":1}`), "application/json", false)
	f.Add([]byte(`null`), "", false)
	f.Fuzz(func(t *testing.T, body []byte, contentType string, sparse bool) {
		p, err := parseManifest(body, contentType, sparse)
		if err != nil {
			if apperr.Code(err) != apperr.EINVALID || apperr.Detail(err) != codeManifestInvalid {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		switch p.MediaType {
		case mtOCIManifest, mtDockerV2:
			if len(p.References) == 0 || p.References[0].Kind != store.RefBlob || !p.References[0].Required {
				t.Fatalf("image manifest without a required config reference: %+v", p)
			}
		case mtOCIIndex, mtDockerList:
		default:
			t.Fatalf("accepted media type %q", p.MediaType)
		}
		seen := map[store.Reference]bool{}
		for _, r := range p.References {
			if err := r.Digest.Validate(); err != nil {
				t.Fatalf("reference with invalid digest %q", r.Digest)
			}
			key := store.Reference{Digest: r.Digest, Kind: r.Kind}
			if seen[key] {
				t.Fatalf("reference %s recorded twice", r.Digest)
			}
			seen[key] = true
			if sparse && r.Required && !(r.Kind == store.RefBlob && r == p.References[0]) {
				t.Fatalf("sparse manifest requires %+v", r)
			}
		}
		if p.Subject != "" && p.Subject.Validate() != nil {
			t.Fatalf("invalid subject %q", p.Subject)
		}
	})
}
