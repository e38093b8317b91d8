package sqldb

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

var _ store.VulnStore = (*DB)(nil)

// nullTime scans a nullable timestamp column; NULL leaves the zero time.
type nullTime struct{ t *time.Time }

// Scan implements sql.Scanner.
func (s nullTime) Scan(src any) error {
	if src == nil {
		*s.t = time.Time{}
		return nil
	}
	return timeScan(s).Scan(src)
}

// tsOrNull is a timestamp argument, NULL for the zero time.
func (db *DB) tsOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return db.ts(t)
}

// VulnState returns the revision and when it last changed.
func (db *DB) VulnState(ctx context.Context) (store.VulnState, error) {
	var st store.VulnState
	err := db.read.QueryRowContext(ctx, `SELECT revision, updated_at, pruned_through FROM vulndb_state WHERE id = 1`).
		Scan(&st.Revision, nullTime{&st.UpdatedAt}, &st.PrunedThrough)
	return st, db.wrap(err)
}

// VulnSources lists the sources ordered by name, with their record counts.
func (db *DB) VulnSources(ctx context.Context) ([]store.VulnSource, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT s.name, s.location, s.etag, s.last_modified, s.last_attempt,
		s.last_success, s.last_error, s.revision, (SELECT COUNT(*) FROM vulndb_records r WHERE r.source_id = s.id)
		FROM vulndb_sources s ORDER BY s.name`)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	out := []store.VulnSource{}
	for rows.Next() {
		var s store.VulnSource
		if err := rows.Scan(&s.Name, &s.Location, &s.ETag, &s.LastModified, nullTime{&s.LastAttempt},
			nullTime{&s.LastSuccess}, &s.LastError, &s.Revision, &s.Records); err != nil {
			return nil, db.wrap(err)
		}
		out = append(out, s)
	}
	return out, db.wrap(rows.Err())
}

// VulnHashes returns the hashes of the source's stored records.
func (db *DB) VulnHashes(ctx context.Context, source string) (map[store.VulnKey]string, error) {
	return db.vulnHashes(ctx, db.read, `SELECT r.kind, r.id, r.hash FROM vulndb_records r
		JOIN vulndb_sources s ON s.id = r.source_id WHERE s.name = $1`, source)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (db *DB) vulnHashes(ctx context.Context, q querier, query string, arg any) (map[store.VulnKey]string, error) {
	rows, err := q.QueryContext(ctx, query, arg)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	out := map[store.VulnKey]string{}
	for rows.Next() {
		var k store.VulnKey
		var h string
		if err := rows.Scan(&k.Kind, &k.ID, &h); err != nil {
			return nil, db.wrap(err)
		}
		out[k] = h
	}
	return out, db.wrap(rows.Err())
}

// checkVulnImport validates an import before any query runs.
func checkVulnImport(imp *store.VulnImport) error {
	if imp.Source == "" {
		return apperr.Errorf(apperr.EINVALID, "vulnerability source has no name")
	}
	for k := range imp.Seen {
		if err := checkVulnKey(k); err != nil {
			return err
		}
	}
	for _, r := range imp.Records {
		if err := checkVulnKey(store.VulnKey{Kind: r.Kind, ID: r.ID}); err != nil {
			return err
		}
		if r.Hash == "" {
			return apperr.Errorf(apperr.EINVALID, "source %q: record %s %s has no hash", imp.Source, r.Kind, r.ID)
		}
		for _, e := range r.Ecosystems {
			if e == "" || strings.ContainsRune(e, '\n') {
				return apperr.Errorf(apperr.EINVALID, "source %q: record %s has an invalid ecosystem name %q", imp.Source, r.ID, e)
			}
		}
	}
	return nil
}

func checkVulnKey(k store.VulnKey) error {
	if k.Kind != store.VulnOSV && k.Kind != store.VulnCVE {
		return apperr.Errorf(apperr.EINVALID, "record %q has unknown kind %q", k.ID, k.Kind)
	}
	if k.ID == "" {
		return apperr.Errorf(apperr.EINVALID, "a %s record has no id", k.Kind)
	}
	return nil
}

// lockVulnSource creates the named source if needed and returns its id,
// locking its row until tx ends.
func (db *DB) lockVulnSource(ctx context.Context, tx *sql.Tx, name, location string) (int64, error) {
	if _, err := tx.ExecContext(ctx, `INSERT INTO vulndb_sources (name, location) VALUES ($1, $2)
		ON CONFLICT (name) DO NOTHING`, name, location); err != nil {
		return 0, err
	}
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM vulndb_sources WHERE name = $1`+db.d.lock("FOR UPDATE"), name).Scan(&id)
	return id, err
}

