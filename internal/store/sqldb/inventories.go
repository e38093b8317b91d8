package sqldb

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/store"
)

var _ store.InventoryStore = (*DB)(nil)

// checkInventory validates what PutInventory is given.
func checkInventory(key store.InventoryKey, inv *inventory.Inventory) error {
	if key.Digest == "" {
		return apperr.Errorf(apperr.EINVALID, "inventory key has no digest")
	}
	if inv == nil {
		return apperr.Errorf(apperr.EINVALID, "inventory %s is missing", key.Digest)
	}
	for i, p := range inv.Packages {
		if p.Ecosystem == "" || p.Name == "" {
			return apperr.Errorf(apperr.EINVALID, "inventory %s: packages[%d] (%q %q) needs an ecosystem and a name",
				key.Digest, i, p.Ecosystem, p.Name)
		}
	}
	return nil
}

// PutInventory creates or replaces the inventory under key.
func (db *DB) PutInventory(ctx context.Context, key store.InventoryKey, inv *inventory.Inventory, lookup store.LookupFunc) error {
	if err := checkInventory(key, inv); err != nil {
		return err
	}
	data, err := json.Marshal(inv)
	if err != nil {
		return apperr.Wrap(err, apperr.EINVALID, "inventory "+key.Digest+" cannot be encoded")
	}
	var distroID any
	var version, codename string
	if d := inv.Distro; d != nil {
		distroID, version, codename = d.ID, d.VersionID, d.Codename
	}
	now := db.ts(db.nowUTC())
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO inventories (digest, platform, distro_id, distro_version,
			distro_codename, data, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (digest, platform) DO UPDATE SET distro_id = excluded.distro_id,
			distro_version = excluded.distro_version, distro_codename = excluded.distro_codename,
			data = excluded.data, updated_at = excluded.updated_at RETURNING id`,
			key.Digest, key.Platform, distroID, version, codename, data, now).Scan(&id)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM inventory_packages WHERE inventory_id = $1`, id); err != nil {
			return err
		}
		ins := db.newRowInserter(tx, `INSERT INTO inventory_packages (inventory_id, position, ecosystem, name,
			version, source_name, source_version, lookup) VALUES `, "", 8)
		for i, p := range inv.Packages {
			name := p.Name
			if lookup != nil {
				name = lookup(p)
			}
			if err := ins.add(ctx, id, i, p.Ecosystem, p.Name, p.Version, p.SourceName, p.SourceVersion, name); err != nil {
				return err
			}
		}
		return ins.flush(ctx)
	})
}

// Inventory returns the inventory under key.
func (db *DB) Inventory(ctx context.Context, key store.InventoryKey) (*store.StoredInventory, error) {
	var data []byte
	si := &store.StoredInventory{Key: key}
	err := db.read.QueryRowContext(ctx, `SELECT data, updated_at FROM inventories WHERE digest = $1 AND platform = $2`,
		key.Digest, key.Platform).Scan(&data, timeScan{&si.UpdatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "no inventory of %s%s", key.Digest, platformSuffix(key.Platform))
	}
	if err != nil {
		return nil, db.wrap(err)
	}
	if err := json.Unmarshal(data, &si.Inventory); err != nil {
		return nil, apperr.Wrap(err, apperr.EINTERNAL, "stored inventory of "+key.Digest+" is corrupt")
	}
	if si.Inventory.Packages == nil {
		si.Inventory.Packages = []inventory.Package{}
	}
	return si, nil
}

func platformSuffix(p string) string {
	if p == "" {
		return ""
	}
	return " (" + p + ")"
}

// DeleteInventory removes the inventory under key.
func (db *DB) DeleteInventory(ctx context.Context, key store.InventoryKey) error {
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM inventories WHERE digest = $1 AND platform = $2`, key.Digest, key.Platform)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return apperr.Errorf(apperr.ENOTFOUND, "no inventory of %s%s", key.Digest, platformSuffix(key.Platform))
		}
		return nil
	})
}

// InventoryPackages calls fn for every stored package found by keys.
func (db *DB) InventoryPackages(ctx context.Context, keys []store.PackageKey, fn func(store.InventoryPackage) error) error {
	if len(keys) == 0 {
		return nil
	}
	keys = slices.Clone(keys)
	slices.SortFunc(keys, func(a, b store.PackageKey) int {
		return cmp.Or(cmp.Compare(a.Ecosystem, b.Ecosystem), cmp.Compare(a.Name, b.Name))
	})
	keys = slices.Compact(keys)
	// lookup <> '' lets the database use the partial index.
	st, err := db.read.PrepareContext(ctx, `SELECT inventory_id, position, name, version, source_name, source_version
		FROM inventory_packages WHERE ecosystem = $1 AND lookup = $2 AND lookup <> ''`)
	if err != nil {
		return db.wrap(err)
	}
	defer st.Close()
	for _, k := range keys {
		if err := db.scanPackages(ctx, st, k, fn); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) scanPackages(ctx context.Context, st *sql.Stmt, k store.PackageKey, fn func(store.InventoryPackage) error) error {
	rows, err := st.QueryContext(ctx, k.Ecosystem, k.Name)
	if err != nil {
		return db.wrap(err)
	}
	defer rows.Close()
	for rows.Next() {
		ip := store.InventoryPackage{Package: inventory.Package{Ecosystem: k.Ecosystem}}
		p := &ip.Package
		if err := rows.Scan(&ip.InventoryID, &ip.Position, &p.Name, &p.Version, &p.SourceName, &p.SourceVersion); err != nil {
			return db.wrap(err)
		}
		if err := fn(ip); err != nil {
			return err
		}
	}
	return db.wrap(rows.Err())
}

// InventoryRefs returns the keys and distros of inventories by id.
func (db *DB) InventoryRefs(ctx context.Context, ids []int64) (map[int64]store.InventoryRef, error) {
	out := make(map[int64]store.InventoryRef, len(ids))
	for start := 0; start < len(ids); start += chunkSize {
		chunk := ids[start:min(start+chunkSize, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := db.read.QueryContext(ctx, `SELECT id, digest, platform, distro_id, distro_version, distro_codename
			FROM inventories WHERE id IN (`+placeholders(1, len(chunk))+`)`, args...)
		if err != nil {
			return nil, db.wrap(err)
		}
		for rows.Next() {
			var ref store.InventoryRef
			var distroID sql.NullString
			var version, codename string
			if err := rows.Scan(&ref.ID, &ref.Key.Digest, &ref.Key.Platform, &distroID, &version, &codename); err != nil {
				rows.Close()
				return nil, db.wrap(err)
			}
			if distroID.Valid {
				ref.Distro = &inventory.Distro{ID: distroID.String, VersionID: version, Codename: codename}
			}
			out[ref.ID] = ref
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, db.wrap(err)
		}
	}
	return out, nil
}

// InventoryCount returns how many inventories are stored.
func (db *DB) InventoryCount(ctx context.Context) (int64, error) {
	var n int64
	err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM inventories`).Scan(&n)
	return n, db.wrap(err)
}
