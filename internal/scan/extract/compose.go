package extract

import (
	"cmp"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	scalibrextractor "github.com/google/osv-scalibr/extractor"
	apkmeta "github.com/google/osv-scalibr/extractor/filesystem/os/apk/metadata"
	dpkgmeta "github.com/google/osv-scalibr/extractor/filesystem/os/dpkg/metadata"
	rpmmeta "github.com/google/osv-scalibr/extractor/filesystem/os/rpm/metadata"

	"github.com/customs-dev/customs/internal/inventory"
)

// live is a file of the composed filesystem that a layer's extractors read.
type live struct {
	res *FileResult
	// since[i] is the index of the lowest layer from which
	// res.Packages[i] has been present at this path without interruption.
	since []int
}

// Compose applies layer results bottom (index 0) to top, as a container
// runtime stacks the layers, and returns the inventory of the result. ids
// are the layers' diffIDs, in the same order, and become each package's
// Layer ("" entries for a directory scan).
//
//   - A path's packages are replaced by an upper layer's file at that path,
//     and removed by a whiteout of it or of a directory above it, or by an
//     opaque directory above it in an upper layer.
//   - A package's Layer is the lowest layer from which it has been present
//     at its path without interruption: a dpkg status rewritten in layer 3
//     still attributes an unchanged libc6 to layer 1; a package removed and
//     added again counts from where it came back.
//   - A language package whose file an OS package installed (dpkg, apk and
//     rpm file lists) is left out: the OS package reports it.
//   - The distro is read from /etc/os-release, following a symlink inside
//     the image, else from /usr/lib/os-release. OS packages take their
//     ecosystem and PURL from it.
//   - The same package found at several paths is reported once, with
//     every location and the lowest Layer (see mergeKey).
func Compose(results []*LayerResult, ids []string) (*inventory.Inventory, error) {
	if len(results) != len(ids) {
		return nil, fmt.Errorf("compose: %d layer results but %d layer ids", len(results), len(ids))
	}
	state := map[string]*live{}
	for i, lr := range results {
		if lr == nil {
			return nil, fmt.Errorf("compose: layer %d (%s) has no result", i, ids[i])
		}
		// Whiteouts and opaque directories hide lower layers only: apply
		// them before this layer's own files.
		hide(state, lr.Whiteouts, lr.Opaque)
		for p, fr := range lr.Files {
			state[p] = carryOver(state[p], fr, i)
		}
	}
	return inventoryOf(state, ids), nil
}

// hide deletes the paths that whiteouts remove (each with everything below
// it) and everything below the opaque directories ("." is the root). It
// costs a lookup per ancestor of each live path, however many whiteouts a
// layer has.
func hide(state map[string]*live, whiteouts, opaque []string) {
	if len(whiteouts) == 0 && len(opaque) == 0 {
		return
	}
	gone := make(map[string]bool, len(whiteouts))
	for _, w := range whiteouts {
		gone[w] = true
	}
	below := make(map[string]bool, len(opaque))
	for _, d := range opaque {
		if d == "." {
			clear(state)
			return
		}
		below[d] = true
	}
	for p := range state {
		if gone[p] {
			delete(state, p)
			continue
		}
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if gone[d] || below[d] {
				delete(state, p)
				break
			}
		}
	}
}

// carryOver makes the live file of layer i for fr, keeping the first
// layer of each package that old (the file it replaces) already had.
func carryOver(old *live, fr *FileResult, i int) *live {
	l := &live{res: fr, since: make([]int, len(fr.Packages))}
	var prev map[string]int
	if old != nil && len(old.res.Packages) > 0 {
		prev = make(map[string]int, len(old.res.Packages))
		for j, p := range old.res.Packages {
			prev[identity(p)] = old.since[j]
		}
	}
	for j, p := range fr.Packages {
		l.since[j] = i
		if s, ok := prev[identity(p)]; ok {
			l.since[j] = s
		}
	}
	return l
}

