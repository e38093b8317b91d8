package scancli_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/customs-dev/customs/test/crosscheck"
	"github.com/customs-dev/customs/test/e2e/harness"
)

// TestScanLanguageImage is issue 5's acceptance test: one linux/amd64
// image holding two Go binaries (test/crosscheck's textlang, built against
// golang.org/x/text v0.3.5, and ginyaml, whose golang.org/x/sys has a
// windows-only advisory the platform filter must leave out), a Python
// site-packages (Jinja2 2.10, requests 2.19.1) and a node_modules
// tree (lodash 4.17.15, minimist 1.2.0) is scanned with `customs scan`
// against the real Go and PyPI OSV exports of testdata/vulndata and the
// npm records of testdata/npm (copies of the GitHub advisories' ranges).
// The findings are exactly testdata/langimage.golden: every line there
// was derived by hand from the records (see the comments in that file),
// so a miss or a false positive in any of the three ecosystems fails.
func TestScanLanguageImage(t *testing.T) {
	t.Parallel()
	goBin := func(prog string) []byte {
		bin, err := crosscheck.BuildCached(context.Background(),
			crosscheck.Program{Dir: repoFile(t, "test/crosscheck/testdata/gobin/"+prog)}, goBinCache(t))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const site = "usr/local/lib/python3.11/site-packages/"
	meta := func(name, version string) string {
		return "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n"
	}
	npm := func(name, version string) string {
		return `{"name": "` + name + `", "version": "` + version + `"}`
	}
	files := map[string]string{
		site + "Jinja2-2.10.dist-info/METADATA":     meta("Jinja2", "2.10"),
		site + "requests-2.19.1.dist-info/METADATA": meta("requests", "2.19.1"),
		"app/node_modules/lodash/package.json":      npm("lodash", "4.17.15"),
		"app/node_modules/minimist/package.json":    npm("minimist", "1.2.0"),
	}
	img := withExecutable(t, imageOf(t, files, "amd64"), "usr/local/bin/textlang", goBin("textlang"))
	img = withExecutable(t, img, "usr/local/bin/ginyaml", goBin("ginyaml"))
	dir := writeLayout(t, img, "lang")

	c := harness.NewClient(t)
	r := scan(t, c, "--format", "json",
		"--vulndb", repoFile(t, "testdata/vulndata/osv/go/all.zip"),
		"--vulndb", repoFile(t, "testdata/vulndata/osv/pypi/all.zip"),
		"--vulndb", repoFile(t, "test/scancli/testdata/npm"),
		dir+":lang")
	wantExit(t, r, 0)
	got := findingKeys(decodeReport(t, r))
	slices.Sort(got)

	b, err := os.ReadFile(repoFile(t, "test/scancli/testdata/langimage.golden"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			want = append(want, line)
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("findings\n  %s\nwant (testdata/langimage.golden)\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// goBinCache is where test/crosscheck keeps its built Go binaries.
func goBinCache(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("CUSTOMS_TEST_CACHE"); d != "" {
		return filepath.Join(d, "gobin")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(home, ".cache", "customs-test", "gobin")
}

// withExecutable is img with one more layer holding body at path, mode
// 0755 (Go binaries are only read when executable, as scanners do).
func withExecutable(t *testing.T, img v1.Image, path string, body []byte) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2020, 6, 1, 0, 0, 0, 0, time.UTC)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path, Mode: 0o755, Size: int64(len(body)), ModTime: mtime}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	out, err := mutate.AppendLayers(img, layer)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
