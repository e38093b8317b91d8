package registry

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/store"
)

// conformanceEnv turns every API and data test of the suite on.
var conformanceEnv = []string{
	"OCI_VERSION=1.1",
	"OCI_TLS=disabled",
	"OCI_REPO1=conformance/repo1",
	"OCI_REPO2=conformance/repo2",
	"OCI_USERNAME=admin",
	"OCI_PASSWORD=pw",
	"OCI_CACHE_AUTH=true",
	"OCI_LOG=warn",
	"OCI_API_PING=true",
	"OCI_API_PULL=true",
	"OCI_API_PUSH=true",
	"OCI_API_BLOBS_ATOMIC=true",
	"OCI_API_BLOBS_DELETE=true",
	"OCI_API_BLOBS_DIGEST_HEADER=true",
	"OCI_API_BLOBS_MOUNT_ANONYMOUS=true",
	"OCI_API_BLOBS_UPLOAD_CANCEL=true",
	"OCI_API_MANIFESTS_ATOMIC=true",
	"OCI_API_MANIFESTS_DELETE=true",
	"OCI_API_MANIFESTS_DIGEST_HEADER=true",
	"OCI_API_MANIFESTS_TAG_PARAM=true",
	"OCI_API_TAGS_ATOMIC=true",
	"OCI_API_TAGS_DELETE=true",
	"OCI_API_TAGS_LIST=true",
	"OCI_API_REFERRER=true",
	"OCI_DATA_IMAGE=true",
	"OCI_DATA_INDEX=true",
	"OCI_DATA_INDEX_LIST=true",
	"OCI_DATA_ARTIFACT=true",
	"OCI_DATA_SUBJECT=true",
	"OCI_DATA_SUBJECT_MISSING=true",
	"OCI_DATA_ARTIFACT_LIST=true",
	"OCI_DATA_SUBJECT_LIST=true",
	"OCI_DATA_DATA_FIELD=true",
	"OCI_DATA_NONDISTRIBUTABLE=true",
	"OCI_DATA_CUSTOM_FIELDS=true",
	"OCI_DATA_NO_LAYERS=true",
	"OCI_DATA_EMPTY_BLOB=true",
	"OCI_DATA_SHA512=true",
}

// countLine matches the suite's summary lines, e.g. "  FAIL......: 0".
var countLine = regexp.MustCompile(`(?m)^\s+(Pass|FAIL|Error|Skip|Disabled|Total)\.*:\s+(\d+)$`)

// TestConformance runs the OCI distribution-spec conformance suite (every
// API and data toggle on) against the handler, once with strict manifest
// references (OCI_DATA_SPARSE=false) and once with AllowSparse and the
// sparse data. It needs the suite's binary:
//
//	git -C <distribution-spec> worktree add /tmp/conformance-src HEAD
//	(cd /tmp/conformance-src/conformance && go build -o /tmp/conformance.bin .)
//	CUSTOMS_CONFORMANCE_BIN=/tmp/conformance.bin go test ./internal/registry -run TestConformance -v
func TestConformance(t *testing.T) {
	bin := os.Getenv("CUSTOMS_CONFORMANCE_BIN")
	if bin == "" {
		t.Skip("set CUSTOMS_CONFORMANCE_BIN to a build of github.com/opencontainers/distribution-spec/conformance to run the suite")
	}
	for _, tc := range []struct {
		name   string
		sparse bool
	}{{"strict", false}, {"sparse", true}} {
		t.Run(tc.name, func(t *testing.T) {
			// With the manifest cache, as customs serve runs by default.
			e := newEnv(t, func(o *Options) { o.AllowSparse = tc.sparse; o.ManifestCacheBytes = DefaultManifestCacheBytes })
			if err := e.db.CreateProject(context.Background(), &store.Project{Name: "conformance"}); err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(e.srv.URL)
			results := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin)
			cmd.Dir = results
			sparse := "OCI_DATA_SPARSE=false"
			if tc.sparse {
				sparse = "OCI_DATA_SPARSE=true"
			}
			cmd.Env = append(os.Environ(), conformanceEnv...)
			cmd.Env = append(cmd.Env, "OCI_REGISTRY="+u.Host, "OCI_RESULTS_DIR="+filepath.Join(results, "results"), sparse)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			counts := map[string]string{}
			for _, m := range countLine.FindAllStringSubmatch(out.String(), -1) {
				counts[m[1]] = m[2]
			}
			t.Logf("conformance (%s): pass %s, fail %s, error %s, skip %s, disabled %s, total %s", tc.name,
				counts["Pass"], counts["FAIL"], counts["Error"], counts["Skip"], counts["Disabled"], counts["Total"])
			if err != nil || counts["FAIL"] != "0" || counts["Error"] != "0" || counts["Skip"] != "0" {
				t.Fatalf("conformance suite failed (%v); report in %s:\n%s", err, results, out.String())
			}
			if st := cacheOf(e).stats(); st.Hits == 0 || st.Misses == 0 {
				t.Errorf("the suite's manifest pulls did not go through the cache (both hits and misses): %+v", st)
			} else {
				t.Logf("manifest cache: %+v", st)
			}
		})
	}
}
