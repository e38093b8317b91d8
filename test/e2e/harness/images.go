package harness

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	specv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/scan/report"
)

// AlpineLayout writes an Alpine-style linux/amd64 image (os-release alpine
// 3.9.6, musl at muslVersion in the apk database, /etc/motd holding motd
// so images differ) as an OCI layout in a temp dir of t and returns its
// path. With Alpine 3.9's advisories musl 1.1.20-r4 has
// ALPINE-CVE-2019-14697 (fixed in 1.1.20-r5); 1.1.20-r5 has none.
func AlpineLayout(t testing.TB, muslVersion, motd string) string {
	t.Helper()
	files := []string{
		"etc/os-release", "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.9.6\nPRETTY_NAME=\"Alpine Linux v3.9\"\n",
		"lib/apk/db/installed", "C:Q1vB4eLrQvK0p2mF3o1gq6x1o4Hm0=\nP:musl\nV:" + muslVersion + "\nA:x86_64\no:musl\nF:lib\nR:ld-musl-x86_64.so.1\n\n",
		"etc/motd", motd + "\n",
	}
	return WriteLayout(t, BuildImage(t, Layer(t, files...)))
}

// Layer is an OCI layer of regular files (name, content pairs), with a
// fixed modification time so equal files make equal layers.
func Layer(t testing.TB, files ...string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i+1 < len(files); i += 2 {
		if err := tw.WriteHeader(&tar.Header{Name: files[i], Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[i+1])),
			ModTime: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, files[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// BuildImage is a linux/amd64 OCI image of layers, bottom first.
func BuildImage(t testing.TB, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON), layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// WriteLayout writes img as the one manifest of a new OCI layout in a temp
// dir of t and returns the layout's path.
func WriteLayout(t testing.TB, img v1.Image) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	return dir
}

// LayoutDigest returns the digest of the only manifest in the OCI layout
// dir.
func LayoutDigest(t testing.TB, dir string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx specv1.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatalf("%s/index.json: %v", dir, err)
	}
	if len(idx.Manifests) != 1 {
		t.Fatalf("%s/index.json lists %d manifests, want 1", dir, len(idx.Manifests))
	}
	return idx.Manifests[0].Digest.String()
}

// WaitReport polls the scan report of digest until it is final (done,
// failed or unsupported), for at most 3 minutes.
func WaitReport(t testing.TB, c *apiclient.Client, digest string) *report.Report {
	t.Helper()
	return WaitReportWhere(t, c, digest, nil)
}

// WaitReportWhere is WaitReport that also waits until accept (when not
// nil) says the final report is the one awaited, e.g. one matched again
// after a vulnerability database update.
func WaitReportWhere(t testing.TB, c *apiclient.Client, digest string, accept func(*report.Report) bool) *report.Report {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	var last *report.Report
	var lastErr error
	for time.Now().Before(deadline) {
		r, err := c.ScanReport(context.Background(), digest)
		last, lastErr = r, err
		if err == nil && r.Status.Final() && (accept == nil || accept(r)) {
			return r
		}
		if err != nil && !apperr.Is(err, apperr.ENOTFOUND) {
			t.Fatalf("GET /api/v1/scans/%s: %v", digest, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("report of %s not ready in 3 minutes: last %+v, %v", digest, last, lastErr)
	return nil
}

// CLI runs the customs binary with args as the server's administrator
// (CUSTOMS_USERNAME/PASSWORD; the caller adds --server) and returns its
// outputs and exit code; it fails the test only if the binary cannot run.
func (s *Server) CLI(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, CustomsBinary(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"CUSTOMS_USERNAME=" + s.Username, "CUSTOMS_PASSWORD=" + s.Password}
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatalf("customs %s: %v", strings.Join(args, " "), err)
	}
	code = cmd.ProcessState.ExitCode()
	t.Logf("$ customs %s (exit %d)", strings.Join(args, " "), code)
	return out.String(), errOut.String(), code
}

// MustCLI is CLI that fails the test, with the outputs, unless customs
// exits 0; it returns stdout.
func (s *Server) MustCLI(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, code := s.CLI(t, args...)
	if code != 0 {
		t.Fatalf("customs %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}
