package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/store"
)

// debianInventory is a bookworm image with libssl3 built from openssl.
func debianInventory() *inventory.Inventory {
	return &inventory.Inventory{
		Distro: &inventory.Distro{ID: "debian", VersionID: "12", Codename: "bookworm", PrettyName: "Debian GNU/Linux 12 (bookworm)"},
		Packages: []inventory.Package{
			{Ecosystem: "Debian", Name: "libssl3", Version: "3.0.11-1~deb12u2", SourceName: "openssl", SourceVersion: "3.0.11-1~deb12u2",
				Layer: "sha256:aaa", Locations: []string{"var/lib/dpkg/status"}},
			{Ecosystem: "Debian", Name: "openssl", Version: "3.0.11-1~deb12u2", SourceName: "openssl"},
			{Ecosystem: "Debian", Name: "bash", Version: "5.2.15-2+b2"},
			{Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.5", PURL: "pkg:golang/golang.org/x/text@v0.3.5"},
		},
	}
}

// bySource is the lookup name of OS packages built from a source package:
// the source package's name.
func bySource(p inventory.Package) string {
	if p.SourceName != "" {
		return p.SourceName
	}
	if p.Name == "unlisted" {
		return ""
	}
	return p.Name
}

// found runs InventoryPackages and returns "inventory-digest#position name version source" sorted.
func (e *env) found(keys ...store.PackageKey) []string {
	e.t.Helper()
	var ids []int64
	var pkgs []store.InventoryPackage
	ok(e.t, e.s.InventoryPackages(e.ctx, keys, func(p store.InventoryPackage) error {
		ids = append(ids, p.InventoryID)
		pkgs = append(pkgs, p)
		return nil
	}))
	refs, err := e.s.InventoryRefs(e.ctx, ids)
	ok(e.t, err)
	var out []string
	for _, p := range pkgs {
		ref, found := refs[p.InventoryID]
		if !found {
			e.t.Fatalf("InventoryRefs lacks inventory %d", p.InventoryID)
		}
		out = append(out, fmt.Sprintf("%s#%d %s %s %s %s %s", ref.Key.Digest, p.Position, p.Package.Ecosystem,
			p.Package.Name, p.Package.Version, p.Package.SourceName, p.Package.SourceVersion))
	}
	slices.Sort(out)
	return out
}

var inventoryTests = []test{
	{"put, get, replace, delete", func(t *testing.T, e *env) {
		key := store.InventoryKey{Digest: "sha256:img", Platform: "linux/amd64"}
		_, err := e.s.Inventory(e.ctx, key)
		wantCode(t, err, apperr.ENOTFOUND, "", "sha256:img")
		inv := debianInventory()
		ok(t, e.s.PutInventory(e.ctx, key, inv, bySource))
		got, err := e.s.Inventory(e.ctx, key)
		ok(t, err)
		if got.Key != key || got.Inventory.Distro == nil || *got.Inventory.Distro != *inv.Distro ||
			!slices.EqualFunc(got.Inventory.Packages, inv.Packages, func(a, b inventory.Package) bool {
				return fmt.Sprint(a) == fmt.Sprint(b)
			}) {
			t.Fatalf("Inventory = %+v, want %+v", got, inv)
		}
		sameTime(t, "UpdatedAt", got.UpdatedAt, t0)
		// Another platform of the same digest is another inventory.
		other := store.InventoryKey{Digest: "sha256:img", Platform: "linux/arm64"}
		ok(t, e.s.PutInventory(e.ctx, other, &inventory.Inventory{}, bySource))
		if n, err := e.s.InventoryCount(e.ctx); err != nil || n != 2 {
			t.Fatalf("InventoryCount = %d, %v", n, err)
		}
		e.clk.Advance(time.Hour)
		ok(t, e.s.PutInventory(e.ctx, key, &inventory.Inventory{Packages: []inventory.Package{{Ecosystem: "Go", Name: "stdlib", Version: "go1.21.3"}}}, bySource))
		got, err = e.s.Inventory(e.ctx, key)
		ok(t, err)
		if got.Inventory.Distro != nil || len(got.Inventory.Packages) != 1 || got.Inventory.Packages[0].Name != "stdlib" {
			t.Fatalf("replaced Inventory = %+v", got.Inventory)
		}
		sameTime(t, "UpdatedAt", got.UpdatedAt, t0.Add(time.Hour))
		wantStrings(t, "packages of the replaced inventory", e.found(store.PackageKey{Ecosystem: "Debian", Name: "openssl"}), nil)
		wantStrings(t, "stdlib", e.found(store.PackageKey{Ecosystem: "Go", Name: "stdlib"}), []string{"sha256:img#0 Go stdlib go1.21.3  "})
		ok(t, e.s.DeleteInventory(e.ctx, key))
		wantCode(t, e.s.DeleteInventory(e.ctx, key), apperr.ENOTFOUND, "", "linux/amd64")
		wantStrings(t, "packages of a deleted inventory", e.found(store.PackageKey{Ecosystem: "Go", Name: "stdlib"}), nil)
		if got, err := e.s.Inventory(e.ctx, other); err != nil || got.Inventory.Packages == nil {
			t.Fatalf("the other platform's inventory = %+v, %v", got, err)
		}
	}},
	{"invalid inventories", func(t *testing.T, e *env) {
		wantCode(t, e.s.PutInventory(e.ctx, store.InventoryKey{}, &inventory.Inventory{}, nil), apperr.EINVALID, "", "digest")
		wantCode(t, e.s.PutInventory(e.ctx, store.InventoryKey{Digest: "d"}, nil, nil), apperr.EINVALID, "", "")
		wantCode(t, e.s.PutInventory(e.ctx, store.InventoryKey{Digest: "d"}, &inventory.Inventory{
			Packages: []inventory.Package{{Ecosystem: "Go", Name: "a"}, {Name: "b"}}}, nil), apperr.EINVALID, "", "packages[1]")
		if n, _ := e.s.InventoryCount(e.ctx); n != 0 {
			t.Fatalf("%d inventories stored after refusals", n)
		}
	}},
	{"package lookup by lookup name", func(t *testing.T, e *env) {
		ok(t, e.s.PutInventory(e.ctx, store.InventoryKey{Digest: "deb"}, debianInventory(), bySource))
		ok(t, e.s.PutInventory(e.ctx, store.InventoryKey{Digest: "alpine"}, &inventory.Inventory{
			Distro: &inventory.Distro{ID: "alpine", VersionID: "3.9.6"},
			Packages: []inventory.Package{
				{Ecosystem: "Alpine", Name: "musl", Version: "1.1.20-r4"},
				{Ecosystem: "Alpine", Name: "musl-utils", Version: "1.1.20-r4", SourceName: "musl"},
				{Ecosystem: "Alpine", Name: "unlisted", Version: "1"},
			}}, bySource))
		ok(t, e.s.PutInventory(e.ctx, store.InventoryKey{Digest: "bare"}, &inventory.Inventory{
			Packages: []inventory.Package{{Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.7"}}}, bySource))

		openssl := []string{
			"deb#0 Debian libssl3 3.0.11-1~deb12u2 openssl 3.0.11-1~deb12u2",
			"deb#1 Debian openssl 3.0.11-1~deb12u2 openssl ",
		}
		wantStrings(t, "openssl (the source of both)", e.found(store.PackageKey{Ecosystem: "Debian", Name: "openssl"}), openssl)
		wantStrings(t, "openssl twice and libssl3 (each package once; binary names are not lookup names)", e.found(
			store.PackageKey{Ecosystem: "Debian", Name: "openssl"}, store.PackageKey{Ecosystem: "Debian", Name: "libssl3"},
			store.PackageKey{Ecosystem: "Debian", Name: "openssl"}), openssl)
		wantStrings(t, "bash", e.found(store.PackageKey{Ecosystem: "Debian", Name: "bash"}), []string{"deb#2 Debian bash 5.2.15-2+b2  "})
		wantStrings(t, "x/text across inventories", e.found(store.PackageKey{Ecosystem: "Go", Name: "golang.org/x/text"}), []string{
			"bare#0 Go golang.org/x/text v0.3.7  ", "deb#3 Go golang.org/x/text v0.3.5  "})
		wantStrings(t, "musl", e.found(store.PackageKey{Ecosystem: "Alpine", Name: "musl"}), []string{
			"alpine#0 Alpine musl 1.1.20-r4  ", "alpine#1 Alpine musl-utils 1.1.20-r4 musl "})
		wantStrings(t, "a package without a lookup name", e.found(store.PackageKey{Ecosystem: "Alpine", Name: "unlisted"}), nil)
		wantStrings(t, "the ecosystem must match", e.found(store.PackageKey{Ecosystem: "Ubuntu", Name: "openssl"}), nil)
		wantStrings(t, "no keys", e.found(), nil)

		var ids []int64
		ok(t, e.s.InventoryPackages(e.ctx, []store.PackageKey{{Ecosystem: "Alpine", Name: "musl"}, {Ecosystem: "Go", Name: "golang.org/x/text"}},
			func(p store.InventoryPackage) error { ids = append(ids, p.InventoryID); return nil }))
		refs, err := e.s.InventoryRefs(e.ctx, append(ids, 999999))
		ok(t, err)
		if len(refs) != 3 {
			t.Fatalf("InventoryRefs = %+v", refs)
		}
		for _, r := range refs {
			switch r.Key.Digest {
			case "deb":
				if r.Distro == nil || *r.Distro != (inventory.Distro{ID: "debian", VersionID: "12", Codename: "bookworm"}) {
					t.Errorf("deb's distro = %+v", r.Distro)
				}
			case "alpine":
				if r.Distro == nil || r.Distro.VersionID != "3.9.6" {
					t.Errorf("alpine's distro = %+v", r.Distro)
				}
			case "bare":
				if r.Distro != nil {
					t.Errorf("bare's distro = %+v, want nil", r.Distro)
				}
			}
		}
		stop := fmt.Errorf("stop")
		if err := e.s.InventoryPackages(e.ctx, []store.PackageKey{{Ecosystem: "Alpine", Name: "musl"}},
			func(store.InventoryPackage) error { return stop }); err != stop {
			t.Fatalf("InventoryPackages returned %v, want fn's error", err)
		}
	}},
	{"default lookup is the package name", func(t *testing.T, e *env) {
		ok(t, e.s.PutInventory(e.ctx, store.InventoryKey{Digest: "deb"}, debianInventory(), nil))
		wantStrings(t, "libssl3", e.found(store.PackageKey{Ecosystem: "Debian", Name: "libssl3"}),
			[]string{"deb#0 Debian libssl3 3.0.11-1~deb12u2 openssl 3.0.11-1~deb12u2"})
	}},
	{"many packages", func(t *testing.T, e *env) {
		inv := &inventory.Inventory{}
		for i := range 567 {
			inv.Packages = append(inv.Packages, inventory.Package{Ecosystem: "npm", Name: fmt.Sprintf("p%d", i%100), Version: fmt.Sprint(i)})
		}
		ok(t, e.s.PutInventory(e.ctx, store.InventoryKey{Digest: "big"}, inv, bySource))
		got := e.found(store.PackageKey{Ecosystem: "npm", Name: "p7"})
		if len(got) != 6 || got[0] != "big#107 npm p7 107  " {
			t.Fatalf("p7 found as %q", got)
		}
		si, err := e.s.Inventory(e.ctx, store.InventoryKey{Digest: "big"})
		ok(t, err)
		if len(si.Inventory.Packages) != 567 {
			t.Fatalf("stored %d packages, want 567", len(si.Inventory.Packages))
		}
	}},
}
