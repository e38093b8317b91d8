package policy

import (
	"fmt"
	"time"
)

// APIVersion and Kind are what every policy document declares.
const (
	APIVersion = "customs.dev/v1alpha1"
	Kind       = "Policy"
)

// Policy is one policy document: a name, the scope it applies to, a mode and
// rules, each rule optional. Parse produces valid Policies; Compile checks a
// hand-built one again.
type Policy struct {
	APIVersion string   `yaml:"apiVersion" json:"apiVersion"`
	Kind       string   `yaml:"kind" json:"kind"`
	Metadata   Metadata `yaml:"metadata" json:"metadata"`
	Spec       Spec     `yaml:"spec" json:"spec"`

	// Revision is the stored revision of this document (assigned by the
	// store, 0 for a file). It is reported in decisions; it is not part of
	// the YAML.
	Revision int64 `yaml:"-" json:"-"`
	// Source is the file name (or other label) the document was parsed
	// from, for messages; "" when built in code.
	Source string `yaml:"-" json:"-"`
}

// Metadata names a policy.
type Metadata struct {
	// Name is unique among policies: lower-case letters, digits, '-', '_'
	// and '.', starting and ending with a letter or digit, at most 253 bytes.
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Annotations carry information that has no effect on decisions (the
	// Harbor settings conversion keeps scan-on-push here).
	Annotations map[string]string `yaml:"annotations,omitempty" json:"annotations,omitempty"`
}

// Spec is what a policy applies to and what it requires.
type Spec struct {
	Scope Scope `yaml:"scope,omitempty" json:"scope,omitzero"`
	// Mode says what a violation does; "" means enforce. A rule's own
	// mode, when set, overrides it for that rule.
	Mode            Mode                 `yaml:"mode,omitempty" json:"mode,omitempty"`
	Registries      *RegistriesRule      `yaml:"registries,omitempty" json:"registries,omitempty"`
	Tags            *TagsRule            `yaml:"tags,omitempty" json:"tags,omitempty"`
	Names           *NamesRule           `yaml:"names,omitempty" json:"names,omitempty"`
	Vulnerabilities *VulnerabilitiesRule `yaml:"vulnerabilities,omitempty" json:"vulnerabilities,omitempty"`
	Signatures      *SignaturesRule      `yaml:"signatures,omitempty" json:"signatures,omitempty"`
	Rego            *RegoRule            `yaml:"rego,omitempty" json:"rego,omitempty"`
	// ExternalImages says what the vulnerabilities and signatures rules do
	// with an image customs does not hold (Input.External), which has no
	// scan and no verifiable signature: Deny (also when empty: fail
	// closed), Warn or Allow; the decision says which applied. Registry,
	// tag, name and Rego rules apply to such images as to any other.
	ExternalImages ExternalAction `yaml:"externalImages,omitempty" json:"externalImages,omitempty"`
	// Admission holds settings only Kubernetes admission reads.
	Admission *AdmissionSettings `yaml:"admission,omitempty" json:"admission,omitempty"`
}

// ExternalAction is what a policy does where a rule cannot be checked on an
// image customs does not hold.
type ExternalAction string

// External actions.
const (
	// ExternalDeny refuses the image (in the rule's mode).
	ExternalDeny ExternalAction = "deny"
	// ExternalWarn lets it through with a warning.
	ExternalWarn ExternalAction = "warn"
	// ExternalAllow lets it through with a note in the decision.
	ExternalAllow ExternalAction = "allow"
)

// AdmissionSettings are a policy's Kubernetes admission settings.
type AdmissionSettings struct {
	// Mutate, when false, stops the mutating webhook from rewriting the
	// tags of images this policy applies to into tag@digest (for GitOps
	// users whose controllers would see the change as drift). nil means
	// true.
	Mutate *bool `yaml:"mutate,omitempty" json:"mutate,omitempty"`
}

// Scope selects the images a policy applies to. Every selector that is set
// must match; an empty Scope is the cluster-wide default. Within a
// selector, any listed value may match. docs/policy.md explains how scopes
// rank (see also Engine.Evaluate).
type Scope struct {
	// Environments are environment names (any names: development,
	// staging, production, ...), matched exactly against Input.Environment.
	Environments []string `yaml:"environments,omitempty" json:"environments,omitempty"`
	// Namespaces are Kubernetes namespace names, matched exactly.
	Namespaces []string `yaml:"namespaces,omitempty" json:"namespaces,omitempty"`
	// Projects are customs project names, matched exactly. A policy with
	// projects is a project policy: it applies wherever the image of that
	// project is used, in addition to the runtime policy (see Evaluate).
	Projects []string `yaml:"projects,omitempty" json:"projects,omitempty"`
	// Repositories are host-anchored globs over the normalised image name
	// (registry/repository), as in RegistriesRule.
	Repositories []string `yaml:"repositories,omitempty" json:"repositories,omitempty"`
}

// IsZero reports whether s selects everything (the cluster-wide default).
func (s Scope) IsZero() bool {
	return len(s.Environments) == 0 && len(s.Namespaces) == 0 && len(s.Projects) == 0 && len(s.Repositories) == 0
}

// Mode says what a policy's violations do.
type Mode string

// Modes.
const (
	// Enforce denies an image that violates the policy.
	Enforce Mode = "enforce"
	// Warn allows it, with the violations as warnings.
	Warn Mode = "warn"
	// Audit allows it silently; the violations are in the decision for
	// the audit trail only.
	Audit Mode = "audit"
)

// RegistriesRule allows and denies registries and repositories. Each entry
// is a host-anchored glob: "registry.corp.example" (every repository on
// that host, any port), "*.corp.example" (any host ending in
// ".corp.example"), "registry.corp.example:5000/team/*" (one path segment
// below team on port 5000), "gcr.io/kuar-demo/**" (everything below
// kuar-demo). Docker Hub names are normalised: "docker.io/nginx" is
// "docker.io/library/nginx".
type RegistriesRule struct {
	// Allowed, when not empty, lists the only places images may come from.
	Allowed []string `yaml:"allowed,omitempty" json:"allowed,omitempty"`
	// Denied lists places images may not come from; it wins over Allowed.
	Denied []string `yaml:"denied,omitempty" json:"denied,omitempty"`
	// Mode overrides the policy's mode for this rule.
	Mode Mode `yaml:"mode,omitempty" json:"mode,omitempty"`
}

// TagsRule restricts tags.
type TagsRule struct {
	// Deny lists tag globs ('*' matches any run of characters) that may
	// not be used; "latest" also catches a reference with neither tag nor
	// digest, which means latest.
	Deny []string `yaml:"deny,omitempty" json:"deny,omitempty"`
	// RequireDigest requires the reference to name a digest
	// (name@sha256:...), as written, not as resolved.
	RequireDigest bool `yaml:"requireDigest,omitempty" json:"requireDigest,omitempty"`
	// Mode overrides the policy's mode for this rule.
	Mode Mode `yaml:"mode,omitempty" json:"mode,omitempty"`
}

// NamesRule requires a naming convention.
type NamesRule struct {
	// Pattern is an RE2 regular expression the repository path (without
	// the registry, e.g. "kuard/kuard-amd64") must match entirely.
	Pattern string `yaml:"pattern" json:"pattern"`
	// Mode overrides the policy's mode for this rule.
	Mode Mode `yaml:"mode,omitempty" json:"mode,omitempty"`
}

// VulnerabilitiesRule gates on scan findings.
type VulnerabilitiesRule struct {
	// MaxSeverity is the threshold: findings rated at or above it deny the
	// image ("equal or higher than the threshold", as Harbor says). nil
	// means no threshold.
	MaxSeverity *Severity `yaml:"maxSeverity,omitempty" json:"maxSeverity,omitempty"`
	// RequireScan denies images without a finished scan. nil means true
	// when MaxSeverity is set (a threshold cannot be checked without a
	// scan), false otherwise.
	RequireScan *bool `yaml:"requireScan,omitempty" json:"requireScan,omitempty"`
	// AllowUnscannable lets an artifact the scanner cannot scan (scan
	// status unsupported: not an image, such as a signature or an SBOM, or
	// an unsupported layer type) through a scan requirement, with a note.
	// false fails closed.
	AllowUnscannable bool `yaml:"allowUnscannable,omitempty" json:"allowUnscannable,omitempty"`
	// IgnoreUnfixed leaves out findings that have no fix.
	IgnoreUnfixed bool `yaml:"ignoreUnfixed,omitempty" json:"ignoreUnfixed,omitempty"`
	// UnknownAs is how a finding of unknown severity counts; nil means
	// critical (fail closed). Ignore leaves such findings out.
	UnknownAs *UnknownAs `yaml:"unknownAs,omitempty" json:"unknownAs,omitempty"`
	// UseSystemAllowlist says whether the system allowlist
	// (Input.SystemAllowlist) applies too; nil means true.
	UseSystemAllowlist *bool `yaml:"useSystemAllowlist,omitempty" json:"useSystemAllowlist,omitempty"`
	// Allowlist lists this policy's own exceptions (a project's CVE
	// allowlist is the allowlist of its project policy).
	Allowlist []AllowlistEntry `yaml:"allowlist,omitempty" json:"allowlist,omitempty"`
	// Mode overrides the policy's mode for this rule.
	Mode Mode `yaml:"mode,omitempty" json:"mode,omitempty"`
}

// ScanRequired reports whether the rule denies images without a finished
// scan, after defaults.
func (r *VulnerabilitiesRule) ScanRequired() bool {
	if r.RequireScan != nil {
		return *r.RequireScan
	}
	return r.MaxSeverity != nil
}

// UnknownLevel is how a finding of unknown severity counts, after defaults;
// ok is false when such findings are ignored.
func (r *VulnerabilitiesRule) UnknownLevel() (level Severity, ok bool) {
	if r.UnknownAs == nil {
		return Critical, true
	}
	if *r.UnknownAs == UnknownIgnore {
		return Unknown, false
	}
	return Severity(*r.UnknownAs), true
}

// SystemAllowlistApplies reports whether the system allowlist applies,
// after defaults.
func (r *VulnerabilitiesRule) SystemAllowlistApplies() bool {
	return r.UseSystemAllowlist == nil || *r.UseSystemAllowlist
}

// UnknownAs is a severity level, or UnknownIgnore.
type UnknownAs Severity

// UnknownIgnore leaves findings of unknown severity out.
const UnknownIgnore = UnknownAs(Unknown)

// String returns the level's name, or "ignore".
func (u UnknownAs) String() string {
	if u == UnknownIgnore {
		return "ignore"
	}
	return Severity(u).String()
}

// MarshalText writes String.
func (u UnknownAs) MarshalText() ([]byte, error) {
	if Severity(u) < Unknown || Severity(u) > Critical {
		return nil, fmt.Errorf("invalid unknownAs %d", int8(u))
	}
	return []byte(u.String()), nil
}

// UnmarshalText reads a level name or "ignore".
func (u *UnknownAs) UnmarshalText(b []byte) error {
	if string(b) == "ignore" {
		*u = UnknownIgnore
		return nil
	}
	s, err := ParseSeverity(string(b))
	if err != nil || s == Unknown {
		return fmt.Errorf("%q is not one of %s", b, unknownAsWords)
	}
	*u = UnknownAs(s)
	return nil
}

const unknownAsWords = "none, low, medium, high, critical, ignore"

// AllowlistEntry is one exception to the vulnerabilities rule.
type AllowlistEntry struct {
	// ID is an advisory id or one of its aliases (CVE-2019-14697,
	// GHSA-..., ALPINE-CVE-...), compared case-insensitively.
	ID string `yaml:"id" json:"id"`
	// Package, when set, limits the entry to findings in that package
	// (its name, or the source package it was built from).
	Package string `yaml:"package,omitempty" json:"package,omitempty"`
	// Repository, when set, limits the entry to images whose name matches
	// this host-anchored glob.
	Repository string `yaml:"repository,omitempty" json:"repository,omitempty"`
	// Expires, when set, is when the entry stops applying.
	Expires *time.Time `yaml:"expires,omitempty" json:"expires,omitempty"`
	Reason  string     `yaml:"reason,omitempty" json:"reason,omitempty"`
	AddedBy string     `yaml:"addedBy,omitempty" json:"addedBy,omitempty"`
}

// SignaturesRule requires signatures.
type SignaturesRule struct {
	// Required turns the rule on: with no Signers, any verified signature
	// will do (Harbor's content trust, Portieris' trust).
	Required bool `yaml:"required" json:"required"`
	// Signers, when listed, are the signers of which at least one must
	// have signed the image.
	Signers []Signer `yaml:"signers,omitempty" json:"signers,omitempty"`
	// Mode overrides the policy's mode for this rule.
	Mode Mode `yaml:"mode,omitempty" json:"mode,omitempty"`
}

// Signer is one accepted signer: a public key, or a keyless identity (an
// OIDC issuer and a subject). Exactly one of Key and Keyless is set.
type Signer struct {
	// Name labels the signer in messages.
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Key is a PEM-encoded PKIX public key.
	Key     string   `yaml:"key,omitempty" json:"key,omitempty"`
	Keyless *Keyless `yaml:"keyless,omitempty" json:"keyless,omitempty"`
}

// Keyless is a keyless (Fulcio-style) signing identity.
type Keyless struct {
	// Issuer is the OIDC issuer URL (https).
	Issuer string `yaml:"issuer" json:"issuer"`
	// Subject is the certificate identity (an email or URI); '*' matches
	// any run of characters.
	Subject string `yaml:"subject" json:"subject"`
}

// RegoRule holds custom Rego modules. Together they must define
// data.customs.deny, a set of strings, each a reason to deny (in Rego v1:
// `deny contains msg if { ... }` in `package customs`).
type RegoRule struct {
	Modules []RegoModule `yaml:"modules" json:"modules"`
	// Mode overrides the policy's mode for this rule.
	Mode Mode `yaml:"mode,omitempty" json:"mode,omitempty"`
}

// RegoModule is one Rego source file.
type RegoModule struct {
	// Name is the module's file name in messages ("naming.rego").
	Name   string `yaml:"name" json:"name"`
	Source string `yaml:"source" json:"source"`

	// line is where Source starts in the policy file (0 when unknown), so
	// that Rego errors can name the file's line.
	line int
}

// ruleMode returns a rule's own mode, "" for a nil rule.
func (r *RegistriesRule) ruleMode() Mode {
	if r == nil {
		return ""
	}
	return r.Mode
}

func (r *TagsRule) ruleMode() Mode {
	if r == nil {
		return ""
	}
	return r.Mode
}

func (r *NamesRule) ruleMode() Mode {
	if r == nil {
		return ""
	}
	return r.Mode
}

func (r *VulnerabilitiesRule) ruleMode() Mode {
	if r == nil {
		return ""
	}
	return r.Mode
}

func (r *SignaturesRule) ruleMode() Mode {
	if r == nil {
		return ""
	}
	return r.Mode
}

func (r *RegoRule) ruleMode() Mode {
	if r == nil {
		return ""
	}
	return r.Mode
}
