package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/customs-dev/customs/internal/vulndb/severity"
)

// Property names customs adds to CycloneDX components.
const (
	cdxPropEcosystem     = "customs:package:ecosystem"
	cdxPropSourceName    = "customs:package:sourceName"
	cdxPropSourceVersion = "customs:package:sourceVersion"
	cdxPropLayer         = "customs:package:layerDiffID"
	cdxPropFixStatus     = "customs:finding:fixStatus"
)

// EncodeCycloneDX writes r as a CycloneDX 1.6 JSON BOM (with
// github.com/CycloneDX/cyclonedx-go, the format's reference Go library):
//
//   - metadata: the creation time, customs as the tool, and the subject as
//     a container component whose version is the manifest digest;
//   - components: the OS release (type operating-system) and every package
//     (type library) with its purl, ecosystem, source package, layer and
//     the paths it was found at as evidence;
//   - dependencies: the subject depends on every component;
//   - vulnerabilities: one per advisory, with its aliases as references,
//     every distinct rating (severity, CVSS score, method and vector, and
//     where the rating came from), the fix in words as recommendation,
//     the advisory's links, and affects naming each vulnerable component
//     with its installed version (affected) and the lowest fixed version
//     (unaffected).
//
// The serial number is derived from the content (see Options.Created), so
// the same report gives the same bytes.
func EncodeCycloneDX(w io.Writer, r *Report, opts Options) error {
	opts = opts.withDefaults(r)
	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + documentUUID(r, opts, FormatCycloneDX).String()
	const subjectRef = "subject"
	subject := &cdx.Component{
		BOMRef:  subjectRef,
		Type:    cdx.ComponentTypeContainer,
		Name:    opts.Subject,
		Version: r.Digest,
	}
	if r.Platform != "" {
		subject.Properties = &[]cdx.Property{{Name: "customs:image:platform", Value: r.Platform}}
	}
	bom.Metadata = &cdx.Metadata{
		Timestamp: opts.Created.Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type:    cdx.ComponentTypeApplication,
			Name:    opts.ToolName,
			Version: opts.ToolVersion,
		}}},
		Component: subject,
	}

	pkgs, refs := sbomPackages(r)
	comps := make([]cdx.Component, 0, len(pkgs)+1)
	deps := make([]string, 0, len(pkgs)+1)
	if d := r.Distro; d != nil && d.ID != "" {
		ref := "os:" + d.ID + "@" + d.VersionID
		comps = append(comps, cdx.Component{
			BOMRef:      ref,
			Type:        cdx.ComponentTypeOS,
			Name:        d.ID,
			Version:     d.VersionID,
			Description: d.PrettyName,
		})
		deps = append(deps, ref)
	}
	for _, p := range pkgs {
		c := cdx.Component{
			BOMRef:     "package-" + p.id,
			Type:       cdx.ComponentTypeLibrary,
			Name:       p.Name,
			Version:    p.Version,
			PackageURL: p.PURL,
		}
		props := []cdx.Property{{Name: cdxPropEcosystem, Value: p.Ecosystem}}
		if p.SourceName != "" {
			props = append(props, cdx.Property{Name: cdxPropSourceName, Value: p.SourceName})
		}
		if p.SourceVersion != "" {
			props = append(props, cdx.Property{Name: cdxPropSourceVersion, Value: p.SourceVersion})
		}
		if p.Layer != "" {
			props = append(props, cdx.Property{Name: cdxPropLayer, Value: p.Layer})
		}
		c.Properties = &props
		var occ []cdx.EvidenceOccurrence
		for _, l := range p.Locations {
			if l != "" {
				occ = append(occ, cdx.EvidenceOccurrence{Location: l})
			}
		}
		if len(occ) > 0 {
			c.Evidence = &cdx.Evidence{Occurrences: &occ}
		}
		comps = append(comps, c)
		deps = append(deps, c.BOMRef)
	}
	bom.Components = &comps
	bom.Dependencies = &[]cdx.Dependency{{Ref: subjectRef, Dependencies: &deps}}

	ids, byID := findingsByAdvisory(r)
	vulns := make([]cdx.Vulnerability, 0, len(ids))
	for _, id := range ids {
		vulns = append(vulns, cdxVulnerability(id, byID[id], refs))
	}
	if len(vulns) > 0 {
		bom.Vulnerabilities = &vulns
	}

	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	enc.SetEscapeHTML(false)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		return fmt.Errorf("encoding CycloneDX: %w", err)
	}
	return nil
}

