package scan

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/internal/store"
)

// attestationType is the annotation value buildx gives the attestation
// manifests it lists in an index (platform unknown/unknown); they are not
// images to scan.
const attestationType = "attestation-manifest"

// child is a platform manifest an index lists.
type child struct {
	Digest   digest.Digest
	Platform string
}

// parseChildren returns the manifests of index raw worth scanning: image
// manifests (and nested indexes), not attestations.
func parseChildren(raw []byte) ([]child, error) {
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, apperr.Errorf(apperr.EINVALID, "image index cannot be parsed: %v", err)
	}
	var out []child
	for _, m := range idx.Manifests {
		if m.Annotations["vnd.docker.reference.type"] == attestationType {
			continue
		}
		if !isImage(string(m.MediaType)) && !isIndex(string(m.MediaType)) {
			continue
		}
		d, err := digest.Parse(m.Digest.String())
		if err != nil {
			return nil, apperr.Errorf(apperr.EINVALID, "image index lists a bad digest %q: %v", m.Digest, err)
		}
		out = append(out, child{Digest: d, Platform: platformString(m.Platform)})
	}
	return out, nil
}

// indexChildren reads index d's blob and returns its platform manifests.
func (s *Scanner) indexChildren(ctx context.Context, d digest.Digest) ([]child, error) {
	raw, err := s.readBlob(ctx, d, readManifest, s.opts.MaxManifestBytes)
	if err != nil {
		return nil, err
	}
	return parseChildren(raw)
}

// runIndex summarises an image index once each platform manifest it lists
// has a final report: until then it queues the ones never scanned and
// defers itself.
func (s *Scanner) runIndex(ctx context.Context, repo string, m *store.Manifest, raw []byte, stage func(string)) outcome {
	children, err := parseChildren(raw)
	if err != nil {
		return final(err)
	}
	if len(children) == 0 {
		return final(apperr.Errorf(apperr.EUNSUPPORTED, "image index %s lists no image manifests", m.Digest))
	}
	digests := make([]string, len(children))
	for i, c := range children {
		digests[i] = c.Digest.String()
	}
	sums, err := s.st.ScanReportSummaries(ctx, digests)
	if err != nil {
		return retry(err)
	}
	waiting := 0
	jobs := map[string]*store.ScanJob{}
	for _, c := range children {
		j, err := s.st.ScanJob(ctx, store.ScanJobManifest, c.Digest.String())
		switch {
		case apperr.Is(err, apperr.ENOTFOUND):
			if _, ok := sums[c.Digest.String()]; ok {
				continue
			}
			j = &store.ScanJob{Kind: store.ScanJobManifest, Subject: c.Digest.String(), Repository: repo, Trigger: "index"}
			if _, err := s.st.EnqueueScanJob(ctx, j); err != nil {
				return retry(err)
			}
			s.poke()
			waiting++
		case err != nil:
			return retry(err)
		case j.Status == store.ScanQueued || j.Status == store.ScanRunning:
			waiting++
		}
		jobs[c.Digest.String()] = j
	}
	if waiting > 0 {
		stage(fmt.Sprintf("waiting for %d of %d platform scans", waiting, len(children)))
		return deferFor(s.opts.IndexWait)
	}
	stage("summarising platforms")
	rep, err := s.summarise(ctx, m, children, jobs)
	if err != nil {
		return retry(err)
	}
	if err := s.saveReport(ctx, rep); err != nil {
		return retry(fmt.Errorf("saving the report: %w", err))
	}
	return done()
}

// summarise builds an index's report from its platform manifests' reports:
// one summary per platform, and the distinct findings of them all.
func (s *Scanner) summarise(ctx context.Context, m *store.Manifest, children []child, jobs map[string]*store.ScanJob) (*report.Report, error) {
	now := s.now()
	rep := &report.Report{Digest: m.Digest.String(), MediaType: m.MediaType, MatchedAt: now, Findings: []report.Finding{}}
	seen := map[string]bool{}
	var failed []string
	var distro *inventory.Distro
	sameDistro := true
	done, unsupported := 0, 0
	for _, c := range children {
		ms := report.ManifestSummary{Digest: c.Digest.String(), Platform: c.Platform}
		sr, err := s.st.ScanReport(ctx, c.Digest.String())
		switch {
		case apperr.Is(err, apperr.ENOTFOUND):
			ms.Status = report.StatusFailed
			ms.Reason = "not scanned"
			if j := jobs[c.Digest.String()]; j != nil && j.LastError != "" {
				ms.Reason = j.LastError
			}
		case err != nil:
			return nil, err
		default:
			cr, err := decodeReport(sr)
			if err != nil {
				return nil, err
			}
			ms.Status, ms.Reason, ms.Packages, ms.Counts = cr.Status, cr.Reason, cr.Packages, cr.Counts
			if ms.Platform == "" {
				ms.Platform = cr.Platform
			}
			if cr.Status == report.StatusDone {
				done++
				rep.Packages = max(rep.Packages, cr.Packages)
				if rep.VulnDBRevision == 0 || cr.VulnDBRevision < rep.VulnDBRevision {
					rep.VulnDBRevision = cr.VulnDBRevision
				}
				if cr.ScannedAt.After(rep.ScannedAt) {
					rep.ScannedAt = cr.ScannedAt
				}
				if done == 1 {
					distro = cr.Distro
				} else if !sameDistroOf(distro, cr.Distro) {
					sameDistro = false
				}
				for _, f := range cr.Findings {
					if k := f.Key(); !seen[k] {
						seen[k] = true
						f.FirstSeen = f.FirstSeen.UTC()
						rep.Findings = append(rep.Findings, f)
					}
				}
			}
		}
		switch ms.Status {
		case report.StatusFailed:
			failed = append(failed, fmt.Sprintf("%s (%s): %s", orUnknown(ms.Platform), ms.Digest, ms.Reason))
		case report.StatusUnsupported:
			unsupported++
		}
		rep.Manifests = append(rep.Manifests, ms)
	}
	if sameDistro {
		rep.Distro = distro
	}
	report.SortFindings(rep.Findings)
	switch {
	case len(failed) > 0:
		rep.Status = report.StatusFailed
		rep.Reason = "platform scans failed: " + strings.Join(failed, "; ")
	case done == 0 && unsupported > 0:
		rep.Status = report.StatusUnsupported
		rep.Reason = "no platform manifest of the index is a scannable image"
	default:
		rep.Status = report.StatusDone
	}
	return rep, nil
}

func sameDistroOf(a, b *inventory.Distro) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ID == b.ID && a.VersionID == b.VersionID
}

func orUnknown(p string) string {
	if p == "" {
		return "unknown platform"
	}
	return p
}
