package registry

import (
	ocispec "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/auth"
)

// serveReferrers answers GET /v2/<name>/referrers/<digest>[?artifactType=]
// with an image index of the manifests whose subject is digest. An unknown
// subject or repository has no referrers: an empty index, never 404.
func (h *handler) serveReferrers(q *request) error {
	if err := h.authorize(q, auth.ActionPull); err != nil {
		return err
	}
	d, err := parseDigest(q.rt.Arg)
	if err != nil {
		return err
	}
	artifactType := q.r.URL.Query().Get("artifactType")
	ms, err := h.meta.Referrers(q.ctx, q.rt.Name, d, artifactType)
	if err != nil && apperr.Code(err) != apperr.ENOTFOUND {
		return err
	}
	idx := v1.Index{
		Versioned: ocispec.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageIndex,
		Manifests: make([]v1.Descriptor, 0, len(ms)),
	}
	for _, m := range ms {
		idx.Manifests = append(idx.Manifests, v1.Descriptor{
			MediaType:    m.MediaType,
			Digest:       m.Digest,
			Size:         m.Size,
			ArtifactType: m.ArtifactType,
			Annotations:  m.Annotations,
		})
	}
	if artifactType != "" {
		q.w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return writeJSON(q, v1.MediaTypeImageIndex, idx)
}