// identity is what makes a package the same one in two layers.
func identity(p Package) string {
	return strings.Join([]string{p.Extractor, p.Name, p.Version, p.Arch, p.SourceName, p.SourceVersion, p.Platform}, "\x00")
}

func inventoryOf(state map[string]*live, ids []string) *inventory.Inventory {
	inv := &inventory.Inventory{Packages: []inventory.Package{}}
	osr := resolveOSRelease(state)
	if osr != nil && osr["ID"] != "" {
		inv.Distro = &inventory.Distro{
			ID:         osr["ID"],
			VersionID:  osr["VERSION_ID"],
			Codename:   osr["VERSION_CODENAME"],
			PrettyName: osr["PRETTY_NAME"],
		}
	}
	canon := topLevelLinks(state)
	owned := map[string]bool{}
	for _, l := range state {
		for _, o := range l.res.Owns {
			owned[canon(o)] = true
		}
	}

	type merged struct {
		pkg   inventory.Package
		since int
	}
	byKey := map[string]*merged{}
	var order []string
	for _, path := range slices.Sorted(maps.Keys(state)) {
		l := state[path]
		for j, p := range l.res.Packages {
			if p.Ecosystem != "" && owned[canon(p.Locations[0])] {
				continue // a language package an OS package installed
			}
			ip := toInventory(p, osr)
			m, ok := byKey[mergeKey(p, ip)]
			if !ok {
				m = &merged{pkg: ip, since: l.since[j]}
				byKey[mergeKey(p, ip)] = m
				order = append(order, mergeKey(p, ip))
				continue
			}
			m.pkg.Locations = append(m.pkg.Locations, ip.Locations...)
			m.since = min(m.since, l.since[j])
			if ip.PURL < m.pkg.PURL { // the same whatever the order of paths
				m.pkg.PURL = ip.PURL
			}
		}
	}
	for _, k := range order {
		m := byKey[k]
		slices.Sort(m.pkg.Locations)
		m.pkg.Locations = slices.Compact(m.pkg.Locations)
		m.pkg.Layer = ids[m.since]
		inv.Packages = append(inv.Packages, m.pkg)
	}
	slices.SortFunc(inv.Packages, func(a, b inventory.Package) int {
		return cmp.Or(cmp.Compare(a.Ecosystem, b.Ecosystem), cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Version, b.Version), cmp.Compare(a.PURL, b.PURL), cmp.Compare(a.Platform, b.Platform))
	})
	return inv
}

// mergeKey says which packages are one: an OS package is one per
// ecosystem, name, version and PURL (which holds the architecture); a
// language package per ecosystem, name, version and platform (extractors
// qualify PURLs differently, a lockfile and node_modules for one; a module
// in Go binaries of two platforms may have advisories of one only).
func mergeKey(p Package, ip inventory.Package) string {
	k := []string{ip.Ecosystem, ip.Name, ip.Version, ip.Platform}
	if p.Ecosystem == "" {
		k = append(k, ip.PURL)
	}
	return strings.Join(k, "\x00")
}

// resolveOSRelease returns the os-release fields of the composed image:
// /etc/os-release (a file, or a symlink resolved inside the image, as the
// image's own processes would), else /usr/lib/os-release; nil when none.
func resolveOSRelease(state map[string]*live) map[string]string {
	p := "etc/os-release"
	for range 8 { // symlink hops
		l, ok := state[p]
		if !ok {
			break
		}
		if l.res.OSRelease != nil {
			return l.res.OSRelease
		}
		if l.res.Symlink == "" {
			break
		}
		p = resolveLink(p, l.res.Symlink)
	}
	if l, ok := state["usr/lib/os-release"]; ok && l.res.OSRelease != nil {
		return l.res.OSRelease
	}
	return nil
}

// resolveLink returns the path a symlink at p with target t names, inside
// the image: absolute targets start at the image root, and ".." never
// climbs above it.
func resolveLink(p, t string) string {
	if !strings.HasPrefix(t, "/") {
		t = path.Join("/", path.Dir(p), t)
	}
	return strings.TrimPrefix(path.Clean("/"+t), "/")
}

