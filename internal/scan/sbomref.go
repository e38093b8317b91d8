package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/internal/store"
)

// SBOM referrers: with Options.PushSBOM, or in projects whose SBOMReferrer
// setting is on, every scan that reads an image's layers stores the
// image's inventory as a CycloneDX 1.6 document in an OCI artifact
// manifest whose subject is the image, in each repository holding the
// image, through the same store and blob calls a push makes (never over
// HTTP). The registry's referrers API, and so `oras discover`, lists it.
const (
	// SBOMArtifactType is the artifactType of SBOM referrers, and the
	// media type of their one layer.
	SBOMArtifactType = "application/vnd.cyclonedx+json"
	// AnnotationSBOMExtractor names the extractor version that produced
	// an SBOM referrer's inventory: an image already having a referrer of
	// the current version gets no second one.
	AnnotationSBOMExtractor = "dev.customs.sbom.extractor"
	// maxSBOMRepos bounds the repositories of one image that get a
	// referrer.
	maxSBOMRepos = 100
)

// BlobWriter is the part of the blob store the scanner writes SBOM
// referrers with (see blob.Store).
type BlobWriter interface {
	// Put stores r's bytes as blob d; beforePublish records the blob
	// (size known) before the bytes become visible.
	Put(ctx context.Context, d digest.Digest, r io.Reader, beforePublish func(size int64) error) (int64, error)
}

// ReferrerStore is what the scanner stores SBOM referrers in (see
// store.RegistryStore).
type ReferrerStore interface {
	// PutLinkedBlob records blob d of size bytes, linked in repo.
	PutLinkedBlob(ctx context.Context, repo string, d digest.Digest, size int64) error
	// PutManifest stores m with no tags.
	PutManifest(ctx context.Context, m *store.Manifest, tags []string) error
	// Referrers lists the manifests of repo whose subject is d.
	Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]store.Manifest, error)
}

// sbomArtifact is an SBOM referrer, encoded: its manifest and its layer.
type sbomArtifact struct {
	manifest, sbom []byte
	annotations    map[string]string
	manifestDigest digest.Digest
	sbomDigest     digest.Digest
}

// sbomReferrer encodes the CycloneDX SBOM of image m (its inventory inv,
// without findings: they change with the database, the inventory does
// not) and the artifact manifest carrying it, subject m.
func (s *Scanner) sbomReferrer(m *store.Manifest, rep *report.Report, inv *inventory.Inventory) (*sbomArtifact, error) {
	r := &report.Report{Digest: rep.Digest, MediaType: rep.MediaType, Platform: rep.Platform, Status: rep.Status,
		ScannedAt: rep.ScannedAt, Distro: rep.Distro, Packages: rep.Packages, Findings: []report.Finding{}, Inventory: inv}
	var buf bytes.Buffer
	if err := report.Encode(&buf, r, report.FormatCycloneDX, report.Options{Subject: m.Repository + "@" + m.Digest.String(),
		ToolVersion: s.opts.ToolVersion}); err != nil {
		return nil, fmt.Errorf("encoding the SBOM of %s: %w", m.Digest, err)
	}
	a := &sbomArtifact{sbom: buf.Bytes()}
	a.sbomDigest = digest.FromBytes(a.sbom)
	doc := v1.Manifest{
		Versioned:    ocispec.Versioned{SchemaVersion: 2},
		MediaType:    v1.MediaTypeImageManifest,
		ArtifactType: SBOMArtifactType,
		Config:       v1.DescriptorEmptyJSON,
		Layers: []v1.Descriptor{{MediaType: SBOMArtifactType, Digest: a.sbomDigest, Size: int64(len(a.sbom)),
			Annotations: map[string]string{v1.AnnotationTitle: "sbom.cdx.json"}}},
		Subject: &v1.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size},
		Annotations: map[string]string{
			v1.AnnotationCreated:    rep.ScannedAt.UTC().Format("2006-01-02T15:04:05Z"),
			AnnotationSBOMExtractor: s.x.Version(),
		},
	}
	a.annotations = doc.Annotations
	var err error
	if a.manifest, err = json.Marshal(doc); err != nil {
		return nil, fmt.Errorf("encoding the SBOM referrer of %s: %w", m.Digest, err)
	}
	a.manifestDigest = digest.FromBytes(a.manifest)
	return a, nil
}