// bumpVulnRevision increments the revision, records when it was made,
// logs changes under it and returns it.
func (db *DB) bumpVulnRevision(ctx context.Context, tx *sql.Tx, now time.Time, changes []store.VulnKey) (int64, error) {
	var rev int64
	if err := tx.QueryRowContext(ctx, `UPDATE vulndb_state SET revision = revision + 1, updated_at = $1
		WHERE id = 1 RETURNING revision`, db.ts(now)).Scan(&rev); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO vulndb_revisions (revision, created_at) VALUES ($1, $2)`,
		rev, db.ts(now)); err != nil {
		return 0, err
	}
	ins := db.newRowInserter(tx, `INSERT INTO vulndb_changes (revision, kind, id) VALUES `, ` ON CONFLICT DO NOTHING`, 3)
	for _, c := range changes {
		if err := ins.add(ctx, rev, c.Kind, c.ID); err != nil {
			return 0, err
		}
	}
	return rev, ins.flush(ctx)
}

// ImportVulns applies a source's import in one transaction.
func (db *DB) ImportVulns(ctx context.Context, imp *store.VulnImport) (store.VulnImportResult, error) {
	if err := checkVulnImport(imp); err != nil {
		return store.VulnImportResult{}, err
	}
	byKey := make(map[store.VulnKey]*store.VulnRecord, len(imp.Records))
	for i := range imp.Records {
		r := &imp.Records[i]
		byKey[store.VulnKey{Kind: r.Kind, ID: r.ID}] = r
	}
	now := db.nowUTC()
	var res store.VulnImportResult
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		res = store.VulnImportResult{}
		srcID, err := db.lockVulnSource(ctx, tx, imp.Source, imp.Location)
		if err != nil {
			return err
		}
		stored, err := db.vulnHashes(ctx, tx, `SELECT kind, id, hash FROM vulndb_records WHERE source_id = $1`, srcID)
		if err != nil {
			return err
		}
		var write []*store.VulnRecord
		var remove, changes []store.VulnKey
		for k, h := range imp.Seen {
			old, had := stored[k]
			if h == "" || (had && old == h) {
				continue
			}
			r := byKey[k]
			if r == nil {
				return apperr.Errorf(apperr.EINVALID, "source %q: record %s %s changed but its content is missing", imp.Source, k.Kind, k.ID)
			}
			if r.Hash != h {
				return apperr.Errorf(apperr.EINVALID, "source %q: record %s %s has hash %s, but the import lists %s", imp.Source, k.Kind, k.ID, r.Hash, h)
			}
			write = append(write, r)
			changes = append(changes, k)
			if had {
				res.Updated++
			} else {
				res.Added++
			}
		}
		for k := range stored {
			if _, ok := imp.Seen[k]; !ok {
				remove = append(remove, k)
				changes = append(changes, k)
			}
		}
		res.Removed = len(remove)
		// A fixed order keeps locks and logs deterministic.
		slices.SortFunc(write, func(a, b *store.VulnRecord) int {
			return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ID, b.ID))
		})
		slices.SortFunc(changes, compareVulnKeys)
		slices.SortFunc(remove, compareVulnKeys)

		var rev int64
		if len(changes) > 0 {
			if rev, err = db.bumpVulnRevision(ctx, tx, now, changes); err != nil {
				return err
			}
			if err := db.writeVulnRecords(ctx, tx, srcID, rev, write); err != nil {
				return err
			}
			if err := db.removeVulnRecords(ctx, tx, srcID, remove); err != nil {
				return err
			}
		} else if err := tx.QueryRowContext(ctx, `SELECT revision FROM vulndb_state WHERE id = 1`).Scan(&rev); err != nil {
			return err
		}
		res.Revision = rev
		q := `UPDATE vulndb_sources SET location = $2, etag = $3, last_modified = $4, last_attempt = $5,
			last_success = $5, last_error = ''`
		if len(changes) > 0 {
			q += `, revision = $6 WHERE id = $1`
			_, err = tx.ExecContext(ctx, q, srcID, imp.Location, imp.ETag, imp.LastModified, db.ts(now), rev)
		} else {
			q += ` WHERE id = $1`
			_, err = tx.ExecContext(ctx, q, srcID, imp.Location, imp.ETag, imp.LastModified, db.ts(now))
		}
		return err
	})
	return res, err
}

func compareVulnKeys(a, b store.VulnKey) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ID, b.ID))
}

// writeVulnRecords upserts records of source srcID as written by rev.
func (db *DB) writeVulnRecords(ctx context.Context, tx *sql.Tx, srcID, rev int64, records []*store.VulnRecord) error {
	ins := db.newRowInserter(tx,
		`INSERT INTO vulndb_records (source_id, kind, id, hash, modified, ecosystems, revision, data) VALUES `,
		` ON CONFLICT (source_id, kind, id) DO UPDATE SET hash = excluded.hash, modified = excluded.modified,
		  ecosystems = excluded.ecosystems, revision = excluded.revision, data = excluded.data`, 8)
	for _, r := range records {
		data := r.Data
		if data == nil {
			data = []byte{}
		}
		if err := ins.add(ctx, srcID, r.Kind, r.ID, r.Hash, db.tsOrNull(r.Modified),
			strings.Join(r.Ecosystems, "\n"), rev, data); err != nil {
			return err
		}
	}
	return ins.flush(ctx)
}

// removeVulnRecords deletes records of source srcID.
func (db *DB) removeVulnRecords(ctx context.Context, tx *sql.Tx, srcID int64, keys []store.VulnKey) error {
	if len(keys) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, `DELETE FROM vulndb_records WHERE source_id = $1 AND kind = $2 AND id = $3`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, k := range keys {
		if _, err := st.ExecContext(ctx, srcID, k.Kind, k.ID); err != nil {
			return err
		}
	}
	return nil
}

// RecordVulnAttempt records an attempt that changed no record.
func (db *DB) RecordVulnAttempt(ctx context.Context, a store.VulnAttempt) error {
	if a.Source == "" {
		return apperr.Errorf(apperr.EINVALID, "vulnerability source has no name")
	}
	now := db.nowUTC()
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		id, err := db.lockVulnSource(ctx, tx, a.Source, a.Location)
		if err != nil {
			return err
		}
		if a.Err != "" {
			_, err = tx.ExecContext(ctx, `UPDATE vulndb_sources SET last_attempt = $2, last_error = $3 WHERE id = $1`,
				id, db.ts(now), a.Err)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE vulndb_sources SET location = $2, last_attempt = $3, last_success = $3,
				last_error = '' WHERE id = $1`, id, a.Location, db.ts(now))
		}
		return err
	})
}

