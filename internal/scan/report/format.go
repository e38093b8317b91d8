package report

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Format is an output format of a report.
type Format string

// Formats.
const (
	// FormatTable is for people: one line per finding, highest severity
	// first, with the fix in words, and the counts.
	FormatTable Format = "table"
	// FormatJSON is the Report itself, as JSON.
	FormatJSON Format = "json"
	// FormatSARIF is SARIF 2.1.0: one rule per advisory, one result per
	// finding (code scanning dashboards read it).
	FormatSARIF Format = "sarif"
	// FormatCycloneDX is a CycloneDX 1.6 JSON BOM: the inventory's
	// packages as components with purls, and the findings as
	// vulnerabilities with ratings and affects.
	FormatCycloneDX Format = "cyclonedx"
	// FormatSPDX is an SPDX 2.3 JSON document: the inventory's packages
	// with purls as external references, contained by the image.
	FormatSPDX Format = "spdx"
)

// Formats lists every format, in the order help texts show them.
func Formats() []Format {
	return []Format{FormatTable, FormatJSON, FormatSARIF, FormatCycloneDX, FormatSPDX}
}

// ParseFormat reads a format name, case-insensitively; an unknown name is
// an error that lists the known ones.
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	for _, k := range Formats() {
		if f == k {
			return f, nil
		}
	}
	names := make([]string, 0, len(Formats()))
	for _, k := range Formats() {
		names = append(names, string(k))
	}
	return "", fmt.Errorf("unknown report format %q (want one of %s)", s, strings.Join(names, ", "))
}

// Options says what a report does not hold but formats need.
type Options struct {
	// Subject names what was scanned, for people and SBOM documents: an
	// image reference ("registry.example.com/team/app:1.2"), a path. ""
	// means the report's digest.
	Subject string
	// ToolName and ToolVersion name the producer ("customs", "v1.2.0");
	// "" means "customs" and "dev".
	ToolName, ToolVersion string
	// Created is the document's creation time in SBOM formats; zero means
	// the report's ScannedAt, then MatchedAt, then the current time. The
	// same report with the same Created encodes to the same bytes.
	Created time.Time
}

func (o Options) withDefaults(r *Report) Options {
	if o.Subject == "" {
		o.Subject = r.Digest
	}
	if o.Subject == "" {
		o.Subject = "unnamed"
	}
	if o.ToolName == "" {
		o.ToolName = "customs"
	}
	if o.ToolVersion == "" {
		o.ToolVersion = "dev"
	}
	for _, t := range []time.Time{o.Created, r.ScannedAt, r.MatchedAt, time.Now()} {
		if !t.IsZero() {
			o.Created = t.UTC().Truncate(time.Second)
			break
		}
	}
	return o
}

// Encode writes r to w in format f. The output of every format depends
// only on r and opts: findings and packages are written in a fixed order.
func Encode(w io.Writer, r *Report, f Format, opts Options) error {
	if r == nil {
		return fmt.Errorf("no report to encode")
	}
	opts = opts.withDefaults(r)
	switch f {
	case FormatTable:
		return EncodeTable(w, r, opts)
	case FormatJSON:
		return EncodeJSON(w, r)
	case FormatSARIF:
		return EncodeSARIF(w, r, opts)
	case FormatCycloneDX:
		return EncodeCycloneDX(w, r, opts)
	case FormatSPDX:
		return EncodeSPDX(w, r, opts)
	}
	_, err := ParseFormat(string(f))
	return err
}
