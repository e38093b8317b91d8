// Package ecosystem holds the version rules of every package ecosystem
// customs matches advisories for, and the handling of release-scoped OSV
// ecosystems ("Alpine:v3.9", "Debian:12", "Ubuntu:Pro:18.04:LTS") against
// the operating system release of an image.
//
// Version ordering comes from the semantic package of osv-scalibr, the
// comparator OSV's own scanner uses. This package adds what the comparator
// leaves out: a syntax check per ecosystem (so that an advisory whose
// versions are not versions of its ecosystem is rejected instead of being
// ordered by accident), Go toolchain version normalization as govulncheck
// does it, package name normalization, and release scoping.
package ecosystem

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/osv-scalibr/semantic"

	"github.com/customs-dev/customs/internal/inventory"
)

// UnknownError reports an ecosystem customs has no version rules for.
type UnknownError struct {
	// Ecosystem is the base ecosystem name as given.
	Ecosystem string
}

func (e *UnknownError) Error() string {
	return fmt.Sprintf("unknown ecosystem %q", e.Ecosystem)
}

// Rules are the version rules and naming conventions of one base ecosystem.
// The zero value is not usable; get Rules from For.
type Rules struct {
	name string
	// parse orders versions (osv-scalibr semantic).
	parse func(string) (semantic.Version, error)
	// syntax, when set, is the ecosystem's published version syntax; a
	// string that does not match is not a version of the ecosystem.
	syntax *regexp.Regexp
	// installed, when set, turns an installed package's version into the
	// form advisories use (Go: "v1.2.3" -> "1.2.3", "go1.21rc1" -> "1.21.0-rc.1").
	installed func(name, version string) (string, error)
	// name normalizes a package name for lookups (PyPI: PEP 503).
	normName func(string) string
}

