// Package crosscheck checks customs' findings against other scanners run on
// the same inputs with the same advisories.
//
// The Go check (crosscheck_test.go) builds small Go programs against
// vulnerable module versions (for BuildPlatform), runs `govulncheck
// -mode=binary -scan=module` on them with the repository's Go advisories
// laid out as a Go vulnerability database (WriteGoVulnDB), and matches the
// same binaries' inventories, taken by scan/extract (GoBinaryPackages),
// with package vulndb/match: customs must report exactly govulncheck's
// module-level findings, leaving out as it does the advisories that affect
// only other platforms than the binary's.
package crosscheck

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/vulndb/ecosystem"
	"github.com/customs-dev/customs/internal/vulndb/osv"
)

// Record is one OSV record as it was stored (Raw) and as customs parses
// it (V).
type Record struct {
	// Name is the record's file name inside its archive.
	Name string
	Raw  []byte
	V    *osv.Vulnerability
}

// ReadZip reads every record of an OSV all.zip export. An entry that is
// not an OSV record is an error naming it.
func ReadZip(path string) ([]Record, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	out := make([]Record, 0, len(zr.File))
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, f.Name, err)
		}
		raw, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, f.Name, err)
		}
		v, err := osv.Parse(f.Name, raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, Record{Name: f.Name, Raw: raw, V: v})
	}
	return out, nil
}

// Vulnerabilities returns the parsed records of recs, in order.
func Vulnerabilities(recs []Record) []*osv.Vulnerability {
	out := make([]*osv.Vulnerability, len(recs))
	for i := range recs {
		out[i] = recs[i].V
	}
	return out
}

// Go vulnerability database (v1) index documents; field names and
// meanings are those of https://go.dev/doc/security/vuln/database#api and
// of golang.org/x/vuln's internal/client, which reads them.
type (
	// DBMeta is index/db.json.
	DBMeta struct {
		Modified time.Time `json:"modified"`
	}
	// ModuleMeta is one element of index/modules.json.
	ModuleMeta struct {
		Path  string       `json:"path"`
		Vulns []ModuleVuln `json:"vulns"`
	}
	// ModuleVuln is one vulnerability of a module in index/modules.json.
	ModuleVuln struct {
		ID       string    `json:"id"`
		Modified time.Time `json:"modified"`
		// Fixed is the latest fix not superseded by a later introduction,
		// without "v"; empty when there is none.
		Fixed string `json:"fixed,omitempty"`
	}
	// VulnMeta is one element of index/vulns.json.
	VulnMeta struct {
		ID       string    `json:"id"`
		Modified time.Time `json:"modified"`
		Aliases  []string  `json:"aliases,omitempty"`
	}
)

