package crosscheck

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Program is a Go main package in a module of its own (a directory with
// go.mod, go.sum and sources), built with a given toolchain.
type Program struct {
	// Dir is the module's directory.
	Dir string
	// Toolchain is a Go toolchain name ("go1.20") the go command
	// downloads from the module proxy and builds with (GOTOOLCHAIN);
	// empty for the local one.
	Toolchain string
}

// Name is the program's directory name, also its binary's name.
func (p Program) Name() string { return filepath.Base(p.Dir) }

// BuildPlatform is the GOOS/GOARCH every program is built for, whatever
// the machine: the platform of most container images, and the one whose
// findings the cross-check's expectations name (advisories of other
// platforms are left out by both tools). Neither tool runs the binary.
const BuildPlatform = "linux/amd64"

// BuildCached returns the path of p's binary, built for BuildPlatform,
// under cacheDir, building it first unless a binary of the same sources,
// toolchain and platform is there already. The key hashes every file of
// p.Dir, the toolchain (the local go's version when Toolchain is empty)
// and the platform. Builds use -mod=readonly (go.sum pins every module),
// -trimpath and no cgo, and land in a temporary directory renamed into
// place, so a killed build never leaves a half-written binary behind.
func BuildCached(ctx context.Context, p Program, cacheDir string) (string, error) {
	toolchain := p.Toolchain
	if toolchain == "" {
		out, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
		if err != nil {
			return "", fmt.Errorf("go env GOVERSION: %w", err)
		}
		toolchain = "local " + strings.TrimSpace(string(out))
	}
	goos, goarch, _ := strings.Cut(BuildPlatform, "/")
	key, err := sourceKey(p.Dir, "crosscheck gobin v1", toolchain, BuildPlatform)
	if err != nil {
		return "", err
	}
	final := filepath.Join(cacheDir, p.Name()+"-"+key[:20])
	bin := filepath.Join(final, p.Name())
	if st, err := os.Stat(bin); err == nil && st.Mode().IsRegular() {
		return bin, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(cacheDir, "."+p.Name()+".")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(tmp, p.Name()), ".")
	cmd.Dir = p.Dir
	tc := p.Toolchain
	if tc == "" {
		tc = "local"
	}
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOTOOLCHAIN="+tc, "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch,
		"GOFLAGS=-mod=readonly -trimpath -buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s (GOTOOLCHAIN=%s): %v\n%s", p.Dir, tc, err, out)
	}
	if err := os.Rename(tmp, final); err != nil {
		// Another run finished the same binary first: use theirs.
		if st, serr := os.Stat(bin); serr == nil && st.Mode().IsRegular() {
			return bin, nil
		}
		return "", err
	}
	return bin, nil
}

// sourceKey hashes the extra strings and every regular file under dir
// (path and content) into a hex key.
func sourceKey(dir string, extra ...string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, s := range extra {
		fmt.Fprintf(h, "%q\n", s)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, err := filepath.Rel(dir, f)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(h, "%q %x\n", filepath.ToSlash(rel), sum)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
