package match

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/inventory"
)

// benchInventory builds an inventory of n packages on Alpine 3.9 from the
// real data: 40% Alpine packages with v3.9 advisories, 20% Go modules, 10%
// PyPI packages, the Go standard library, and the rest names no advisory
// has (misses). Each present package is installed at the first fixed
// version of one of its advisories, so ranges are really compared.
func benchInventory(tb testing.TB, ix *Index, n int) *inventory.Inventory {
	tb.Helper()
	keys := make([]PackageKey, 0, len(ix.byKey))
	for k := range ix.byKey {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b PackageKey) int {
		return strings.Compare(a.Ecosystem+"\x00"+a.Name, b.Ecosystem+"\x00"+b.Name)
	})
	quota := map[string]int{inventory.Alpine: n * 4 / 10, inventory.Go: n * 2 / 10, inventory.PyPI: n / 10}
	inv := &inventory.Inventory{Distro: &inventory.Distro{ID: "alpine", VersionID: "3.9.6"}}
	inv.Packages = append(inv.Packages, inventory.Package{Ecosystem: inventory.Go, Name: "stdlib", Version: "go1.21.3"})
	for _, k := range keys {
		if quota[k.Ecosystem] == 0 {
			continue
		}
		groups := ix.byKey[k].all
		if k.Ecosystem == inventory.Alpine {
			groups = ix.byKey[k].byRelease["3.9"]
		}
		version := ""
		for _, g := range groups {
			if e := g.entries[0]; len(e.fixed) > 0 {
				version = e.fixed[0].String()
				break
			}
		}
		if version == "" {
			continue
		}
		if k.Ecosystem == inventory.Go {
			version = "v" + version
		}
		inv.Packages = append(inv.Packages, inventory.Package{Ecosystem: k.Ecosystem, Name: k.Name, Version: version})
		quota[k.Ecosystem]--
	}
	ecos := []string{inventory.Alpine, inventory.Go, inventory.PyPI}
	for i := 0; len(inv.Packages) < n; i++ {
		inv.Packages = append(inv.Packages, inventory.Package{
			Ecosystem: ecos[i%len(ecos)], Name: fmt.Sprintf("no-such-package-%d", i), Version: "1.0.0",
		})
	}
	return inv
}

// BenchmarkMatch500 matches a 500-package inventory against the index of
// all real data (target: under 5 ms per match).
func BenchmarkMatch500(b *testing.B) {
	ix, _ := realIx(b)
	inv := benchInventory(b, ix, 500)
	findings := len(ix.Match(inv))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, ok := processCPU()
	for b.Loop() {
		ix.Match(inv)
	}
	if cpu1, ok1 := processCPU(); ok && ok1 {
		// CPU time per match (GC included), independent of other load.
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	}
	b.ReportMetric(float64(findings), "findings")
}

// BenchmarkBuild builds the index of all real data (records already
// parsed: reading the zips is the importer's cost, not the matcher's).
func BenchmarkBuild(b *testing.B) {
	advs, _ := loadReal(b)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, ok := processCPU()
	for b.Loop() {
		ix, _ := Build(advs, nil)
		if ix.Len() == 0 {
			b.Fatal("empty index")
		}
	}
	if cpu1, ok1 := processCPU(); ok && ok1 {
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	}
	b.ReportMetric(float64(len(advs)), "records")
}

func TestBenchInventory(t *testing.T) {
	ix, _ := realIx(t)
	inv := benchInventory(t, ix, 500)
	if len(inv.Packages) != 500 {
		t.Fatalf("%d packages, want 500", len(inv.Packages))
	}
	present := 0
	for _, p := range inv.Packages {
		if !strings.HasPrefix(p.Name, "no-such-package-") {
			present++
		}
	}
	if present < 300 {
		t.Errorf("only %d packages with advisories, want at least 300", present)
	}
	if len(ix.Match(inv)) == 0 {
		t.Error("the benchmark inventory has no findings")
	}
}
