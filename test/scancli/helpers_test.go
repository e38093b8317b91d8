// Package scancli_test runs the built `customs scan` as a user would: over
// OCI layouts, docker-archive tars and root filesystems it generates, over
// the Debian image of the test cache, and over a customs registry; and it
// compares the Debian inventory with syft's.
package scancli_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/test/e2e/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// alpineOSRelease is /etc/os-release of Alpine 3.9.6.
const alpineOSRelease = `NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.9.6
PRETTY_NAME="Alpine Linux v3.9"
HOME_URL="https://alpinelinux.org/"
`

// apkEntry is one package of /lib/apk/db/installed.
func apkEntry(pkg, version, origin string) string {
	return "C:Q1" + strings.Repeat("A", 27) + "=\nP:" + pkg + "\nV:" + version + "\nA:x86_64\nS:1000\nI:2000\nT:" + pkg +
		"\nU:https://alpinelinux.org\nL:MIT\no:" + origin + "\nm:Natanael Copa <ncopa@alpinelinux.org>\nt:1553707483\nF:lib\nR:lib" + pkg + ".so\n\n"
}

// alpineFiles is the root filesystem of an Alpine 3.9 image whose musl
// version is muslVersion: musl and musl-utils (built from musl), busybox,
// libcrypto1.1 and py3-alpine, none of the last three affected by an
// advisory of the Alpine v3.9 export.
func alpineFiles(muslVersion string) map[string]string {
	return map[string]string{
		"etc/os-release": alpineOSRelease,
		"lib/apk/db/installed": apkEntry("musl", muslVersion, "musl") + apkEntry("busybox", "1.29.3-r10", "busybox") +
			apkEntry("musl-utils", muslVersion, "musl") + apkEntry("libcrypto1.1", "1.1.1d-r2", "openssl") +
			apkEntry("py3-alpine", "1.0-r0", "py3-alpine"),
	}
}

// tarOf is an uncompressed tar of files (directories created as needed).
func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	mtime := time.Date(2020, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range sortedKeys(files) {
		for d := filepath.Dir(p); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	for _, d := range sortedKeys(dirs) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range sortedKeys(files) {
		body := files[p]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: 0o644, Size: int64(len(body)), ModTime: mtime}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// imageOf is a one-layer OCI image of files for arch.
func imageOf(t *testing.T, files map[string]string, arch string) v1.Image {
	t.Helper()
	data := tarOf(t, files)
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: time.Date(2020, 6, 1, 0, 0, 0, 0, time.UTC)}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// writeLayout writes an OCI layout holding img tagged tag, and returns its
// directory.
func writeLayout(t *testing.T, img v1.Image, tag string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeDockerArchive writes img as `docker save` would, tagged ref.
func writeDockerArchive(t *testing.T, img v1.Image, ref string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "image.tar")
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeRootfs writes files under a new directory.
func writeRootfs(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	for p, body := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// repoFile is a path of the repository.
func repoFile(t *testing.T, rel string) string {
	t.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, filepath.FromSlash(rel))
}

// alpineDB is the real Alpine v3.9 OSV export of the repository.
func alpineDB(t *testing.T) string { return repoFile(t, "testdata/vulndata/osv/alpine-v3.9/all.zip") }

// scan runs `customs scan args...` in client c and returns its result.
func scan(t *testing.T, c *harness.Client, args ...string) harness.Result {
	t.Helper()
	return c.Run(t, append([]string{harness.CustomsBinary(t), "scan"}, args...)...)
}

// wantExit fails the test unless r exited with code.
func wantExit(t *testing.T, r harness.Result, code int) {
	t.Helper()
	if r.ExitCode != code {
		t.Fatalf("exit %d, want %d\n%s", r.ExitCode, code, r)
	}
}

// decodeReport reads a JSON report.
func decodeReport(t *testing.T, r harness.Result) *report.Report {
	t.Helper()
	var rep report.Report
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("stdout is not a JSON report: %v\n%s", err, r)
	}
	return &rep
}

// findingKeys lists "ADVISORY package installed -> fixed (status)" for
// each finding, in the report's order.
func findingKeys(r *report.Report) []string {
	out := make([]string, 0, len(r.Findings))
	for _, f := range r.Findings {
		fixed := "none"
		if len(f.FixedVersions) > 0 {
			fixed = f.FixedVersions[0]
		}
		out = append(out, f.AdvisoryID+" "+f.Package.Name+" "+f.InstalledVersion+" -> "+fixed+" ("+string(f.Status)+")")
	}
	return out
}
