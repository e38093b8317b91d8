package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Input is what a door knows about one use of one image. Doors convert
// their own types into it (policy depends on no scanner or database
// package). Its JSON form is what `customs policy test --input` reads and,
// without SystemAllowlist, what Rego modules see as input.
type Input struct {
	// Image is the reference as written (ParseImage normalises it).
	Image Image `json:"image"`
	// Digest is the manifest digest the reference resolved to ("" when
	// not resolved, e.g. offline); the scan and signatures are of it.
	Digest string `json:"digest,omitempty"`
	// Environment, Namespace and Project are where the image is used and
	// where it is stored; "" when the door does not know (the registry
	// door has a project and no namespace; admission has a namespace and
	// an environment, and a project when the image is in customs).
	Environment string `json:"environment,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	Project     string `json:"project,omitempty"`
	// Scan is the scan of Digest; nil when there is none (never scanned,
	// or the image is not in customs).
	Scan *ScanSummary `json:"scan"`
	// Signatures are the verified signatures of Digest; nil when
	// signature verification was not performed (then a signature
	// requirement fails closed).
	Signatures *Signatures `json:"signatures"`
	// SystemAllowlist is the system-wide allowlist, kept outside
	// policies; it applies to every vulnerabilities rule that does not
	// set useSystemAllowlist: false.
	SystemAllowlist SystemAllowlist `json:"systemAllowlist,omitzero"`
	// External is true when the image is not held by customs (admission of
	// an image from another registry). Where such an image has no Scan
	// (customs never scanned its digest) or no Signatures, the
	// vulnerabilities and signatures rules follow the policy's
	// externalImages setting instead of failing for want of them; a scan
	// customs holds of the same digest is used as for any image.
	External bool `json:"external,omitempty"`
	// Annotations are what the door was told about this use of the image
	// (the ImagePolicyWebhook's *.image-policy.k8s.io/* annotations, for
	// break-glass rules); Rego modules see them as input.annotations.
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ScanStatus is where the scan of an image stands; the values are the
// scanner's.
type ScanStatus string

// Scan statuses.
const (
	ScanQueued      ScanStatus = "queued"
	ScanRunning     ScanStatus = "running"
	ScanDone        ScanStatus = "done"
	ScanFailed      ScanStatus = "failed"
	ScanUnsupported ScanStatus = "unsupported"
)

// ScanSummary is the scan of one manifest.
type ScanSummary struct {
	Status ScanStatus `json:"status"`
	// Reason says why a scan failed or is unsupported.
	Reason string `json:"reason,omitempty"`
	// VulnDBRevision is the vulnerability database revision the findings
	// were matched against.
	VulnDBRevision int64 `json:"vulndbRevision,omitempty"`
	// MatchedAt is when the findings were computed; with Status and
	// VulnDBRevision it tells a cache that the findings changed.
	MatchedAt time.Time `json:"matchedAt,omitzero"`
	// Findings are every finding of a finished scan.
	Findings []Finding `json:"findings"`
}

// Counts are findings per severity.
type Counts struct {
	Critical int `json:"critical"`
	High     int `json:"high"`
	Medium   int `json:"medium"`
	Low      int `json:"low"`
	None     int `json:"none"`
	Unknown  int `json:"unknown"`
}

// Counts counts the findings per severity.
func (s *ScanSummary) Counts() Counts {
	var c Counts
	for i := range s.Findings {
		switch s.Findings[i].Severity {
		case Critical:
			c.Critical++
		case High:
			c.High++
		case Medium:
			c.Medium++
		case Low:
			c.Low++
		case None:
			c.None++
		default:
			c.Unknown++
		}
	}
	return c
}

// FixStatus says whether a fix exists; the values are the scanner's.
type FixStatus string

// Fix statuses.
const (
	Fixed   FixStatus = "fixed"    // a fixed version exists
	NoFix   FixStatus = "no-fix"   // no fix yet
	WontFix FixStatus = "wont-fix" // the distribution will not fix it
)

// Finding is one advisory affecting one installed package.
type Finding struct {
	// ID is the advisory id; Aliases its other ids (CVE ids).
	ID      string   `json:"id"`
	Aliases []string `json:"aliases,omitempty"`
	// Package is the installed package's name; SourcePackage the source
	// package it was built from, when it has one.
	Package       string `json:"package"`
	SourcePackage string `json:"sourcePackage,omitempty"`
	Installed     string `json:"installed"`
	// Fixed are the versions that fix it, lowest first; empty without fix.
	Fixed    []string `json:"fixed,omitempty"`
	Severity Severity `json:"severity"`
	// Status says whether a fix exists; "" means fixed when Fixed lists a
	// version, no-fix otherwise.
	Status FixStatus `json:"status,omitempty"`
}

// EffectiveStatus is Status, or for "" fixed when Fixed lists a version and
// no-fix otherwise.
func (f *Finding) EffectiveStatus() FixStatus {
	switch {
	case f.Status != "":
		return f.Status
	case len(f.Fixed) > 0:
		return Fixed
	}
	return NoFix
}

// Signatures are the result of signature verification.
type Signatures struct {
	// Verified are the signatures that verified; empty when the image is
	// not signed (or no signature verified).
	Verified []Signature `json:"verified"`
}

// Signature is one verified signature.
type Signature struct {
	// KeyFingerprint is "sha256:" and the hex SHA-256 of the signing
	// key's PKIX DER encoding, for key-based signatures.
	KeyFingerprint string `json:"keyFingerprint,omitempty"`
	// Issuer and Subject are the OIDC issuer and identity of a keyless
	// signature's certificate.
	Issuer  string `json:"issuer,omitempty"`
	Subject string `json:"subject,omitempty"`
}

// SystemAllowlist is the system allowlist (Harbor's), kept outside policy
// documents. A project's allowlist is the allowlist of its project policy.
type SystemAllowlist struct {
	// Revision identifies the entries; it is part of the decision cache
	// key, so change it whenever an entry changes.
	Revision string           `json:"revision,omitempty"`
	Entries  []AllowlistEntry `json:"entries,omitempty"`
}

// validate checks what evaluation relies on and names the bad field. It
// does not modify in.
func (in *Input) validate() error {
	if in.Image.Registry == "" || in.Image.Repository == "" {
		return fmt.Errorf("input image: registry and repository are required (got %q)", in.Image.String())
	}
	if strings.ContainsAny(in.Image.Registry, "/ ") {
		return fmt.Errorf("input image: registry %q is not a host", in.Image.Registry)
	}
	if strings.HasPrefix(in.Image.Repository, "/") || strings.HasSuffix(in.Image.Repository, "/") || strings.Contains(in.Image.Repository, "//") {
		return fmt.Errorf("input image: repository %q has an empty path segment", in.Image.Repository)
	}
	for rest := in.Image.Repository; ; {
		seg, tail, more := strings.Cut(rest, "/")
		if seg == "." || seg == ".." {
			return fmt.Errorf("input image: repository %q has a %q segment", in.Image.Repository, seg)
		}
		if !more {
			break
		}
		rest = tail
	}
	for i := range in.SystemAllowlist.Entries {
		if err := checkAdvisoryID(in.SystemAllowlist.Entries[i].ID); err != nil {
			return fmt.Errorf("input systemAllowlist.entries[%d].id: %v", i, err)
		}
	}
	if in.Scan != nil {
		switch in.Scan.Status {
		case ScanQueued, ScanRunning, ScanDone, ScanFailed, ScanUnsupported:
		default:
			return fmt.Errorf("input scan.status: %q is not one of queued, running, done, failed, unsupported", in.Scan.Status)
		}
		for i := range in.Scan.Findings {
			f := &in.Scan.Findings[i]
			if f.ID == "" {
				return fmt.Errorf("input scan.findings[%d].id is empty", i)
			}
			if f.Severity < Unknown || f.Severity > Critical {
				return fmt.Errorf("input scan.findings[%d].severity: %d is not a severity", i, f.Severity)
			}
			switch f.Status {
			case Fixed, NoFix, WontFix, "":
			default:
				return fmt.Errorf("input scan.findings[%d].status: %q is not one of fixed, no-fix, wont-fix", i, f.Status)
			}
		}
	}
	return nil
}

// MaxInputSize is the largest Input ParseInput reads.
const MaxInputSize = 32 << 20

// ParseInput reads an Input from JSON (the mock inputs of `customs policy
// test`): unknown fields are errors, image may be a reference string, and
// the result is checked as Evaluate checks it. Errors name the field.
func ParseInput(data []byte) (*Input, error) {
	if len(data) > MaxInputSize {
		return nil, fmt.Errorf("input is %d bytes, more than %d", len(data), MaxInputSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var in Input
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("input: %v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("input: more than one JSON value")
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	return &in, nil
}
