package report

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/customs-dev/customs/internal/inventory"
)

// sbomPackage is one package of an SBOM document with the identifier the
// document gives it.
type sbomPackage struct {
	inventory.Package
	// id is unique within the document and the same for the same
	// package in every encoding of the same report: a hash of the
	// package's identity, with a counter for exact duplicates.
	id string
}

// packageKey identifies an installed package: ecosystem, name, version,
// layer and locations. A finding's Package is a copy of its inventory
// package, so it has the key of that package.
func packageKey(p inventory.Package) string {
	return strings.Join(append([]string{p.Ecosystem, p.Name, p.Version, p.Layer}, p.Locations...), "\x00")
}

// comparePackages orders packages by ecosystem, name, version, then
// location and layer.
func comparePackages(a, b inventory.Package) int {
	return cmp.Or(
		cmp.Compare(a.Ecosystem, b.Ecosystem),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Version, b.Version),
		slices.Compare(a.Locations, b.Locations),
		cmp.Compare(a.Layer, b.Layer),
	)
}

// sbomPackages returns the packages an SBOM of r lists, sorted: the
// inventory's when r has one, else the distinct packages of its findings
// (a report without its inventory still describes what is vulnerable).
// byKey maps each packageKey to its id.
func sbomPackages(r *Report) (pkgs []sbomPackage, byKey map[string]string) {
	var src []inventory.Package
	if r.Inventory != nil {
		src = r.Inventory.Packages
	} else {
		for _, f := range r.Findings {
			src = append(src, f.Package)
		}
	}
	sorted := slices.Clone(src)
	slices.SortFunc(sorted, comparePackages)
	byKey = make(map[string]string, len(sorted))
	used := make(map[string]int, len(sorted))
	for _, p := range sorted {
		key := packageKey(p)
		if _, dup := byKey[key]; dup && r.Inventory == nil {
			continue // the same package in several findings
		}
		h := sha256.Sum256([]byte(key))
		id := hex.EncodeToString(h[:8])
		n := used[id]
		used[id]++
		if n > 0 {
			id += "-" + strconv.Itoa(n) // an exact duplicate in the inventory
		}
		if _, dup := byKey[key]; !dup {
			byKey[key] = id
		}
		pkgs = append(pkgs, sbomPackage{Package: p, id: id})
	}
	return pkgs, byKey
}

// documentUUID is a name-based (SHA-1, version 5) UUID of everything an
// SBOM document of r says, so that the same report encoded twice gets the
// same serial number or namespace and a different report a different
// one.
func documentUUID(r *Report, o Options, format Format) uuid.UUID {
	h := sha256.New()
	enc := json.NewEncoder(h)
	_ = enc.Encode(r) // a Report always encodes
	_ = enc.Encode([]string{string(format), o.Subject, o.ToolName, o.ToolVersion, o.Created.String()})
	return uuid.NewSHA1(uuid.NameSpaceURL, h.Sum(nil))
}

// webURL reports whether s is an absolute http(s) URL that parses, the
// only references formats with a URI type are given.
func webURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && !strings.ContainsAny(s, " \t\r\n")
}

// findingsByAdvisory groups r's findings per advisory id, in the order
// the ids first appear (r's order: highest severity first).
func findingsByAdvisory(r *Report) (ids []string, by map[string][]Finding) {
	by = map[string][]Finding{}
	for _, f := range r.Findings {
		if _, ok := by[f.AdvisoryID]; !ok {
			ids = append(ids, f.AdvisoryID)
		}
		by[f.AdvisoryID] = append(by[f.AdvisoryID], f)
	}
	return ids, by
}
