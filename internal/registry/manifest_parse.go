package registry

import (
	"encoding/json"
	"fmt"
	"mime"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// manifestDoc is the union of the fields of the manifest formats customs
// accepts: OCI image manifest and index, Docker schema 2 manifest and
// manifest list (and, to refuse them clearly, schema 1).
type manifestDoc struct {
	SchemaVersion *int                 `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	ArtifactType  string               `json:"artifactType"`
	Config        *ocispec.Descriptor  `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Manifests     []ocispec.Descriptor `json:"manifests"`
	Subject       *ocispec.Descriptor  `json:"subject"`
	Annotations   map[string]string    `json:"annotations"`
	FSLayers      []json.RawMessage    `json:"fsLayers"` // schema 1 only
}

// parsedManifest is what the registry records about a manifest.
type parsedManifest struct {
	MediaType    string
	ArtifactType string
	Subject      digest.Digest
	Annotations  map[string]string
	References   []store.Reference
}

// schema1Message is the answer to a Docker schema 1 manifest.
const schema1Message = "Docker schema 1 manifests are not supported; push the image as a schema 2 or OCI manifest"

// parseManifest decodes and validates a manifest pushed with the given
// Content-Type. Layers and index children are required to be in the
// repository unless allowSparse; the config always is; non-distributable
// layers and descriptors with urls never are. Errors are EINVALID with
// Detail MANIFEST_INVALID (or DIGEST_INVALID for a bad descriptor digest).
func parseManifest(body []byte, contentType string, allowSparse bool) (*parsedManifest, error) {
	ct := ""
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil {
			return nil, manifestInvalid("invalid Content-Type %q", truncate(contentType, 100))
		}
		ct = mt
	}
	if types.MediaType(ct).IsSchema1() {
		return nil, manifestInvalid(schema1Message)
	}
	var doc manifestDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, manifestInvalid("manifest is not a valid JSON object: %v", err)
	}
	if types.MediaType(doc.MediaType).IsSchema1() || doc.SchemaVersion != nil && *doc.SchemaVersion == 1 || doc.FSLayers != nil {
		return nil, manifestInvalid(schema1Message)
	}
	if doc.SchemaVersion == nil || *doc.SchemaVersion != 2 {
		return nil, manifestInvalid("manifest schemaVersion must be 2")
	}
	mt := doc.MediaType
	switch {
	case mt != "" && ct != "" && ct != mt && !genericContentType(ct):
		return nil, manifestInvalid("Content-Type %q does not match the manifest's mediaType %q", ct, mt)
	case mt == "" && ct != "" && !genericContentType(ct):
		mt = ct
	case mt == "" && doc.Manifests != nil && doc.Config == nil:
		mt = ocispec.MediaTypeImageIndex
	case mt == "":
		mt = ocispec.MediaTypeImageManifest
	}
	p := &parsedManifest{MediaType: mt, Annotations: doc.Annotations, ArtifactType: doc.ArtifactType}
	switch types.MediaType(mt) {
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
		if err := p.image(&doc, allowSparse); err != nil {
			return nil, err
		}
	case types.OCIImageIndex, types.DockerManifestList:
		if err := p.index(&doc, allowSparse); err != nil {
			return nil, err
		}
	default:
		return nil, manifestInvalid("unsupported manifest media type %q; customs stores %s, %s, %s and %s",
			truncate(mt, 100), types.OCIManifestSchema1, types.OCIImageIndex, types.DockerManifestSchema2, types.DockerManifestList)
	}
	if doc.Subject != nil {
		if err := checkDescriptor(doc.Subject, "subject"); err != nil {
			return nil, err
		}
		p.Subject = doc.Subject.Digest
	}
	return p, nil
}

// genericContentType reports whether ct says nothing about the manifest
// format (some clients send these); the body's mediaType then decides.
func genericContentType(ct string) bool {
	return ct == "application/json" || ct == "application/octet-stream"
}

// image fills p from an image manifest.
func (p *parsedManifest) image(doc *manifestDoc, allowSparse bool) error {
	if doc.Config == nil {
		return manifestInvalid("image manifest has no config descriptor")
	}
	if doc.Manifests != nil {
		return manifestInvalid("image manifest must not have a manifests list")
	}
	if err := checkDescriptor(doc.Config, "config"); err != nil {
		return err
	}
	p.add(store.Reference{Digest: doc.Config.Digest, Kind: store.RefBlob, Required: true})
	for i := range doc.Layers {
		l := &doc.Layers[i]
		if err := checkDescriptor(l, fmt.Sprintf("layers[%d]", i)); err != nil {
			return err
		}
		required := !allowSparse && distributable(l.MediaType) && len(l.URLs) == 0
		p.add(store.Reference{Digest: l.Digest, Kind: store.RefBlob, Required: required})
	}
	if p.ArtifactType == "" {
		p.ArtifactType = doc.Config.MediaType
	}
	return nil
}

// index fills p from an image index or manifest list.
func (p *parsedManifest) index(doc *manifestDoc, allowSparse bool) error {
	if doc.Config != nil || doc.Layers != nil {
		return manifestInvalid("image index must not have config or layers")
	}
	for i := range doc.Manifests {
		m := &doc.Manifests[i]
		if err := checkDescriptor(m, fmt.Sprintf("manifests[%d]", i)); err != nil {
			return err
		}
		required := !allowSparse && len(m.URLs) == 0
		p.add(store.Reference{Digest: m.Digest, Kind: store.RefManifest, Required: required})
	}
	return nil
}

// add records a reference once; a digest named twice is required if either
// mention requires it.
func (p *parsedManifest) add(r store.Reference) {
	for i := range p.References {
		if p.References[i].Digest == r.Digest && p.References[i].Kind == r.Kind {
			p.References[i].Required = p.References[i].Required || r.Required
			return
		}
	}
	p.References = append(p.References, r)
}

// distributable reports whether layers of media type mt are meant to be
// pushed to registries (non-distributable and foreign layers are not).
func distributable(mt string) bool {
	return types.MediaType(mt).IsDistributable() &&
		!strings.HasPrefix(mt, "application/vnd.oci.image.layer.nondistributable.")
}

// checkDescriptor validates the fields every descriptor must have.
func checkDescriptor(d *ocispec.Descriptor, where string) error {
	if d.MediaType == "" {
		return manifestInvalid("%s descriptor has no mediaType", where)
	}
	if err := d.Digest.Validate(); err != nil {
		return apperr.Errorf(apperr.EINVALID, "%s descriptor has an invalid digest %q: %v", where, truncate(string(d.Digest), 160), err).
			WithDetail(codeManifestInvalid)
	}
	if err := checkAlgorithm(d.Digest.Algorithm()); err != nil {
		return apperr.Errorf(apperr.EINVALID, "%s descriptor: %s", where, apperr.Message(err)).WithDetail(codeManifestInvalid)
	}
	if d.Size < 0 {
		return manifestInvalid("%s descriptor has a negative size", where)
	}
	return nil
}

func manifestInvalid(format string, args ...any) error {
	return apperr.Errorf(apperr.EINVALID, format, args...).WithDetail(codeManifestInvalid)
}
