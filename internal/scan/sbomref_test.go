package scan

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// readAll reads blob d of e's blob store whole.
func (e *env) readAll(d digest.Digest) []byte {
	e.t.Helper()
	r, err := e.blobs.Open(e.ctx, d)
	if err != nil {
		e.t.Fatalf("blob %s: %v", d, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// sbomReferrers lists the SBOM referrers of d in repo.
func (e *env) sbomReferrers(repo string, d digest.Digest) []store.Manifest {
	e.t.Helper()
	refs, err := e.st.Referrers(e.ctx, repo, d, SBOMArtifactType)
	if err != nil && !apperr.Is(err, apperr.ENOTFOUND) {
		e.t.Fatal(err)
	}
	return refs
}

func TestSBOMReferrer(t *testing.T) {
	e := newEnv(t)
	// Off by default, even with a blob store that can write.
	e.s = e.scanner(func(o *Options) { o.BlobWriter = e.blobs })
	plain := e.push("p/plain", "v1", image(t, "arm64", alpineBase(t)))
	e.drain()
	if refs := e.sbomReferrers("p/plain", plain.Digest); len(refs) != 0 {
		t.Fatalf("an SBOM referrer was stored with neither PushSBOM nor the project setting: %+v", refs)
	}

	// Project q's setting: only q's repository gets one.
	if err := e.st.PutScanSettings(e.ctx, "q", store.ScanSettings{ScanOnPush: true, SBOMReferrer: true}); err != nil {
		t.Fatal(err)
	}
	img := image(t, "amd64", alpineBase(t))
	m := e.push("p/alpine", "3.9", img)
	e.putManifestNoScan = true
	e.push("q/mirror", "3.9", img)
	e.putManifestNoScan = false
	e.drain()
	if refs := e.sbomReferrers("p/alpine", m.Digest); len(refs) != 0 {
		t.Errorf("p/alpine got an SBOM referrer although p's setting is off: %+v", refs)
	}
	if refs := e.sbomReferrers("q/mirror", m.Digest); len(refs) != 1 {
		t.Fatalf("q/mirror: %d SBOM referrers, want 1 (q's sbomReferrer is on)", len(refs))
	}
	if n := e.metric("customs_scan_sbom_referrers_total", map[string]string{"result": "stored"}); n != 1 {
		t.Errorf("stored SBOM referrers metric %v, want 1", n)
	}

	// PushSBOM (config): every repository; a rescan with the same
	// extractor adds no second referrer where there is one.
	e.s = e.scanner(func(o *Options) { o.PushSBOM, o.BlobWriter = true, e.blobs })
	if _, err := e.s.Request(e.ctx, "p/alpine", m.Digest, "api"); err != nil {
		t.Fatal(err)
	}
	e.drain()
	if n := e.metric("customs_scan_sbom_referrers_total", map[string]string{"result": "stored"}); n != 1 {
		t.Errorf("stored SBOM referrers metric %v, want 1 (p/alpine only)", n)
	}

	var referrer digest.Digest
	for _, repo := range []string{"p/alpine", "q/mirror"} {
		refs := e.sbomReferrers(repo, m.Digest)
		if len(refs) != 1 {
			t.Fatalf("%s: %d SBOM referrers of the image, want 1", repo, len(refs))
		}
		r := refs[0]
		if r.ArtifactType != SBOMArtifactType || r.Subject != m.Digest || r.MediaType != v1.MediaTypeImageManifest ||
			r.Annotations[AnnotationSBOMExtractor] != e.s.ExtractorVersion() {
			t.Errorf("%s: referrer %+v", repo, r)
		}
		// Each from its own scan: q's from the first, p's from the rescan.
		referrer = r.Digest
	}
	raw := e.readAll(referrer)
	if digest.FromBytes(raw) != referrer {
		t.Fatal("the referrer's manifest blob does not match its digest")
	}
	var doc v1.Manifest
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SchemaVersion != 2 || doc.ArtifactType != SBOMArtifactType || doc.Config.Digest != v1.DescriptorEmptyJSON.Digest ||
		doc.Subject == nil || doc.Subject.Digest != m.Digest || doc.Subject.Size != m.Size || doc.Subject.MediaType != m.MediaType ||
		len(doc.Layers) != 1 || doc.Layers[0].MediaType != SBOMArtifactType {
		t.Fatalf("referrer manifest %s", raw)
	}
	if got := e.readAll(v1.DescriptorEmptyJSON.Digest); string(got) != "{}" {
		t.Errorf("empty config blob %q", got)
	}
	sbom := e.readAll(doc.Layers[0].Digest)
	var bom struct {
		BOMFormat   string `json:"bomFormat"`
		SpecVersion string `json:"specVersion"`
		Components  []struct {
			PURL string `json:"purl"`
		} `json:"components"`
		Vulnerabilities []any `json:"vulnerabilities"`
	}
	if err := json.Unmarshal(sbom, &bom); err != nil {
		t.Fatal(err)
	}
	var purls []string
	for _, c := range bom.Components {
		purls = append(purls, c.PURL)
	}
	if bom.BOMFormat != "CycloneDX" || bom.SpecVersion != "1.6" || int64(len(sbom)) != doc.Layers[0].Size ||
		!strings.Contains(strings.Join(purls, " "), "pkg:apk/alpine/musl@1.1.20-r4") || len(bom.Vulnerabilities) != 0 {
		t.Errorf("SBOM: format %q %q, purls %q, %d vulnerabilities (want the inventory alone)", bom.BOMFormat, bom.SpecVersion,
			purls, len(bom.Vulnerabilities))
	}
	// The referrer is stored, not pushed: it is not queued for a scan.
	if _, err := e.st.ScanJob(e.ctx, store.ScanJobManifest, referrer.String()); !apperr.Is(err, apperr.ENOTFOUND) {
		t.Errorf("the SBOM referrer was queued for a scan: %v", err)
	}
}

func TestPushSBOMNeedsABlobWriter(t *testing.T) {
	e := newEnv(t)
	_, err := New(Options{Store: e.st, Blobs: e.reads, VulnDB: e.vdb, PushSBOM: true, Extract: extractConfig(t)})
	if !apperr.Is(err, apperr.EINVALID) || !strings.Contains(err.Error(), "BlobWriter") {
		t.Errorf("New with PushSBOM and read-only blobs = %v, want EINVALID naming BlobWriter", err)
	}
}