// DeleteVulnSource removes a source and its records.
func (db *DB) DeleteVulnSource(ctx context.Context, name string) (store.VulnImportResult, error) {
	now := db.nowUTC()
	var res store.VulnImportResult
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		res = store.VulnImportResult{}
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM vulndb_sources WHERE name = $1`+db.d.lock("FOR UPDATE"), name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.Errorf(apperr.ENOTFOUND, "vulnerability source %q not found", name)
		}
		if err != nil {
			return err
		}
		stored, err := db.vulnHashes(ctx, tx, `SELECT kind, id, hash FROM vulndb_records WHERE source_id = $1`, id)
		if err != nil {
			return err
		}
		keys := make([]store.VulnKey, 0, len(stored))
		for k := range stored {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, compareVulnKeys)
		res.Removed = len(keys)
		if len(keys) > 0 {
			if res.Revision, err = db.bumpVulnRevision(ctx, tx, now, keys); err != nil {
				return err
			}
		} else if err := tx.QueryRowContext(ctx, `SELECT revision FROM vulndb_state WHERE id = 1`).Scan(&res.Revision); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM vulndb_records WHERE source_id = $1`, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM vulndb_sources WHERE id = $1`, id)
		return err
	})
	return res, err
}

const vulnRecordColumns = `r.kind, r.id, s.name, r.hash, r.modified, r.ecosystems, r.revision, r.data`

func scanVulnRecord(rows *sql.Rows) (store.VulnRecord, error) {
	var r store.VulnRecord
	var ecos string
	if err := rows.Scan(&r.Kind, &r.ID, &r.Source, &r.Hash, nullTime{&r.Modified}, &ecos, &r.Revision, &r.Data); err != nil {
		return r, err
	}
	if ecos != "" {
		r.Ecosystems = strings.Split(ecos, "\n")
	}
	return r, nil
}

// ScanVulnRecords calls fn with every record, read from one snapshot.
func (db *DB) ScanVulnRecords(ctx context.Context, fn func(store.VulnRecord) error) (int64, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return 0, db.wrap(err)
	}
	defer func() { _ = tx.Rollback() }()
	var rev int64
	if err := tx.QueryRowContext(ctx, `SELECT revision FROM vulndb_state WHERE id = 1`).Scan(&rev); err != nil {
		return 0, db.wrap(err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+vulnRecordColumns+` FROM vulndb_records r
		JOIN vulndb_sources s ON s.id = r.source_id ORDER BY r.kind, r.id, s.name`)
	if err != nil {
		return 0, db.wrap(err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanVulnRecord(rows)
		if err != nil {
			return 0, db.wrap(err)
		}
		if err := fn(r); err != nil {
			return 0, err
		}
	}
	return rev, db.wrap(rows.Err())
}

// VulnRecords returns every source's copy of a record.
func (db *DB) VulnRecords(ctx context.Context, kind, id string) ([]store.VulnRecord, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+vulnRecordColumns+` FROM vulndb_records r
		JOIN vulndb_sources s ON s.id = r.source_id WHERE r.kind = $1 AND r.id = $2 ORDER BY s.name`, kind, id)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	out := []store.VulnRecord{}
	for rows.Next() {
		r, err := scanVulnRecord(rows)
		if err != nil {
			return nil, db.wrap(err)
		}
		out = append(out, r)
	}
	return out, db.wrap(rows.Err())
}

// VulnChangesSince lists the changes after revision rev, read from one
// snapshot together with how far the log was pruned.
func (db *DB) VulnChangesSince(ctx context.Context, rev int64) ([]store.VulnChange, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, db.wrap(err)
	}
	defer func() { _ = tx.Rollback() }()
	var pruned int64
	if err := tx.QueryRowContext(ctx, `SELECT pruned_through FROM vulndb_state WHERE id = 1`).Scan(&pruned); err != nil {
		return nil, db.wrap(err)
	}
	if rev < pruned {
		return nil, apperr.Wrap(store.ErrVulnChangesPruned, apperr.ECONFLICT, fmt.Sprintf(
			"the changes after vulnerability database revision %d were pruned (the change log holds those after revision %d)",
			rev, pruned))
	}
	rows, err := tx.QueryContext(ctx, `SELECT revision, kind, id FROM vulndb_changes WHERE revision > $1
		ORDER BY revision, kind, id`, rev)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	out := []store.VulnChange{}
	for rows.Next() {
		var c store.VulnChange
		if err := rows.Scan(&c.Revision, &c.Kind, &c.ID); err != nil {
			return nil, db.wrap(err)
		}
		out = append(out, c)
	}
	return out, db.wrap(rows.Err())
}

// VulnCounts counts distinct ids per ecosystem and kind.
func (db *DB) VulnCounts(ctx context.Context) (store.VulnCounts, error) {
	out := store.VulnCounts{Ecosystems: map[string]int{}}
	rows, err := db.read.QueryContext(ctx, `SELECT kind, id, ecosystems FROM vulndb_records ORDER BY kind, id`)
	if err != nil {
		return out, db.wrap(err)
	}
	defer rows.Close()
	// Rows come by id, so an id's copies in several sources are adjacent.
	var last store.VulnKey
	seen := map[string]bool{}
	for rows.Next() {
		var k store.VulnKey
		var ecos string
		if err := rows.Scan(&k.Kind, &k.ID, &ecos); err != nil {
			return out, db.wrap(err)
		}
		if k != last {
			clear(seen)
			last = k
			if k.Kind == store.VulnCVE {
				out.CVEs++
			} else {
				out.Advisories++
			}
		}
		if ecos == "" || k.Kind != store.VulnOSV {
			continue
		}
		for _, e := range strings.Split(ecos, "\n") {
			if !seen[e] {
				seen[e] = true
				out.Ecosystems[e]++
			}
		}
	}
	return out, db.wrap(rows.Err())
}

// PutVulnOverride creates or replaces an override.
func (db *DB) PutVulnOverride(ctx context.Context, o *store.VulnOverrideRule) error {
	switch {
	case o.ID == "":
		return apperr.Errorf(apperr.EINVALID, "a severity override needs an advisory or CVE id")
	case o.Level == "":
		return apperr.Errorf(apperr.EINVALID, "the severity override of %s has no level", o.ID)
	case o.CreatedBy == "":
		return apperr.Errorf(apperr.EINVALID, "the severity override of %s does not say who made it", o.ID)
	}
	now := db.nowUTC()
	var rev int64
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		var err error
		if rev, err = db.bumpVulnRevision(ctx, tx, now, []store.VulnKey{{Kind: store.VulnOverride, ID: o.ID}}); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO vulndb_overrides (id, level, reason, created_by, created_at, revision)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET level = excluded.level,
			reason = excluded.reason, created_by = excluded.created_by, created_at = excluded.created_at,
			revision = excluded.revision`, o.ID, o.Level, o.Reason, o.CreatedBy, db.ts(now), rev)
		return err
	})
	if err != nil {
		return err
	}
	o.CreatedAt, o.Revision = now, rev
	return nil
}

