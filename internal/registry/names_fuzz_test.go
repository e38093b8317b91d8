package registry

import (
	"regexp"
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/apperr"
)

// The distribution-spec grammars, written as regular expressions
// independently of the hand-written parsers they check.
var (
	specName   = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	specTag    = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	specDigest = regexp.MustCompile(`^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$`)
)

// maxErrorLength bounds an error message built from outside input: the
// parsers quote a truncated copy, never the whole input.
const maxErrorLength = 600

// FuzzValidateName checks validateName against the spec's name grammar
// (plus customs' <project>/<path> rule and the 255-byte limit): it accepts
// exactly the names the grammar accepts, returns their first component as
// the project, and refuses the rest with NAME_INVALID and a bounded message.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{
		"p/a", "library/debian", "a/b/c/d", "p/a.b_c__d---e", "p/a..b", "p/a___b", "p/-a", "p/a-", "P/a",
		"p//a", "/p/a", "p/a/", "p", "", "p/../q", "p/%2e%2e/q", "p/a\x00", "p/é", strings.Repeat("a/", 200) + "a",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		want := specName.MatchString(name) && strings.Contains(name, "/") && len(name) <= maxNameLength
		project, err := validateName(name)
		if (err == nil) != want {
			t.Fatalf("validateName(%q): err %v, the grammar says valid=%v", name, err, want)
		}
		if err != nil {
			if apperr.Code(err) != apperr.EINVALID || apperr.Detail(err) != codeNameInvalid {
				t.Fatalf("validateName(%q): %v is not EINVALID/NAME_INVALID", name, err)
			}
			// A name over the limit is refused without being quoted; one
			// within it is quoted (%q: at most 4 bytes per input byte).
			if n := len(err.Error()); n > maxErrorLength+4*maxNameLength {
				t.Fatalf("validateName of %d bytes: a message of %d bytes", len(name), n)
			}
			return
		}
		if first, _, _ := strings.Cut(name, "/"); project != first {
			t.Fatalf("validateName(%q) = project %q, want %q", name, project, first)
		}
	})
}

// FuzzParseReference checks parseReference, the <reference> of a manifest
// URL, against the spec's tag and digest grammars (sha256 and sha512 only):
// it accepts exactly those, String gives the input back, and refusals carry
// the spec's code (MANIFEST_INVALID for a bad tag, DIGEST_INVALID for a bad
// digest) and a bounded message.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{
		"latest", "v1.2.3-rc_1", "_x", ".x", "-x", "a/b", "", strings.Repeat("a", 128), strings.Repeat("a", 129),
		"sha256:" + strings.Repeat("a", 64), "sha512:" + strings.Repeat("b", 128), "sha256:" + strings.Repeat("A", 64),
		"sha384:" + strings.Repeat("c", 96), "md5:" + strings.Repeat("c", 32), "sha256:", ":", "sha256+b64:abc",
		"sha256:" + strings.Repeat("a", 63), "sha256:" + strings.Repeat("a", 64) + "\n", "a:" + strings.Repeat("x", 5000),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := parseReference(s)
		isDigest := strings.Contains(s, ":")
		want := specTag.MatchString(s)
		if isDigest {
			want = specDigest.MatchString(s)
		}
		if (err == nil) != want {
			t.Fatalf("parseReference(%q): err %v, the grammar says valid=%v", s, err, want)
		}
		if err != nil {
			wantDetail := codeManifestInvalid
			if isDigest {
				wantDetail = codeDigestInvalid
			}
			if apperr.Code(err) != apperr.EINVALID || apperr.Detail(err) != wantDetail {
				t.Fatalf("parseReference(%q): %v (detail %q), want EINVALID/%s", s, err, apperr.Detail(err), wantDetail)
			}
			if n := len(err.Error()); n > maxErrorLength {
				t.Fatalf("parseReference of %d bytes: a message of %d bytes", len(s), n)
			}
			return
		}
		if (ref.Digest != "") != isDigest || (ref.Tag != "") == isDigest {
			t.Fatalf("parseReference(%q) = %+v: tag and digest mixed up", s, ref)
		}
		if ref.String() != s {
			t.Fatalf("parseReference(%q).String() = %q", s, ref.String())
		}
		if isDigest {
			if err := ref.Digest.Validate(); err != nil {
				t.Fatalf("parseReference(%q) accepted a digest go-digest refuses: %v", s, err)
			}
		}
	})
}
