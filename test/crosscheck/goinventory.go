package crosscheck

import (
	"context"
	"fmt"
	"os"

	"github.com/google/osv-scalibr/extractor/filesystem"
	"github.com/google/osv-scalibr/extractor/filesystem/language/golang/gobinary"

	cpb "github.com/google/osv-scalibr/binary/proto/config_go_proto"

	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/vulndb/ecosystem"
)

// GoBinaryPackages returns the Go packages of the binary at path as the
// scanner reports them: the modules of its build information (replaced
// modules under their replacement) and the stdlib pseudo-package at the
// version of the toolchain that built it, each located at path. Modules
// without a usable version (a main module built from a checkout,
// "(devel)") are left out, as they match nothing.
//
// It reads the binary with osv-scalibr's gobinary extractor, the one
// package scan/extract uses, and renames scalibr's "go" package to stdlib
// as scan/extract does. (Replace with scan/extract once it is committed.)
func GoBinaryPackages(ctx context.Context, path string) ([]inventory.Package, error) {
	ex, err := gobinary.New(&cpb.PluginConfig{})
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	inv, err := ex.Extract(ctx, &filesystem.ScanInput{Path: path, Info: info, Reader: f})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(inv.Packages) == 0 {
		return nil, fmt.Errorf("%s: no Go build information found", path)
	}
	var out []inventory.Package
	for _, p := range inv.Packages {
		name, version := p.Name, p.Version
		if version == "" || version == "(devel)" {
			continue
		}
		if name == "go" {
			name = ecosystem.GoStdlib
		}
		out = append(out, inventory.Package{
			Ecosystem: inventory.Go,
			Name:      name,
			Version:   version,
			Locations: []string{path},
		})
	}
	return out, nil
}
