package report

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/customs-dev/customs/internal/vulndb/severity"
)

// sarifInformationURI is the tool's home in SARIF's tool.driver.
const sarifInformationURI = "https://github.com/customs-dev/customs"

// SARIFLevel is the SARIF result level of a severity level: critical and
// high are "error", medium "warning", low and none "note". Unknown is a
// "warning": nothing says the vulnerability is minor, so it is not shown
// as a note, nor as an error that nothing rated.
func SARIFLevel(l severity.Level) string {
	switch l {
	case severity.Critical, severity.High:
		return "error"
	case severity.Low, severity.None:
		return "note"
	}
	return "warning"
}

// securitySeverity is the "security-severity" property code scanning
// dashboards sort by: the CVSS score when the rating has one, else a score
// inside the level's CVSS band; "" for unknown.
func securitySeverity(r severity.Rating) string {
	if r.Vector != "" {
		return strconv.FormatFloat(r.Score, 'f', 1, 64)
	}
	switch r.Level {
	case severity.Critical:
		return "9.0"
	case severity.High:
		return "7.0"
	case severity.Medium:
		return "4.0"
	case severity.Low:
		return "0.1"
	case severity.None:
		return "0.0"
	}
	return ""
}

// The SARIF 2.1.0 objects customs writes: the subset of the format a
// vulnerability report needs, each field as the specification names it.
// (github.com/owenrumney/go-sarif was tried: it writes every optional
// array as [] and -1 sentinels into each result, and its
// AddPartialFingerprint panics on a nil map; these few types, validated
// against the OASIS schema in the tests, are smaller than working around
// that.)
type (
	sarifLog struct {
		Schema  string     `json:"$schema"`
		Version string     `json:"version"`
		Runs    []sarifRun `json:"runs"`
	}
	sarifRun struct {
		Tool       sarifTool      `json:"tool"`
		Results    []sarifResult  `json:"results"`
		Properties map[string]any `json:"properties,omitempty"`
	}
	sarifTool struct {
		Driver sarifDriver `json:"driver"`
	}
	sarifDriver struct {
		Name           string      `json:"name"`
		Version        string      `json:"version,omitempty"`
		InformationURI string      `json:"informationUri,omitempty"`
		Rules          []sarifRule `json:"rules"`
	}
	sarifRule struct {
		ID                   string             `json:"id"`
		ShortDescription     sarifText          `json:"shortDescription"`
		FullDescription      sarifText          `json:"fullDescription"`
		Help                 sarifMarkdown      `json:"help"`
		HelpURI              string             `json:"helpUri,omitempty"`
		DefaultConfiguration sarifConfiguration `json:"defaultConfiguration"`
		Properties           map[string]any     `json:"properties,omitempty"`
	}
	sarifText struct {
		Text string `json:"text"`
	}
	sarifMarkdown struct {
		Text     string `json:"text"`
		Markdown string `json:"markdown"`
	}
	sarifConfiguration struct {
		Level string `json:"level"`
	}
	sarifResult struct {
		RuleID              string            `json:"ruleId"`
		RuleIndex           int               `json:"ruleIndex"`
		Level               string            `json:"level"`
		Message             sarifText         `json:"message"`
		Locations           []sarifLocation   `json:"locations"`
		PartialFingerprints map[string]string `json:"partialFingerprints"`
		Properties          map[string]any    `json:"properties,omitempty"`
	}
	sarifLocation struct {
		PhysicalLocation sarifPhysicalLocation `json:"physicalLocation"`
	}
	sarifPhysicalLocation struct {
		ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
	}
	sarifArtifactLocation struct {
		URI string `json:"uri"`
	}
)

// sarifSchema is the address of the SARIF 2.1.0 (errata 01) schema.
const sarifSchema = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

