package scan

import (
	"context"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/blob"
)

// Blobs is the part of the blob store the scanner reads (see blob.Store).
type Blobs interface {
	// Open returns a reader for blob d, or ENOTFOUND.
	Open(ctx context.Context, d digest.Digest) (blob.Reader, error)
}

// Kinds of blob reads, as the customs_scan_blob_reads_total metric labels
// them.
const (
	readManifest = "manifest"
	readConfig   = "config"
	readLayer    = "layer"
)

// readBlob reads blob d whole, refusing one larger than max bytes.
func (s *Scanner) readBlob(ctx context.Context, d digest.Digest, kind string, max int64) ([]byte, error) {
	r, err := s.openBlob(ctx, d, kind)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if r.Size() > max {
		return nil, apperr.Errorf(apperr.ETOOLARGE, "%s blob %s is %d bytes, over the %d-byte limit", kind, d, r.Size(), max)
	}
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s blob %s: %w", kind, d, err)
	}
	if int64(len(b)) > max {
		return nil, apperr.Errorf(apperr.ETOOLARGE, "%s blob %s is over the %d-byte limit", kind, d, max)
	}
	if d.Algorithm().Available() && d.Algorithm().FromBytes(b) != d {
		return nil, apperr.Errorf(apperr.EINVALID, "%s blob %s does not match its digest", kind, d)
	}
	return b, nil
}

// openBlob opens blob d, counting the read as kind.
func (s *Scanner) openBlob(ctx context.Context, d digest.Digest, kind string) (blob.Reader, error) {
	s.metrics.blobReads.WithLabelValues(kind).Inc()
	r, err := s.blobs.Open(ctx, d)
	if err != nil {
		if apperr.Is(err, apperr.ENOTFOUND) {
			return nil, apperr.Errorf(apperr.ENOTFOUND, "%s blob %s is not stored", kind, d)
		}
		return nil, fmt.Errorf("opening %s blob %s: %w", kind, d, err)
	}
	return r, nil
}

// storedImage is a go-containerregistry image over customs' own blob
// store: the manifest and config are already read, layers are opened from
// the blob store when the extractor reads them (never over HTTP).
type storedImage struct {
	s         *Scanner
	ctx       context.Context
	mediaType types.MediaType
	raw       []byte
	config    []byte
	manifest  *v1.Manifest
}

var _ partial.CompressedImageCore = (*storedImage)(nil)

// RawConfigFile implements partial.CompressedImageCore.
func (im *storedImage) RawConfigFile() ([]byte, error) { return im.config, nil }

// MediaType implements partial.CompressedImageCore.
func (im *storedImage) MediaType() (types.MediaType, error) { return im.mediaType, nil }

// RawManifest implements partial.CompressedImageCore.
func (im *storedImage) RawManifest() ([]byte, error) { return im.raw, nil }

// LayerByDigest implements partial.CompressedImageCore for the config and
// the layers the manifest lists.
func (im *storedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == im.manifest.Config.Digest {
		return &storedLayer{im: im, desc: im.manifest.Config, kind: readConfig}, nil
	}
	for _, l := range im.manifest.Layers {
		if l.Digest == h {
			return &storedLayer{im: im, desc: l, kind: readLayer}, nil
		}
	}
	return nil, fmt.Errorf("manifest lists no blob %s", h)
}

// storedLayer is one blob of a storedImage.
type storedLayer struct {
	im   *storedImage
	desc v1.Descriptor
	kind string
}

// Digest implements partial.CompressedLayer.
func (l *storedLayer) Digest() (v1.Hash, error) { return l.desc.Digest, nil }

// Size implements partial.CompressedLayer.
func (l *storedLayer) Size() (int64, error) { return l.desc.Size, nil }

// MediaType implements partial.CompressedLayer.
func (l *storedLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

// Compressed implements partial.CompressedLayer: the blob as stored.
func (l *storedLayer) Compressed() (io.ReadCloser, error) {
	d, err := digest.Parse(l.desc.Digest.String())
	if err != nil {
		return nil, apperr.Errorf(apperr.EINVALID, "layer digest %q: %v", l.desc.Digest, err)
	}
	r, err := l.im.s.openBlob(l.im.ctx, d, l.kind)
	if err != nil {
		if apperr.Is(err, apperr.ENOTFOUND) && len(l.desc.URLs) > 0 {
			return nil, apperr.Errorf(apperr.EUNSUPPORTED, "layer %s is a foreign layer (served from %s), which customs does not store", d, l.desc.URLs[0])
		}
		return nil, err
	}
	return r, nil
}

// imageConfigTypes are the config media types of container images; a
// manifest with another config is an artifact, not an image.
var imageConfigTypes = map[types.MediaType]bool{
	types.OCIConfigJSON:    true,
	types.DockerConfigJSON: true,
}

// isIndex reports whether mt is an image index or manifest list.
func isIndex(mt string) bool {
	return mt == string(types.OCIImageIndex) || mt == string(types.DockerManifestList)
}

// isImage reports whether mt is an image manifest customs can scan.
func isImage(mt string) bool {
	return mt == string(types.OCIManifestSchema1) || mt == string(types.DockerManifestSchema2)
}

// platformString is "os/arch[/variant]", "" for nil.
func platformString(p *v1.Platform) string {
	if p == nil || p.OS == "" {
		return ""
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
