package vulndb

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/sqlite"
	"github.com/customs-dev/customs/internal/vulndb/ecosystem"
	"github.com/customs-dev/customs/internal/vulndb/osv"
)

// BenchmarkImport imports every export of testdata/vulndata (18,000
// records) into a fresh SQLite database.
func BenchmarkImport(b *testing.B) {
	ctx := context.Background()
	srcs := allSources(b)
	for b.Loop() {
		b.StopTimer()
		s := newService(b, Options{})
		b.StartTimer()
		if _, err := s.Import(ctx, srcs...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReimport imports every export of testdata/vulndata again with
// nothing changed.
func BenchmarkReimport(b *testing.B) {
	ctx := context.Background()
	srcs := allSources(b)
	s := newService(b, Options{})
	if _, err := s.Import(ctx, srcs...); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		rs, err := s.Import(ctx, srcs...)
		if err != nil {
			b.Fatal(err)
		}
		if rs[0].Changed() {
			b.Fatal("a re-import changed records")
		}
	}
}

// BenchmarkIndexBuild builds the index of every export of testdata/vulndata
// from the database, as every replica does once per revision.
func BenchmarkIndexBuild(b *testing.B) {
	ctx := context.Background()
	s := newService(b, Options{})
	if _, err := s.Import(ctx, allSources(b)...); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.build(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// benchPackage is a package name advisories know, with a version they
// say is fixed.
type benchPackage struct {
	base, release, name, fixed string
}

// benchPool reads the stored advisories' affected packages, per base
// ecosystem, and the ids of the advisories naming each.
func benchPool(b *testing.B, st store.VulnStore) (map[string][]benchPackage, map[string][]string) {
	pool := map[string][]benchPackage{}
	byName := map[string][]string{} // base/name -> advisory ids
	seen := map[string]bool{}
	_, err := st.ScanVulnRecords(context.Background(), func(r store.VulnRecord) error {
		if r.Kind != store.VulnOSV {
			return nil
		}
		v, err := osv.Parse(r.ID+".json", r.Data)
		if err != nil {
			return nil
		}
		for _, a := range v.Affected {
			e := ecosystem.Split(a.Package.Ecosystem)
			key := e.Base + "/" + a.Package.Name
			if !slices.Contains(byName[key], v.ID) {
				byName[key] = append(byName[key], v.ID)
			}
			fixed := ""
			for _, rg := range a.Ranges {
				for _, ev := range rg.Events {
					if ev.Fixed != "" {
						fixed = ev.Fixed
					}
				}
			}
			if fixed == "" || seen[key] {
				continue
			}
			seen[key] = true
			pool[e.Base] = append(pool[e.Base], benchPackage{base: e.Base, release: e.Release, name: a.Package.Name, fixed: fixed})
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return pool, byName
}

// templateInventory is a made-up image: an Alpine release with 120 Alpine
// packages, 50 Go modules and 30 PyPI packages, a quarter of them unknown
// to any advisory, half of the rest at a version below the advisories' fix.
func templateInventory(rng *rand.Rand, pool map[string][]benchPackage, i int) *inventory.Inventory {
	releases := []string{"3.3.3", "3.4.6", "3.5.3", "3.6.5", "3.7.3", "3.8.5", "3.9.6", "3.10.9", "3.11.13"}
	inv := &inventory.Inventory{Distro: &inventory.Distro{ID: "alpine", VersionID: releases[i%len(releases)]}}
	add := func(base string, n int, low string, prefix string) {
		for j := range n {
			list := pool[base]
			p := list[rng.IntN(len(list))]
			name, version := p.name, prefix+p.fixed
			if rng.IntN(4) == 0 {
				name = fmt.Sprintf("bench-miss-%d-%d", i, j)
			}
			if rng.IntN(2) == 0 {
				version = low
			}
			inv.Packages = append(inv.Packages, inventory.Package{Ecosystem: base, Name: name, Version: version})
		}
	}
	add("Alpine", 120, "0.0.1-r0", "")
	add("Go", 50, "v0.0.1", "v")
	add("PyPI", 30, "0.0.1", "")
	return inv
}

// benchTemplates is how many distinct inventories the bulk setup copies.
const benchTemplates = 200

// setupInventories imports all of testdata/vulndata into a fresh SQLite
// database and stores n inventories of 200 packages: benchTemplates
// distinct ones through PutInventory, the rest copied from them in bulk
// with SQL (the faster setup the measured Affected does not depend on).
func setupInventories(b *testing.B, n int) (*Service, map[string][]string) {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "customs.db")
	db, err := sqlite.Open(ctx, path, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	s := newService(b, Options{Store: db})
	if _, err := s.Import(ctx, allSources(b)...); err != nil {
		b.Fatal(err)
	}
	pool, byName := benchPool(b, db)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range min(n, benchTemplates) {
		if err := s.PutInventory(ctx, store.InventoryKey{Digest: fmt.Sprintf("sha256:bench-%d", i+1)}, templateInventory(rng, pool, i)); err != nil {
			b.Fatal(err)
		}
	}
	if n > benchTemplates {
		raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_pragma=synchronous(OFF)")
		if err != nil {
			b.Fatal(err)
		}
		defer raw.Close()
		// Building the lookup index once after the rows is much faster
		// than maintaining it row by row.
		var indexDDL string
		if err := raw.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE name = 'inventory_packages_lookup'`).Scan(&indexDDL); err != nil {
			b.Fatal(err)
		}
		if _, err := raw.ExecContext(ctx, `DROP INDEX inventory_packages_lookup`); err != nil {
			b.Fatal(err)
		}
		for _, q := range []string{
			`WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
			 INSERT INTO inventories (id, digest, platform, distro_id, distro_version, distro_codename, data, updated_at)
			 SELECT n.i, 'sha256:bench-' || n.i, t.platform, t.distro_id, t.distro_version, t.distro_codename, t.data, t.updated_at
			 FROM n JOIN inventories t ON t.id = ((n.i - 1) % $3) + 1`,
			`INSERT INTO inventory_packages (inventory_id, position, ecosystem, name, version, source_name, source_version, lookup)
			 SELECT i.id, p.position, p.ecosystem, p.name, p.version, p.source_name, p.source_version, p.lookup
			 FROM inventories i JOIN inventory_packages p ON p.inventory_id = ((i.id - 1) % $3) + 1 WHERE i.id >= $1`,
		} {
			if _, err := raw.ExecContext(ctx, q, benchTemplates+1, n, benchTemplates); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := raw.ExecContext(ctx, indexDDL); err != nil {
			b.Fatal(err)
		}
	}
	if got, err := db.InventoryCount(ctx); err != nil || got != int64(n) {
		b.Fatalf("%d inventories stored, want %d (%v)", got, n, err)
	}
	if _, _, err := s.Index(ctx); err != nil {
		b.Fatal(err)
	}
	return s, byName
}

// changedAdvisories picks n advisories naming packages the templates hold,
// as an update of the feeds might change them.
func changedAdvisories(byName map[string][]string, n int) []string {
	var names []string
	for key := range byName {
		names = append(names, key)
	}
	slices.Sort(names)
	rng := rand.New(rand.NewPCG(3, 4))
	picked := map[string]bool{}
	var out []string
	for len(out) < n && len(names) > 0 {
		ids := byName[names[rng.IntN(len(names))]]
		if id := ids[rng.IntN(len(ids))]; !picked[id] {
			picked[id] = true
			out = append(out, id)
		}
	}
	return out
}

// BenchmarkAffected re-evaluates stored inventories of 200 packages
// against a set of changed advisories: which inventories they affect, with
// the findings (the work after a vulnerability database update).
func BenchmarkAffected(b *testing.B) {
	ctx := context.Background()
	for _, invs := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("inventories=%d", invs), func(b *testing.B) {
			s, byName := setupInventories(b, invs)
			for _, n := range []int{10, 100, 1000} {
				ids := changedAdvisories(byName, n)
				b.Run(fmt.Sprintf("advisories=%d", n), func(b *testing.B) {
					var affected, findings int
					cpu0, ok := processCPU()
					for b.Loop() {
						res, err := s.Affected(ctx, ids)
						if err != nil {
							b.Fatal(err)
						}
						affected, findings = len(res.Inventories), 0
						for _, inv := range res.Inventories {
							findings += len(inv.Findings)
						}
					}
					if cpu1, ok1 := processCPU(); ok && ok1 {
						// CPU time per call (SQLite and GC included), steadier
						// than wall time on a shared machine.
						b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
					}
					b.ReportMetric(float64(affected), "inventories-affected")
					b.ReportMetric(float64(findings), "findings")
				})
			}
		})
	}
}
