// Package report holds what a scan of one image manifest tells: its status,
// the vulnerability database revision it was matched against, the distro,
// per-severity counts and each finding with its fix in words. The scanner
// service (package scan) produces Reports and stores them; the output
// formats of this package render them.
package report

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/vulndb/match"
	"github.com/customs-dev/customs/internal/vulndb/osv"
	"github.com/customs-dev/customs/internal/vulndb/severity"
)

// Status is where the scan of a manifest stands.
type Status string

// Statuses. Queued and Running are transient; Done, Failed and Unsupported
// are final until the manifest is scanned again.
const (
	// StatusQueued: a scan job waits for a worker; the report holds the
	// previous scan's findings, if any.
	StatusQueued Status = "queued"
	// StatusRunning: a worker is scanning the manifest.
	StatusRunning Status = "running"
	// StatusDone: the manifest was inventoried and matched.
	StatusDone Status = "done"
	// StatusFailed: the scan failed; Reason says why. Failures are retried
	// with backoff until the attempts run out.
	StatusFailed Status = "failed"
	// StatusUnsupported: the manifest cannot be scanned (an artifact that
	// is not an image, an unsupported layer media type); Reason says why.
	// It is not retried.
	StatusUnsupported Status = "unsupported"
)

// Final reports whether s is a status a scan ends in.
func (s Status) Final() bool {
	return s == StatusDone || s == StatusFailed || s == StatusUnsupported
}

// Report is the scan of one manifest: an image manifest (one platform), or
// an image index whose report summarises its children's (Manifests).
type Report struct {
	// Digest is the manifest's digest ("sha256:…").
	Digest string `json:"digest"`
	// MediaType is the manifest's media type.
	MediaType string `json:"mediaType,omitempty"`
	// Platform is "os/arch[/variant]" of an image manifest when known
	// (from its config, or from the index that lists it); "" otherwise.
	Platform string `json:"platform,omitempty"`
	Status   Status `json:"status"`
	// Reason says why the scan failed or is unsupported; "" otherwise.
	Reason string `json:"reason,omitempty"`
	// VulnDBRevision is the vulnerability database revision the findings
	// were matched against (0: none yet).
	VulnDBRevision int64 `json:"vulndbRevision"`
	// ScannedAt is when the layers were last inventoried; MatchedAt when
	// the findings were last computed (a vulnerability database update
	// re-matches the stored inventory without reading layers, moving
	// MatchedAt but not ScannedAt). Zero when never.
	ScannedAt time.Time `json:"scannedAt,omitzero"`
	MatchedAt time.Time `json:"matchedAt,omitzero"`
	// Distro is the operating system release found; nil when none.
	Distro *inventory.Distro `json:"distro,omitempty"`
	// Packages counts the inventory's packages.
	Packages int `json:"packages"`
	// Counts are the findings per severity level.
	Counts Counts `json:"counts"`
	// Findings are sorted by severity (highest first), then advisory id,
	// then package (see SortFindings).
	Findings []Finding `json:"findings"`
	// Manifests summarises the children of an image index, one per
	// platform manifest, in the index's order; empty for an image.
	Manifests []ManifestSummary `json:"manifests,omitempty"`
	// Inventory is the inventory the findings come from, for SBOM
	// encoders; the scanner's API leaves it out of report responses
	// (nil), and fills it for SBOM requests and the standalone CLI.
	Inventory *inventory.Inventory `json:"inventory,omitempty"`
}

// ManifestSummary is one child manifest of an image index, as the index's
// report summarises it.
type ManifestSummary struct {
	Digest   string `json:"digest"`
	Platform string `json:"platform,omitempty"`
	Status   Status `json:"status"`
	Reason   string `json:"reason,omitempty"`
	Packages int    `json:"packages"`
	Counts   Counts `json:"counts"`
}

// Counts are how many findings there are per severity level.
type Counts struct {
	Critical int `json:"critical"`
	High     int `json:"high"`
	Medium   int `json:"medium"`
	Low      int `json:"low"`
	None     int `json:"none"`
	Unknown  int `json:"unknown"`
}

// Add counts one finding of level l (a level outside the scale counts as
// unknown).
func (c *Counts) Add(l severity.Level) {
	switch l {
	case severity.Critical:
		c.Critical++
	case severity.High:
		c.High++
	case severity.Medium:
		c.Medium++
	case severity.Low:
		c.Low++
	case severity.None:
		c.None++
	default:
		c.Unknown++
	}
}

// Total is the number of findings counted.
func (c Counts) Total() int {
	return c.Critical + c.High + c.Medium + c.Low + c.None + c.Unknown
}