// topLevelLinks returns a function that writes a path (absolute, as
// package managers list files, or relative) the way the composed image
// stores it: relative, cleaned, and through the top-level directory
// symlinks of usr-merged images (bin/bash -> usr/bin/bash).
func topLevelLinks(state map[string]*live) func(string) string {
	links := map[string]string{}
	for p, l := range state {
		if l.res.Symlink != "" && !strings.Contains(p, "/") {
			if t := resolveLink(p, l.res.Symlink); t != "" && t != "." {
				links[p] = t
			}
		}
	}
	return func(p string) string {
		p = strings.TrimPrefix(path.Clean("/"+p), "/")
		first, rest, _ := strings.Cut(p, "/")
		if t, ok := links[first]; ok && rest != "" {
			return t + "/" + rest
		}
		return p
	}
}

// toInventory turns a layer package into an inventory package; OS packages
// take their ecosystem and PURL from the image's os-release osr, through
// osv-scalibr's rules for them.
func toInventory(p Package, osr map[string]string) inventory.Package {
	ip := inventory.Package{
		Ecosystem:     p.Ecosystem,
		Name:          p.Name,
		Version:       p.Version,
		SourceName:    p.SourceName,
		SourceVersion: p.SourceVersion,
		PURL:          p.PURL,
		Platform:      p.Platform,
	}
	for _, l := range p.Locations {
		// Cleaned: a path inside an archive comes from the archive.
		ip.Locations = append(ip.Locations, path.Clean("/"+l))
	}
	if p.Ecosystem != "" {
		return ip
	}
	sp := &scalibrextractor.Package{Name: p.Name, Version: p.Version, PURLType: p.PURLType}
	switch p.PURLType {
	case "deb", "opkg":
		sp.Metadata = &dpkgmeta.Metadata{
			PackageName: p.Name, PackageVersion: p.Version,
			SourceName: p.SourceName, SourceVersion: p.SourceVersion, Architecture: p.Arch,
			OSID: osr["ID"], OSVersionCodename: osr["VERSION_CODENAME"], OSVersionID: osr["VERSION_ID"],
		}
	case "apk":
		sp.Metadata = &apkmeta.Metadata{
			PackageName: p.Name, OriginName: cmp.Or(p.SourceName, p.Name), Architecture: p.Arch,
			OSID: osr["ID"], OSVersionID: osr["VERSION_ID"],
		}
	case "rpm":
		sp.Metadata = &rpmmeta.Metadata{
			PackageName: p.Name, SourceRPM: p.SourceRPM, Epoch: p.Epoch, Architecture: p.Arch,
			OSName: osr["NAME"], OSCPEName: osr["CPE_NAME"], OSPrettyName: osr["PRETTY_NAME"],
			OSID: osr["ID"], OSVersionID: osr["VERSION_ID"], OSBuildID: osr["BUILD_ID"],
		}
		if p.Epoch > 0 { // the form rpm advisories compare: [epoch:]version-release
			ip.Version = fmt.Sprintf("%d:%s", p.Epoch, p.Version)
		}
	}
	ip.Ecosystem = string(sp.Ecosystem().Ecosystem)
	if ip.Ecosystem == "" && p.PURLType == "deb" {
		ip.Ecosystem = debianFamily(osr)
	}
	if u := sp.PURL(); u != nil {
		ip.PURL = u.String()
	}
	return ip
}

// debianFamily names the ecosystem of dpkg packages on a distribution OSV
// has no ecosystem for, by the one it derives from (os-release ID_LIKE).
func debianFamily(osr map[string]string) string {
	for _, like := range strings.Fields(osr["ID_LIKE"]) {
		switch like {
		case "ubuntu":
			return inventory.Ubuntu
		case "debian":
			return inventory.Debian
		}
	}
	return ""
}
