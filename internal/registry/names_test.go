package registry

import (
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/apperr"
)

func TestValidateName(t *testing.T) {
	long := "p/" + strings.Repeat("a", maxNameLength-2)
	tests := []struct {
		name    string
		in      string
		project string
		wantErr string // substring of the message; "" means valid
	}{
		{"two components", "proj/app", "proj", ""},
		{"deep path", "proj/team/app/v2", "proj", ""},
		{"separators", "my.proj/a_b/c__d/e-f/g---h", "my.proj", ""},
		{"digits", "0/1", "0", ""},
		{"max length", long, "p", ""},
		{"too long", long + "a", "", "longer than 255"},
		{"single component", "app", "", "repository names are <project>/<name>"},
		{"empty", "", "", "empty"},
		{"uppercase", "proj/App", "", "invalid repository name"},
		{"leading separator", "proj/-app", "", "invalid repository name"},
		{"trailing separator", "proj/app-", "", "invalid repository name"},
		{"triple underscore", "proj/a___b", "", "invalid repository name"},
		{"double dot", "proj/a..b", "", "invalid repository name"},
		{"mixed separators", "proj/a._b", "", "invalid repository name"},
		{"empty component", "proj//app", "", "invalid repository name"},
		{"trailing slash", "proj/app/", "", "invalid repository name"},
		{"colon", "proj/app:tag", "", "invalid repository name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			project, err := validateName(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("validateName(%q) = %v", tt.in, err)
				}
				if project != tt.project {
					t.Errorf("project = %q, want %q", project, tt.project)
				}
				return
			}
			if err == nil {
				t.Fatalf("validateName(%q) accepted", tt.in)
			}
			if apperr.Detail(err) != codeNameInvalid || !strings.Contains(apperr.Message(err), tt.wantErr) {
				t.Errorf("err = %v, want NAME_INVALID containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseReference(t *testing.T) {
	sha256 := "sha256:" + strings.Repeat("a", 64)
	sha512 := "sha512:" + strings.Repeat("b", 128)
	tests := []struct {
		name   string
		in     string
		tag    string
		digest string
		detail string
	}{
		{"tag", "latest", "latest", "", ""},
		{"tag with dots and dashes", "v1.2.3-rc_1", "v1.2.3-rc_1", "", ""},
		{"underscore first", "_x", "_x", "", ""},
		{"max tag", strings.Repeat("a", 128), strings.Repeat("a", 128), "", ""},
		{"sha256", sha256, "", sha256, ""},
		{"sha512", sha512, "", sha512, ""},
		{"tag too long", strings.Repeat("a", 129), "", "", codeManifestInvalid},
		{"tag starting with dot", ".x", "", "", codeManifestInvalid},
		{"tag starting with dash", "-x", "", "", codeManifestInvalid},
		{"tag with slash", "a/b", "", "", codeManifestInvalid},
		{"empty", "", "", "", codeManifestInvalid},
		{"bad digest", "sha256:baddigeststring", "", "", codeDigestInvalid},
		{"uppercase hex", "sha256:" + strings.Repeat("A", 64), "", "", codeDigestInvalid},
		{"sha384 refused", "sha384:" + strings.Repeat("c", 96), "", "", codeDigestInvalid},
		{"unknown algorithm", "md5:" + strings.Repeat("c", 32), "", "", codeDigestInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, err := parseReference(tt.in)
			if tt.detail != "" {
				if apperr.Detail(err) != tt.detail {
					t.Fatalf("parseReference(%q) = %+v, %v; want %s", tt.in, ref, err, tt.detail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ref.Tag != tt.tag || ref.Digest.String() != tt.digest {
				t.Errorf("got %+v, want tag %q digest %q", ref, tt.tag, tt.digest)
			}
		})
	}
}
