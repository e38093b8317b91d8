package scan

import (
	"testing"

	"github.com/customs-dev/customs/internal/apperr"
)

// FuzzParseChildren feeds arbitrary bytes as a pushed image index: the
// parser returns children with valid digests or an EINVALID error, and
// never panics.
func FuzzParseChildren(f *testing.F) {
	for _, seed := range []string{
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
			`{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":7,"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","platform":{"os":"linux","architecture":"arm64","variant":"v8"}},` +
			`{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":7,"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","annotations":{"vnd.docker.reference.type":"attestation-manifest"}}]}`,
		`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:zz"}]}`,
		`{"manifests":null}`,
		`{"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"md5:abc","platform":{}}]}`,
		`[]`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		children, err := parseChildren(raw)
		if err != nil {
			if !apperr.Is(err, apperr.EINVALID) {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		for _, c := range children {
			if err := c.Digest.Validate(); err != nil {
				t.Fatalf("child digest %q does not validate: %v", c.Digest, err)
			}
		}
	})
}