// EncodeSARIF writes r as a SARIF 2.1.0 log of one run of customs:
//
//   - one rule per advisory: its summary, its aliases, the vulnerable
//     packages and their fixes as Markdown help, its first link as
//     helpUri, the level of its most severe finding as default level, and
//     "security-severity" and tags (vulnerability, security, the level)
//     as properties, as code scanning dashboards read them;
//   - one result per finding, in r's order: the rule, the level (see
//     SARIFLevel), a message naming package, installed version, advisory
//     and fix, the file the package was found in as location (the subject
//     when the package has none), a fingerprint of advisory and package,
//     and the package's purl, versions, layer and rating source as
//     properties.
func EncodeSARIF(w io.Writer, r *Report, opts Options) error {
	opts = opts.withDefaults(r)
	run := sarifRun{
		Tool: sarifTool{Driver: sarifDriver{Name: opts.ToolName, Version: opts.ToolVersion,
			InformationURI: sarifInformationURI, Rules: []sarifRule{}}},
		Results:    []sarifResult{},
		Properties: map[string]any{"subject": opts.Subject, "vulndbRevision": r.VulnDBRevision},
	}
	if r.Digest != "" {
		run.Properties["digest"] = r.Digest
	}
	if r.Platform != "" {
		run.Properties["platform"] = r.Platform
	}

	ids, byID := findingsByAdvisory(r)
	ruleIndex := make(map[string]int, len(ids))
	for _, id := range ids {
		fs := byID[id]
		worst := fs[0].Severity
		for _, f := range fs[1:] {
			if f.Severity.Level > worst.Level || (f.Severity.Level == worst.Level && f.Severity.Score > worst.Score) {
				worst = f.Severity
			}
		}
		short := fs[0].Summary
		if short == "" {
			short = id
		}
		full := short
		if len(fs[0].Aliases) > 0 {
			full += " (" + strings.Join(fs[0].Aliases, ", ") + ")"
		}
		help := ruleHelp(id, fs)
		rule := sarifRule{
			ID:                   id,
			ShortDescription:     sarifText{Text: short},
			FullDescription:      sarifText{Text: full},
			Help:                 sarifMarkdown{Text: help, Markdown: help},
			DefaultConfiguration: sarifConfiguration{Level: SARIFLevel(worst.Level)},
			Properties:           map[string]any{"tags": []string{"vulnerability", "security", worst.Level.String()}},
		}
		if s := securitySeverity(worst); s != "" {
			rule.Properties["security-severity"] = s
		}
		for _, ref := range fs[0].References {
			if webURL(ref.URL) {
				rule.HelpURI = ref.URL
				break
			}
		}
		ruleIndex[id] = len(run.Tool.Driver.Rules)
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, rule)
	}

	for _, f := range r.Findings {
		where := opts.Subject
		if len(f.Package.Locations) > 0 && f.Package.Locations[0] != "" {
			where = f.Package.Locations[0]
		}
		// A path as a relative URI reference: spaces, control characters
		// and non-ASCII bytes percent-encoded, "./" before a first segment
		// holding a colon.
		uri := (&url.URL{Path: where}).String()
		h := sha256.Sum256([]byte(f.Key()))
		res := sarifResult{
			RuleID:              f.AdvisoryID,
			RuleIndex:           ruleIndex[f.AdvisoryID],
			Level:               SARIFLevel(f.Severity.Level),
			Message:             sarifText{Text: resultMessage(f)},
			Locations:           []sarifLocation{{PhysicalLocation: sarifPhysicalLocation{ArtifactLocation: sarifArtifactLocation{URI: uri}}}},
			PartialFingerprints: map[string]string{"customsFinding/v1": hex.EncodeToString(h[:16])},
			Properties: map[string]any{
				"ecosystem":        f.Package.Ecosystem,
				"package":          f.Package.Name,
				"installedVersion": f.InstalledVersion,
				"fixStatus":        string(f.Status),
				"severity":         f.Severity.Level.String(),
				"severitySource":   string(f.Severity.Source),
			},
		}
		if f.Package.PURL != "" {
			res.Properties["purl"] = f.Package.PURL
		}
		if len(f.FixedVersions) > 0 {
			res.Properties["fixedVersions"] = f.FixedVersions
		}
		if f.Layer != "" {
			res.Properties["layer"] = f.Layer
		}
		run.Results = append(run.Results, res)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(sarifLog{Schema: sarifSchema, Version: "2.1.0", Runs: []sarifRun{run}}); err != nil {
		return fmt.Errorf("encoding SARIF: %w", err)
	}
	return nil
}

// resultMessage says what a finding is, in one sentence.
func resultMessage(f Finding) string {
	return fmt.Sprintf("%s %s (%s) is affected by %s, severity %s: %s.",
		f.Package.Name, f.InstalledVersion, f.Package.Ecosystem, idText(f), f.Severity.Level, f.Fix)
}

// ruleHelp is the Markdown help of an advisory's rule: each vulnerable
// package with its fix, then the links.
func ruleHelp(id string, fs []Finding) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n| Package | Installed | Fixed | Fix |\n| --- | --- | --- | --- |\n", id)
	for _, f := range fs {
		fixed := "none"
		if len(f.FixedVersions) > 0 {
			fixed = f.FixedVersions[0]
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", mdCell(f.Package.Name), mdCell(f.InstalledVersion), mdCell(fixed), mdCell(f.Fix))
	}
	if len(fs[0].References) > 0 {
		b.WriteString("\n")
		for _, ref := range fs[0].References {
			fmt.Fprintf(&b, "- %s: %s\n", mdCell(ref.Type), mdCell(ref.URL))
		}
	}
	return b.String()
}

// mdCell escapes a string for a Markdown table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ").Replace(s)
}
