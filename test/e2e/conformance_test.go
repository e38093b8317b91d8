package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/config"
	"github.com/customs-dev/customs/test/e2e/harness"
)

// conformanceToggles are every OCI_API_* and OCI_DATA_* switch of the
// conformance suite but OCI_DATA_SPARSE (set per run): customs claims all of
// distribution-spec v1.1.
var conformanceToggles = []string{
	"OCI_API_PING", "OCI_API_PULL", "OCI_API_PUSH",
	"OCI_API_BLOBS_ATOMIC", "OCI_API_BLOBS_DELETE", "OCI_API_BLOBS_DIGEST_HEADER",
	"OCI_API_BLOBS_MOUNT_ANONYMOUS", "OCI_API_BLOBS_UPLOAD_CANCEL",
	"OCI_API_MANIFESTS_ATOMIC", "OCI_API_MANIFESTS_DELETE", "OCI_API_MANIFESTS_DIGEST_HEADER",
	"OCI_API_MANIFESTS_TAG_PARAM",
	"OCI_API_TAGS_ATOMIC", "OCI_API_TAGS_DELETE", "OCI_API_TAGS_LIST",
	"OCI_API_REFERRER",
	"OCI_DATA_IMAGE", "OCI_DATA_INDEX", "OCI_DATA_INDEX_LIST",
	"OCI_DATA_ARTIFACT", "OCI_DATA_SUBJECT", "OCI_DATA_SUBJECT_MISSING",
	"OCI_DATA_ARTIFACT_LIST", "OCI_DATA_SUBJECT_LIST", "OCI_DATA_DATA_FIELD",
	"OCI_DATA_NONDISTRIBUTABLE", "OCI_DATA_CUSTOM_FIELDS", "OCI_DATA_NO_LAYERS",
	"OCI_DATA_EMPTY_BLOB", "OCI_DATA_SHA512",
}

// maxReportedFailures bounds how many failing cases are printed in full.
const maxReportedFailures = 25

// maxRequestLog bounds the request/response log printed per failing case.
const maxRequestLog = 6000

// TestConformance runs the OCI distribution-spec conformance suite with
// every API and data toggle on against customs and requires zero failures.
// Sparse manifests (descriptors whose content was never pushed) are refused
// by default, as a manifest naming a missing blob must be; the suite's
// sparse data is therefore run against a second server configured with
// registry.allowSparse.
func TestConformance(t *testing.T) {
	t.Parallel()
	harness.Tool(t, "conformance") // skip (or fail) before starting servers
	tests := []struct {
		name   string
		sparse bool
	}{
		{"default", false},
		{"allowSparse", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var opts harness.Options
			if tc.sparse {
				opts.Env = []string{config.EnvName("registry.allowSparse") + "=true"}
			}
			runConformance(t, harness.Start(t, opts), tc.sparse)
		})
	}
}

func runConformance(t *testing.T, srv *harness.Server, sparse bool) {
	srv.CreateProject(t, "conformance", false)
	results := t.TempDir()
	c := harness.NewClient(t)
	c.Dir = t.TempDir() // no oci-conformance.yaml is picked up from here
	c.Timeout = 15 * time.Minute
	c.Env(
		"OCI_REGISTRY="+srv.Addr,
		"OCI_TLS=disabled",
		"OCI_VERSION=1.1",
		"OCI_REPO1=conformance/repo1",
		"OCI_REPO2=conformance/repo2",
		"OCI_USERNAME="+srv.Username,
		"OCI_PASSWORD="+srv.Password,
		"OCI_RESULTS_DIR="+results,
		"OCI_LOG=error",
		fmt.Sprintf("OCI_DATA_SPARSE=%t", sparse),
	)
	for _, name := range conformanceToggles {
		c.Env(name + "=true")
	}
	run := c.Run(t, "conformance")

	f, err := os.Open(filepath.Join(results, "junit.xml"))
	if err != nil {
		t.Fatalf("conformance suite wrote no junit.xml (%v):\n%s", err, run)
	}
	defer f.Close()
	rep, err := harness.ParseJUnit(f)
	if err != nil {
		t.Fatalf("%v\n%s", err, run)
	}
	failures := rep.Failures()
	t.Logf("conformance: %d cases, %d passed, %d failed, %d skipped",
		len(rep.Cases), rep.Count("passed"), len(failures), rep.Count("skipped"))
	var skipped []string
	for _, c := range rep.Cases {
		if c.Status == "skipped" {
			skipped = append(skipped, fmt.Sprintf("%s (%s)", c.Name, strings.TrimSpace(c.Out+" "+c.Message)))
		}
	}
	if len(skipped) > 0 {
		sort.Strings(skipped)
		t.Logf("skipped (optional behaviour the suite found missing):\n  %s", strings.Join(skipped, "\n  "))
	}

	if len(failures) > 0 {
		// The suite reuses step names (one per request); list each once.
		var names []string
		count := map[string]int{}
		for _, fc := range failures {
			if count[fc.Name] == 0 {
				names = append(names, fc.Name)
			}
			count[fc.Name]++
		}
		for i, n := range names {
			if count[n] > 1 {
				names[i] = fmt.Sprintf("%s (x%d)", n, count[n])
			}
		}
		var b strings.Builder
		for i, fc := range failures {
			if i == maxReportedFailures {
				fmt.Fprintf(&b, "\n... %d more failures; full report in results.yaml/report.html of the suite\n", len(failures)-i)
				break
			}
			fmt.Fprintf(&b, "\n=== %s: %s\n%s\n", fc.Status, fc.Name, strings.TrimSpace(fc.Out+"\n"+fc.Message))
			reqlog := fc.Err
			if len(reqlog) > maxRequestLog {
				reqlog = reqlog[:maxRequestLog] + "\n[... cut ...]"
			}
			fmt.Fprintf(&b, "%s\n", reqlog)
		}
		t.Errorf("conformance: %d of %d cases failed:\n  %s\n%s", len(failures), len(rep.Cases), strings.Join(names, "\n  "), b.String())
	}
	if run.Err != nil && len(failures) == 0 {
		t.Errorf("conformance suite exited with %v although its report has no failure:\n%s", run.Err, run)
	}
	if rep.Count("passed") == 0 {
		t.Errorf("conformance: no case passed")
	}
}