// Plus returns the sum of c and d.
func (c Counts) Plus(d Counts) Counts {
	return Counts{
		Critical: c.Critical + d.Critical, High: c.High + d.High, Medium: c.Medium + d.Medium,
		Low: c.Low + d.Low, None: c.None + d.None, Unknown: c.Unknown + d.Unknown,
	}
}

// CountFindings counts fs by severity level.
func CountFindings(fs []Finding) Counts {
	var c Counts
	for i := range fs {
		c.Add(fs[i].Severity.Level)
	}
	return c
}

// Finding is one advisory affecting one installed package.
type Finding struct {
	AdvisoryID string `json:"advisoryID"`
	// Aliases are the advisory's aliases and upstream ids (CVE ids).
	Aliases []string `json:"aliases,omitempty"`
	// Package is the installed package: ecosystem, name, version, and the
	// source package it was built from when it has one (Debian and
	// Alpine advisories are keyed by source package).
	Package inventory.Package `json:"package"`
	// InstalledVersion is the package's installed version.
	InstalledVersion string `json:"installedVersion"`
	// FixedVersions are the versions that fix the advisory above the
	// installed one, lowest first; empty when there is no fix.
	FixedVersions []string `json:"fixedVersions,omitempty"`
	// Status says whether a fix exists (fixed, no-fix, wont-fix).
	Status match.Status `json:"status"`
	// Severity is the rating and its source (advisory CVSS, database
	// severity, CVE feed, operator override, or unknown).
	Severity severity.Rating `json:"severity"`
	// Layer is the diffID of the layer that introduced the package; ""
	// when unknown (a plain directory scan).
	Layer   string `json:"layer,omitempty"`
	Summary string `json:"summary,omitempty"`
	// References are the advisory's links.
	References []osv.Reference `json:"references,omitempty"`
	// Fix says what to do, in words: "upgrade musl from 1.1.20-r4 to
	// 1.1.20-r5 or later", "no fix available yet", ...
	Fix string `json:"fix"`
	// FirstSeen is when this advisory was first found affecting this
	// package on this manifest (kept across rescans and database updates);
	// zero when not tracked (the standalone CLI).
	FirstSeen time.Time `json:"firstSeen,omitzero"`
}

// Key identifies a finding within a report: the advisory and the package
// (ecosystem, name, installed version). FirstSeen is kept per Key.
func (f *Finding) Key() string {
	return f.AdvisoryID + "\x00" + f.Package.Ecosystem + "\x00" + f.Package.Name + "\x00" + f.InstalledVersion
}

// FromMatch turns a matcher finding into a report finding, with its fix in
// words and no FirstSeen. The result shares no slice with m.
func FromMatch(m match.Finding) Finding {
	pkg := m.Package
	pkg.Locations = slices.Clone(pkg.Locations)
	f := Finding{
		AdvisoryID:       m.AdvisoryID,
		Aliases:          slices.Clone(m.Aliases),
		Package:          pkg,
		InstalledVersion: m.Package.Version,
		FixedVersions:    slices.Clone(m.Fixed),
		Status:           m.Status,
		Severity:         m.Severity,
		Layer:            m.Package.Layer,
		Summary:          m.Summary,
		References:       slices.Clone(m.References),
	}
	f.Fix = FixText(f)
	return f
}

// FixText says in words how to fix f: "upgrade NAME from INSTALLED to
// FIXED or later" with the lowest fixed version above the installed one;
// "no fix available yet" without one; and for a fix the distribution will
// not make, "no fix: the distribution will not fix this in this release".
func FixText(f Finding) string {
	switch {
	case len(f.FixedVersions) > 0:
		return fmt.Sprintf("upgrade %s from %s to %s or later", f.Package.Name, f.InstalledVersion, f.FixedVersions[0])
	case f.Status == match.StatusWontFix:
		return "no fix: the distribution will not fix this in this release"
	default:
		return "no fix available yet"
	}
}

// SortFindings orders fs by severity (level, then CVSS score) highest
// first, then advisory id, then package ecosystem, name and installed
// version.
func SortFindings(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(b.Severity.Level, a.Severity.Level),
			cmp.Compare(b.Severity.Score, a.Severity.Score),
			cmp.Compare(a.AdvisoryID, b.AdvisoryID),
			cmp.Compare(a.Package.Ecosystem, b.Package.Ecosystem),
			cmp.Compare(a.Package.Name, b.Package.Name),
			cmp.Compare(a.InstalledVersion, b.InstalledVersion),
		)
	})
}
