// Package harness runs end-to-end tests against real processes: it builds
// and starts `customs serve` (or, for comparison, the CNCF distribution
// registry) on a loopback port with a temporary data directory, and runs the
// real clients a user would run (skopeo, crane, oras, regctl, ...) in a
// sandbox of their own.
//
// External tools are looked up in PATH, then in the cache that
// scripts/test-deps.sh fills ($HOME/.cache/customs-test/bin). When one is
// missing the test is skipped with a message naming it and `make test`,
// unless CUSTOMS_E2E=1 (set by `make test` and CI), where it is a failure.
//
// A test package using the harness calls Main from its TestMain so the
// customs binary it builds is removed afterwards.
package harness

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// EnvE2E, when "1", turns a missing tool or test image into a test failure.
const EnvE2E = "CUSTOMS_E2E"

// EnvImages names the directory holding cached test images (OCI layouts).
const EnvImages = "CUSTOMS_TEST_IMAGES"

// EnvTarget selects what Start runs: "customs" (default) or "distribution"
// (the CNCF registry, to tell a client-side problem from a server-side one).
const EnvTarget = "CUSTOMS_E2E_TARGET"

// build is the customs binary built once per test binary.
var build struct {
	once sync.Once
	dir  string // temp dir holding the binary; removed by Main
	path string
	err  error
}

// Main runs the package's tests and removes what the harness built; use it
// as `func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }`.
func Main(m *testing.M) int {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	return code
}

// CustomsBinary returns the path of `customs` built from this module's
// ./cmd/customs, building it on first use (once per test binary). A build
// failure fails the test: the binary is part of the repository, not a tool.
func CustomsBinary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			build.err = err
			return
		}
		build.dir, err = os.MkdirTemp("", "customs-e2e-bin-")
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(build.dir, "customs")
		cmd := exec.Command("go", "build", "-o", build.path, "./cmd/customs")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build ./cmd/customs: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatalf("building customs: %v", build.err)
	}
	return build.path
}

// ModuleRoot returns the directory of the main module's go.mod, found from
// the working directory (a test's package directory).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// cacheDir is where scripts/test-deps.sh puts tools and images.
func cacheDir() string {
	if d := os.Getenv("CUSTOMS_TEST_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "customs-test")
}

// required reports a missing prerequisite: a failure under CUSTOMS_E2E=1, a
// skip otherwise.
func required(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(EnvE2E) == "1" {
		t.Fatalf("%s (CUSTOMS_E2E=1: missing prerequisites fail; `make test` installs them)", msg)
	}
	t.Skipf("%s: run `make test`, which installs it (or set %s=1 to make this a failure)", msg, EnvE2E)
}

// Tool returns the absolute path of the external program name, from PATH or
// the test cache's bin directory; when it is missing the test is skipped, or
// failed under CUSTOMS_E2E=1.
func Tool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
		return p
	}
	if c := cacheDir(); c != "" {
		p := filepath.Join(c, "bin", name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	required(t, "%s is not installed (not in PATH nor in %s)", name, filepath.Join(cacheDir(), "bin"))
	return ""
}

// Image returns a private copy, in a temp dir of t, of the cached OCI image
// layout name (e.g. "debian-bookworm"), so clients may read or write it
// without touching the cache. A missing image skips the test, or fails it
// under CUSTOMS_E2E=1.
func Image(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv(EnvImages)
	if dir == "" {
		dir = filepath.Join(cacheDir(), "images")
	}
	src := filepath.Join(dir, name)
	if _, err := os.Stat(filepath.Join(src, "index.json")); err != nil {
		required(t, "test image %s is not built (no %s)", name, filepath.Join(src, "index.json"))
	}
	dst := filepath.Join(t.TempDir(), name)
	if err := copyTree(src, dst); err != nil {
		t.Fatalf("copying test image %s: %v", name, err)
	}
	return dst
}

// copyTree copies the regular files and directories under src to dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", p)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// filterEnv returns environ without the variables whose names start with
// one of prefixes or equal one of them (names given with a trailing "=").
func filterEnv(environ []string, prefixes ...string) []string {
	var out []string
next:
	for _, kv := range environ {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}