// safeID is what a record id must look like to name a file ID/<id>.json.
var safeID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// WriteGoVulnDB writes the Go records of recs (those with an affected
// package of ecosystem "Go") into dir as a Go vulnerability database of
// the v1 layout that `govulncheck -db file://DIR` reads: index/db.json,
// index/modules.json, index/vulns.json and ID/<id>.json. Records are
// written as they were stored (Raw, when it is JSON), so the tool reads
// exactly what customs imported; records of other ecosystems are left out.
// It returns the number of records written.
//
// The index follows x/vuln's own indexing of a directory of records: a
// record's modified time (its published time when modified is the zero
// time, as in the Go database's OSV export), one modules.json entry per
// (module, record), with the latest non-superseded fix (the greatest of
// the record's affected entries for that module, or none when one of them
// has none, so the fix never hides an affected version). The database's
// modified time is the latest record's. A record id that cannot name a
// file, or two records with one id, is an error naming the record; dir
// may then hold part of the database.
func WriteGoVulnDB(dir string, recs []Record) (int, error) {
	goRules, err := ecosystem.For(inventory.Go)
	if err != nil {
		return 0, err
	}
	for _, sub := range []string{"index", "ID"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return 0, err
		}
	}
	var db DBMeta
	modules := make(map[string]*ModuleMeta)
	var vulns []VulnMeta
	seen := make(map[string]string, len(recs))
	for _, r := range recs {
		v := r.V
		paths := goModules(v)
		if len(paths) == 0 {
			continue
		}
		if !safeID.MatchString(v.ID) {
			return 0, fmt.Errorf("%s: record id %q cannot name a file ID/<id>.json", r.Name, v.ID)
		}
		if prev, ok := seen[v.ID]; ok {
			return 0, fmt.Errorf("%s: record id %s is also the id of %s", r.Name, v.ID, prev)
		}
		seen[v.ID] = r.Name
		raw := r.Raw
		if !json.Valid(raw) {
			if raw, err = json.Marshal(v); err != nil {
				return 0, fmt.Errorf("%s: %w", r.Name, err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "ID", v.ID+".json"), raw, 0o644); err != nil {
			return 0, err
		}
		modified := v.Modified
		if modified.IsZero() && v.Published != nil {
			modified = *v.Published
		}
		modified = modified.UTC()
		if modified.After(db.Modified) {
			db.Modified = modified
		}
		vulns = append(vulns, VulnMeta{ID: v.ID, Modified: modified, Aliases: v.Aliases})
		for _, path := range paths {
			fixed, err := moduleFix(goRules, v, path)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", r.Name, err)
			}
			m := modules[path]
			if m == nil {
				m = &ModuleMeta{Path: path}
				modules[path] = m
			}
			m.Vulns = append(m.Vulns, ModuleVuln{ID: v.ID, Modified: modified, Fixed: fixed})
		}
	}
	mods := make([]*ModuleMeta, 0, len(modules))
	for _, m := range modules {
		sort.Slice(m.Vulns, func(i, j int) bool { return m.Vulns[i].ID < m.Vulns[j].ID })
		mods = append(mods, m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Path < mods[j].Path })
	sort.Slice(vulns, func(i, j int) bool { return vulns[i].ID < vulns[j].ID })
	for name, doc := range map[string]any{"db.json": db, "modules.json": mods, "vulns.json": vulns} {
		b, err := json.Marshal(doc)
		if err != nil {
			return 0, err
		}
		if err := os.WriteFile(filepath.Join(dir, "index", name), b, 0o644); err != nil {
			return 0, err
		}
	}
	return len(vulns), nil
}

// goModules returns the distinct module paths of v's Go affected entries,
// in order.
func goModules(v *osv.Vulnerability) []string {
	var out []string
	for _, a := range v.Affected {
		if ecosystem.Split(a.Package.Ecosystem).Base != inventory.Go {
			continue
		}
		dup := false
		for _, p := range out {
			dup = dup || p == a.Package.Name
		}
		if !dup {
			out = append(out, a.Package.Name)
		}
	}
	return out
}

// moduleFix returns the fix of module path for modules.json: the greatest
// non-superseded fix of v's Go entries for path, or "" when one of them
// has none.
func moduleFix(rules *ecosystem.Rules, v *osv.Vulnerability, path string) (string, error) {
	var best ecosystem.Version
	for i, a := range v.Affected {
		if a.Package.Name != path || ecosystem.Split(a.Package.Ecosystem).Base != inventory.Go {
			continue
		}
		fix, err := nonSupersededFix(rules, a.Ranges)
		if err != nil {
			return "", fmt.Errorf("%s: affected[%d]: %w", v.ID, i, err)
		}
		if fix.IsZero() {
			return "", nil
		}
		if best.IsZero() || fix.Compare(best) > 0 {
			best = fix
		}
	}
	if best.IsZero() {
		return "", nil
	}
	return best.String(), nil
}

// nonSupersededFix is x/vuln's semver.NonSupersededFix: per SEMVER range,
// the greatest fixed version, dropped when a later introduced event
// re-opens the vulnerability after it. The zero Version means none.
func nonSupersededFix(rules *ecosystem.Rules, ranges []osv.Range) (ecosystem.Version, error) {
	var latest ecosystem.Version
	// less is x/vuln's semver.Less with "" (the zero Version) below
	// every version.
	less := func(a, b ecosystem.Version) bool { return a.IsZero() || a.Compare(b) < 0 }
	for _, r := range ranges {
		if r.Type != osv.RangeSemver {
			continue
		}
		for _, e := range r.Events {
			if e.Fixed == "" {
				continue
			}
			f, err := rules.Parse(e.Fixed)
			if err != nil {
				return ecosystem.Version{}, err
			}
			if less(latest, f) {
				latest = f
			}
		}
		for _, e := range r.Events {
			if e.Introduced == "" || e.Introduced == "0" {
				continue
			}
			in, err := rules.Parse(e.Introduced)
			if err != nil {
				return ecosystem.Version{}, err
			}
			if less(latest, in) {
				latest = ecosystem.Version{}
				break
			}
		}
	}
	return latest, nil
}