// cdxVulnerability is the vulnerability entry of advisory id, whose
// findings are fs.
func cdxVulnerability(id string, fs []Finding, refs map[string]string) cdx.Vulnerability {
	first := fs[0]
	v := cdx.Vulnerability{
		BOMRef:      "vuln:" + id,
		ID:          id,
		Source:      &cdx.Source{Name: "OSV"},
		Description: first.Summary,
	}
	if len(first.Aliases) > 0 {
		rs := make([]cdx.VulnerabilityReference, 0, len(first.Aliases))
		for _, a := range first.Aliases {
			if a != "" && a != id {
				rs = append(rs, cdx.VulnerabilityReference{ID: a, Source: aliasSource(a)})
			}
		}
		if len(rs) > 0 {
			v.References = &rs
		}
	}
	var ratings []cdx.VulnerabilityRating
	var seenRatings []severity.Rating
	var fixes []string
	var affects []cdx.Affects
	var statuses []string
	for _, f := range fs {
		if !slices.Contains(seenRatings, f.Severity) {
			seenRatings = append(seenRatings, f.Severity)
			ratings = append(ratings, cdxRating(f.Severity))
		}
		fix := f.Fix
		if len(f.FixedVersions) == 0 {
			fix = f.Package.Name + " " + f.InstalledVersion + ": " + f.Fix
		}
		if !slices.Contains(fixes, fix) {
			fixes = append(fixes, fix)
		}
		if !slices.Contains(statuses, string(f.Status)) {
			statuses = append(statuses, string(f.Status))
		}
		ref, ok := refs[packageKey(f.Package)]
		if !ok {
			continue // not in the inventory the report carries: nothing to point at
		}
		var versions []cdx.AffectedVersions
		if f.InstalledVersion != "" {
			versions = append(versions, cdx.AffectedVersions{Version: f.InstalledVersion, Status: cdx.VulnerabilityStatusAffected})
		}
		if len(f.FixedVersions) > 0 && f.FixedVersions[0] != "" {
			versions = append(versions, cdx.AffectedVersions{Version: f.FixedVersions[0], Status: cdx.VulnerabilityStatusNotAffected})
		}
		a := cdx.Affects{Ref: "package-" + ref}
		if len(versions) > 0 {
			a.Range = &versions
		}
		affects = append(affects, a)
	}
	v.Ratings = &ratings
	v.Recommendation = strings.Join(fixes, "\n")
	if len(affects) > 0 {
		v.Affects = &affects
	}
	v.Properties = &[]cdx.Property{{Name: cdxPropFixStatus, Value: strings.Join(statuses, ",")}}
	var advs []cdx.Advisory
	for _, ref := range first.References {
		if !webURL(ref.URL) {
			continue
		}
		advs = append(advs, cdx.Advisory{Title: ref.Type, URL: ref.URL})
	}
	if len(advs) > 0 {
		v.Advisories = &advs
	}
	return v
}

// aliasSource names where an alias id is published.
func aliasSource(id string) *cdx.Source {
	switch {
	case strings.HasPrefix(id, "CVE-"):
		return &cdx.Source{Name: "NVD", URL: "https://nvd.nist.gov/vuln/detail/" + id}
	case strings.HasPrefix(id, "GHSA-"):
		return &cdx.Source{Name: "GitHub", URL: "https://github.com/advisories/" + id}
	}
	return &cdx.Source{Name: "OSV"}
}

// cdxRating is a finding's rating in CycloneDX terms: the level, the CVSS
// score, method and vector when it comes from one, and customs' name for
// where it came from (advisory-cvss-v3, cve-feed, override, ...).
func cdxRating(r severity.Rating) cdx.VulnerabilityRating {
	out := cdx.VulnerabilityRating{
		Severity:      cdxSeverity(r.Level),
		Source:        &cdx.Source{Name: string(r.Source)},
		Justification: r.Detail,
	}
	if r.Vector != "" {
		score := r.Score
		out.Score = &score
		out.Vector = r.Vector
		switch {
		case strings.HasPrefix(r.Vector, "CVSS:4.0/"):
			out.Method = cdx.ScoringMethodCVSSv4
		case strings.HasPrefix(r.Vector, "CVSS:3.1/"):
			out.Method = cdx.ScoringMethodCVSSv31
		case strings.HasPrefix(r.Vector, "CVSS:3.0/"):
			out.Method = cdx.ScoringMethodCVSSv3
		default:
			out.Method = cdx.ScoringMethodCVSSv2
		}
	}
	return out
}

func cdxSeverity(l severity.Level) cdx.Severity {
	switch l {
	case severity.Critical:
		return cdx.SeverityCritical
	case severity.High:
		return cdx.SeverityHigh
	case severity.Medium:
		return cdx.SeverityMedium
	case severity.Low:
		return cdx.SeverityLow
	case severity.None:
		return cdx.SeverityNone
	}
	return cdx.SeverityUnknown
}
