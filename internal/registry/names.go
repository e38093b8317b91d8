package registry

import (
	_ "crypto/sha256" // registers sha256 for go-digest
	_ "crypto/sha512" // registers sha512 for go-digest
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
)

// maxNameLength is the longest repository name accepted, as the spec advises.
const maxNameLength = 255

// maxTagLength is the longest tag the spec's grammar allows.
const maxTagLength = 128

// validateName checks a repository name against the distribution-spec
// grammar [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
// and customs' rule that a name is <project>/<path...>. It returns the
// project. Errors are EINVALID with Detail NAME_INVALID.
func validateName(name string) (project string, err error) {
	if name == "" {
		return "", nameInvalid("repository name is empty")
	}
	if len(name) > maxNameLength {
		return "", nameInvalid("repository name is longer than %d characters", maxNameLength)
	}
	components := strings.Split(name, "/")
	for _, c := range components {
		if !validComponent(c) {
			return "", nameInvalid("invalid repository name %q: each path component must match [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*", name)
		}
	}
	if len(components) < 2 {
		return "", nameInvalid("invalid repository name %q: repository names are <project>/<name>", name)
	}
	return components[0], nil
}

// validComponent reports whether c matches [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*.
func validComponent(c string) bool {
	if c == "" || !alnum(c[0]) || !alnum(c[len(c)-1]) {
		return false
	}
	for i := 0; i < len(c); {
		if alnum(c[i]) {
			i++
			continue
		}
		// a separator run: ".", "_", "__" or "-+", followed by an alphanumeric
		j := i
		switch c[i] {
		case '.':
			j++
		case '_':
			j++
			if j < len(c) && c[j] == '_' {
				j++
			}
		case '-':
			for j < len(c) && c[j] == '-' {
				j++
			}
		default:
			return false
		}
		if j >= len(c) || !alnum(c[j]) {
			return false
		}
		i = j
	}
	return true
}

func alnum(b byte) bool { return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' }

// validTag reports whether t matches [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
func validTag(t string) bool {
	if t == "" || len(t) > maxTagLength {
		return false
	}
	for i := 0; i < len(t); i++ {
		b := t[i]
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '_':
		case (b == '.' || b == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// parseDigest parses a digest of a supported algorithm (sha256, sha512).
// Errors are EINVALID with Detail DIGEST_INVALID.
func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", apperr.Errorf(apperr.EINVALID, "invalid digest %q: %v", truncate(s, 160), err).WithDetail(codeDigestInvalid)
	}
	if err := checkAlgorithm(d.Algorithm()); err != nil {
		return "", err
	}
	return d, nil
}

// checkAlgorithm accepts the digest algorithms customs supports.
func checkAlgorithm(a digest.Algorithm) error {
	switch a {
	case digest.SHA256, digest.SHA512:
		return nil
	}
	return apperr.Errorf(apperr.EINVALID, "unsupported digest algorithm %q; use sha256 or sha512", truncate(string(a), 40)).WithDetail(codeDigestInvalid)
}

func nameInvalid(format string, args ...any) error {
	return apperr.Errorf(apperr.EINVALID, format, args...).WithDetail(codeNameInvalid)
}

// truncate shortens s for inclusion in a message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// reference is a manifest reference: a tag or a digest.
type reference struct {
	Tag    string
	Digest digest.Digest
}

// String returns the tag or the digest.
func (r reference) String() string {
	if r.Tag != "" {
		return r.Tag
	}
	return r.Digest.String()
}

// parseReference parses the <reference> of a manifest URL: a digest when it
// contains ':', else a tag.
func parseReference(s string) (reference, error) {
	if strings.Contains(s, ":") {
		d, err := parseDigest(s)
		if err != nil {
			return reference{}, err
		}
		return reference{Digest: d}, nil
	}
	if !validTag(s) {
		return reference{}, apperr.Errorf(apperr.EINVALID,
			"invalid reference %q: a tag matches [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127} and a digest is <algorithm>:<hex>", truncate(s, 160)).
			WithDetail(codeManifestInvalid)
	}
	return reference{Tag: s}, nil
}

// missingProject is the error for a push into a project that does not exist.
func missingProject(project string) error {
	return apperr.Errorf(apperr.ENOTFOUND, "project %q does not exist; create it with: customs project create %s", project, project).
		WithDetail(codeNameUnknown)
}
