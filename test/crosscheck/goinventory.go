package crosscheck

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/scan/extract"
)

// GoBinaryPackages returns the Go packages the scanner finds for the binary
// at bin: it places bin in a root filesystem under rootDir (an empty
// directory) as usr/local/bin/<name> and inventories that directory with
// x, as a scan of an image holding the binary would. The result is what
// scan/extract reports for Go binaries: the modules of the build
// information and the stdlib pseudo-package at the toolchain's version.
func GoBinaryPackages(ctx context.Context, x *extract.Extractor, rootDir, bin string) ([]inventory.Package, error) {
	dst := filepath.Join(rootDir, "usr", "local", "bin", filepath.Base(bin))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return nil, err
	}
	if err := linkOrCopy(bin, dst); err != nil {
		return nil, err
	}
	inv, err := x.Dir(ctx, rootDir)
	if err != nil {
		return nil, fmt.Errorf("inventory of %s: %w", bin, err)
	}
	var out []inventory.Package
	for _, p := range inv.Packages {
		if p.Ecosystem == inventory.Go {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("inventory of %s: no Go package found (%d packages of other ecosystems)", bin, len(inv.Packages))
	}
	return out, nil
}

// linkOrCopy hard-links src to dst, or copies it (keeping its mode) when
// they are on different file systems.
func linkOrCopy(src, dst string) error {
	if os.Link(src, dst) == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, st.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