// VulnOverrides lists the overrides ordered by id.
func (db *DB) VulnOverrides(ctx context.Context) ([]store.VulnOverrideRule, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, level, reason, created_by, created_at, revision
		FROM vulndb_overrides ORDER BY id`)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	out := []store.VulnOverrideRule{}
	for rows.Next() {
		var o store.VulnOverrideRule
		if err := rows.Scan(&o.ID, &o.Level, &o.Reason, &o.CreatedBy, timeScan{&o.CreatedAt}, &o.Revision); err != nil {
			return nil, db.wrap(err)
		}
		out = append(out, o)
	}
	return out, db.wrap(rows.Err())
}

// DeleteVulnOverride removes an override and returns the new revision.
func (db *DB) DeleteVulnOverride(ctx context.Context, id string) (int64, error) {
	now := db.nowUTC()
	var rev int64
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM vulndb_overrides WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return apperr.Errorf(apperr.ENOTFOUND, "no severity override for %q", id)
		}
		rev, err = db.bumpVulnRevision(ctx, tx, now, []store.VulnKey{{Kind: store.VulnOverride, ID: id}})
		return err
	})
	if err != nil {
		return 0, err
	}
	return rev, nil
}

// PruneVulnChanges removes the changes of the revisions made before the
// given time from the change log.
func (db *DB) PruneVulnChanges(ctx context.Context, before time.Time) (int64, error) {
	var pruned int64
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		// Locking the state row orders this with revision bumps.
		if err := tx.QueryRowContext(ctx, `SELECT pruned_through FROM vulndb_state WHERE id = 1`+db.d.lock("FOR UPDATE")).
			Scan(&pruned); err != nil {
			return err
		}
		var cut sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(revision) FROM vulndb_revisions WHERE created_at < $1`,
			db.ts(before)).Scan(&cut); err != nil {
			return err
		}
		if !cut.Valid || cut.Int64 <= pruned {
			return nil
		}
		for _, q := range []string{
			`DELETE FROM vulndb_changes WHERE revision <= $1`,
			`DELETE FROM vulndb_revisions WHERE revision <= $1`,
			`UPDATE vulndb_state SET pruned_through = $1 WHERE id = 1`,
		} {
			if _, err := tx.ExecContext(ctx, q, cut.Int64); err != nil {
				return err
			}
		}
		pruned = cut.Int64
		return nil
	})
	return pruned, err
}