// Version syntaxes, from each ecosystem's published rules. They are
// read-only after package initialization (a *regexp.Regexp is safe for
// concurrent use); For picks one of them.
var (
	// semverSyntax is the SemVer 2.0.0 grammar (semver.org), with an
	// optional "v" that the Go ecosystem's module versions carry.
	semverSyntax = regexp.MustCompile(`^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
		`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
		`(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)
	// dpkgSyntax is deb-version(7): [epoch:]upstream[-revision]; upstream
	// starts with a digit and may hold alphanumerics and . + ~ - (a hyphen
	// only when a revision follows); the revision holds alphanumerics and . + ~.
	dpkgSyntax = regexp.MustCompile(`^(?:[0-9]+:)?[0-9][A-Za-z0-9.+~]*(?:(?:-[A-Za-z0-9.+~]+)*-[A-Za-z0-9.+~]+)?$`)
	// apkSyntax is apk-tools' version grammar: digits separated by dots, an
	// optional letter, _suffix[N] parts, an optional ~hash and -rN.
	apkSyntax = regexp.MustCompile(`^[0-9]+(?:\.[0-9]+)*[a-z]?(?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*(?:~[0-9a-f]+)?(?:-r[0-9]+)?$`)
	// rpmSyntax is [epoch:]version[-release]; version and release hold
	// alphanumerics and . _ + ~ ^ (rpm's allowed characters).
	rpmSyntax = regexp.MustCompile(`^(?:[0-9]+:)?[A-Za-z0-9._+~^]+(?:-[A-Za-z0-9._+~^]+)?$`)
	// pep440Syntax is the regular expression of PEP 440's appendix B, which
	// accepts every version PEP 440 normalizes (case-insensitive, with
	// optional surrounding whitespace handled by the caller).
	pep440Syntax = regexp.MustCompile(`(?i)^v?(?:[0-9]+!)?[0-9]+(?:\.[0-9]+)*` +
		`(?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?[0-9]*)?` +
		`(?:-[0-9]+|[-_.]?(?:post|rev|r)[-_.]?[0-9]*)?` +
		`(?:[-_.]?dev[-_.]?[0-9]*)?` +
		`(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?$`)
	// rubygemsSyntax is Gem::Version::ANCHORED_VERSION_PATTERN.
	rubygemsSyntax = regexp.MustCompile(`^[0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$`)
	// nugetSyntax is NuGet's version grammar: up to four numeric parts, a
	// SemVer 2.0 pre-release and build metadata.
	nugetSyntax = regexp.MustCompile(`^[0-9]+(?:\.[0-9]+){0,3}(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$`)
	// tokenSyntax accepts any non-empty run of printable, non-space
	// characters: Maven and Packagist order any string.
	tokenSyntax = regexp.MustCompile(`^[!-~]+$`)
	// pep503Separators are the runs PEP 503 collapses to "-".
	pep503Separators = regexp.MustCompile(`[-_.]+`)
)

// For returns the rules of a base ecosystem (no release suffix: "Alpine",
// not "Alpine:v3.9"; use Split first). An ecosystem without rules gives an
// *UnknownError.
func For(base string) (*Rules, error) {
	r := &Rules{name: base, normName: identity}
	switch base {
	case inventory.Debian, inventory.Ubuntu:
		r.parse, r.syntax = parseWith(semantic.ParseDebianVersion), dpkgSyntax
	case inventory.Alpine:
		r.parse, r.syntax = parseWith(semantic.ParseAlpineVersion), apkSyntax
	case inventory.RedHat, inventory.Rocky, inventory.Alma, inventory.SUSE, inventory.OpenSUSE:
		r.parse, r.syntax = parseNoErr(semantic.ParseRedHatVersion), rpmSyntax
	case inventory.Go:
		r.parse, r.syntax, r.installed = parseSemver, semverSyntax, goInstalled
	case inventory.NPM, inventory.CratesIO:
		r.parse, r.syntax = parseSemver, semverSyntax
	case inventory.PyPI:
		r.parse, r.syntax, r.normName = parseWith(semantic.ParsePyPIVersion), pep440Syntax, pep503
	case inventory.Maven:
		r.parse, r.syntax = parseNoErr(semantic.ParseMavenVersion), tokenSyntax
	case inventory.RubyGems:
		r.parse, r.syntax = parseNoErr(semantic.ParseRubyGemsVersion), rubygemsSyntax
	case inventory.NuGet:
		r.parse, r.syntax, r.normName = parseNoErr(semantic.ParseNuGetVersion), nugetSyntax, strings.ToLower
	case inventory.Packagist:
		r.parse, r.syntax, r.normName = parseNoErr(semantic.ParsePackagistVersion), tokenSyntax, strings.ToLower
	default:
		return nil, &UnknownError{Ecosystem: base}
	}
	return r, nil
}

// Known reports whether For(base) succeeds.
func Known(base string) bool {
	_, err := For(base)
	return err == nil
}

func identity(s string) string { return s }

// pep503 normalizes a Python distribution name (PEP 503).
func pep503(s string) string {
	return strings.ToLower(pep503Separators.ReplaceAllString(s, "-"))
}

func parseWith[V semantic.Version](f func(string) (V, error)) func(string) (semantic.Version, error) {
	return func(s string) (semantic.Version, error) {
		v, err := f(s)
		if err != nil {
			return nil, err
		}
		return v, nil
	}
}

func parseNoErr[V semantic.Version](f func(string) V) func(string) (semantic.Version, error) {
	return func(s string) (semantic.Version, error) { return f(s), nil }
}

// parseSemver orders SemVer versions; a leading "v" (Go module versions) is
// dropped first, as the comparator would otherwise keep it.
func parseSemver(s string) (semantic.Version, error) {
	return semantic.ParseSemverVersion(strings.TrimPrefix(s, "v")), nil
}

// Name is the base ecosystem the rules belong to.
func (r *Rules) Name() string { return r.name }

// NormalizeName returns the form of a package name used to look it up:
// PyPI names per PEP 503, NuGet and Packagist names lower-cased, other
// ecosystems unchanged.
func (r *Rules) NormalizeName(name string) string { return r.normName(name) }

// MaxVersionLen bounds the length of a version string Parse accepts; no
// real version comes near it, and comparators cost grows with length.
const MaxVersionLen = 512

// Parse parses a version as the ecosystem writes it (in advisories and in
// package metadata). A string that does not follow the ecosystem's
// published version syntax, or is longer than MaxVersionLen, is an error
// that names it and the ecosystem.
func (r *Rules) Parse(s string) (Version, error) {
	trimmed := strings.TrimSpace(s)
	if trimmed == "" {
		return Version{}, fmt.Errorf("%s: empty version", r.name)
	}
	if len(trimmed) > MaxVersionLen {
		return Version{}, fmt.Errorf("%s: version %.40q… is longer than %d bytes", r.name, trimmed, MaxVersionLen)
	}
	if r.syntax != nil && !r.syntax.MatchString(trimmed) {
		return Version{}, fmt.Errorf("%s: %q is not a valid %s version", r.name, s, r.name)
	}
	v, err := r.parse(trimmed)
	if err != nil {
		return Version{}, fmt.Errorf("%s: %q is not a valid %s version: %w", r.name, s, r.name, err)
	}
	return Version{raw: s, norm: trimmed, v: v}, nil
}

// ParseInstalled parses the version of an installed package named name. It
// first rewrites the version into the form the ecosystem's advisories use:
// for Go, module versions lose their "v" and the stdlib and toolchain
// pseudo-packages take Go release tags ("go1.21.3", "go1.21rc1", "1.22",
// "go1.20.1 X:boringcrypto") as govulncheck converts them.
func (r *Rules) ParseInstalled(name, version string) (Version, error) {
	s, err := r.NormalizeInstalled(name, version)
	if err != nil {
		return Version{}, err
	}
	v, err := r.Parse(s)
	if err != nil {
		return Version{}, err
	}
	v.raw = version
	return v, nil
}

// NormalizeInstalled rewrites the version of an installed package named
// name into the form the ecosystem's advisories write (see ParseInstalled),
// without parsing it; the result is what an advisory's explicit versions
// list is compared with. Only Go rewrites versions; a Go toolchain version
// that is not one is an error.
func (r *Rules) NormalizeInstalled(name, version string) (string, error) {
	if r.installed == nil {
		return version, nil
	}
	return r.installed(name, version)
}

// Version is one parsed version of an ecosystem. Versions of different
// ecosystems must not be compared.
type Version struct {
	raw string // as given
	// norm is the string that was parsed (trimmed; for installed
	// versions, rewritten as NormalizeInstalled does).
	norm string
	v    semantic.Version
}

// String returns the version as it was given.
func (v Version) String() string { return v.raw }

// IsZero reports whether v is the zero Version (not parsed).
func (v Version) IsZero() bool { return v.v == nil }

// Compare returns -1, 0 or +1 as v sorts before, equal to or after w under
// the ecosystem's ordering. Where the comparator cannot order two versions
// it falls back to byte order of the strings as given, so that Compare is
// always a total, antisymmetric order. Comparing with a zero Version or one
// of another ecosystem also falls back to byte order.
func (v Version) Compare(w Version) int {
	if v.norm == w.norm {
		// Equal strings are equal versions under every ordering (and the
		// comparators are slowest on equal versions).
		return 0
	}
	if v.v != nil && w.v != nil {
		if c, err := v.v.Compare(w.v); err == nil {
			return sign(c)
		}
	}
	return strings.Compare(v.norm, w.norm)
}

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}