// pushSBOM stores the SBOM referrer of image m in every repository holding
// it that wants one (Options.PushSBOM, or its project's SBOMReferrer
// setting) and has none of the current extractor version yet. It reports
// how many repositories got one.
func (s *Scanner) pushSBOM(ctx context.Context, m *store.Manifest, rep *report.Report, inv *inventory.Inventory) (int, error) {
	repos, err := s.st.ManifestRepositories(ctx, m.Digest.String(), maxSBOMRepos)
	if err != nil {
		return 0, err
	}
	var a *sbomArtifact
	pushed := 0
	wants := map[string]bool{} // by project
	for _, repo := range repos {
		project, _, _ := strings.Cut(repo, "/")
		want, seen := wants[project]
		if !seen {
			if want = s.opts.PushSBOM; !want {
				settings, err := s.st.ScanSettings(ctx, project)
				if err != nil && !apperr.Is(err, apperr.ENOTFOUND) {
					return pushed, err
				}
				want = err == nil && settings.SBOMReferrer
			}
			wants[project] = want
		}
		if !want {
			continue
		}
		have, err := s.hasSBOM(ctx, repo, m.Digest)
		if err != nil {
			return pushed, err
		}
		if have {
			continue
		}
		if a == nil {
			if a, err = s.sbomReferrer(m, rep, inv); err != nil {
				return pushed, err
			}
		}
		if err := s.putSBOM(ctx, repo, m, a); err != nil {
			if apperr.Is(err, apperr.ENOTFOUND) {
				continue // the repository or its project went meanwhile
			}
			return pushed, fmt.Errorf("storing the SBOM referrer of %s in %s: %w", m.Digest, repo, err)
		}
		pushed++
	}
	return pushed, nil
}

// hasSBOM reports whether repo holds an SBOM referrer of d made by the
// current extractor version.
func (s *Scanner) hasSBOM(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	refs, err := s.st.Referrers(ctx, repo, d, SBOMArtifactType)
	if err != nil {
		if apperr.Is(err, apperr.ENOTFOUND) {
			return false, nil
		}
		return false, err
	}
	for _, r := range refs {
		if r.Annotations[AnnotationSBOMExtractor] == s.x.Version() {
			return true, nil
		}
	}
	return false, nil
}

// putSBOM stores artifact a in repo as a push would: its blobs recorded
// and linked, then the manifest with its references.
func (s *Scanner) putSBOM(ctx context.Context, repo string, m *store.Manifest, a *sbomArtifact) error {
	empty := v1.DescriptorEmptyJSON
	for _, b := range []struct {
		d    digest.Digest
		data []byte
	}{{empty.Digest, empty.Data}, {a.sbomDigest, a.sbom}, {a.manifestDigest, a.manifest}} {
		if _, err := s.opts.BlobWriter.Put(ctx, b.d, bytes.NewReader(b.data), func(size int64) error {
			return s.st.PutLinkedBlob(ctx, repo, b.d, size)
		}); err != nil {
			return err
		}
	}
	return s.st.PutManifest(ctx, &store.Manifest{
		Repository: repo, Digest: a.manifestDigest, MediaType: v1.MediaTypeImageManifest, Size: int64(len(a.manifest)),
		ArtifactType: SBOMArtifactType, Subject: m.Digest,
		Annotations: a.annotations,
		References: []store.Reference{
			{Digest: empty.Digest, Kind: store.RefBlob, Required: true},
			{Digest: a.sbomDigest, Kind: store.RefBlob, Required: true},
		},
	}, nil)
}
