package sqldb

import (
	"context"
	"database/sql"
	"errors"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// CreateProject stores p and sets its ID and CreatedAt. ECONFLICT if a
// project with that name exists.
func (db *DB) CreateProject(ctx context.Context, p *store.Project) error {
	if p.Name == "" {
		return apperr.Errorf(apperr.EINVALID, "project name is empty")
	}
	now := db.nowUTC()
	var id int64
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx,
			`INSERT INTO projects (name, public, created_at) VALUES ($1, $2, $3) RETURNING id`,
			p.Name, p.Public, db.ts(now)).Scan(&id)
		if err != nil && db.d.Classify(err) == ErrUnique {
			return apperr.Errorf(apperr.ECONFLICT, "project %q already exists", p.Name)
		}
		return err
	})
	if err != nil {
		return err
	}
	p.ID, p.CreatedAt = id, now
	return nil
}

// Project returns the named project, or ENOTFOUND.
func (db *DB) Project(ctx context.Context, name string) (*store.Project, error) {
	p := &store.Project{Name: name}
	err := db.read.QueryRowContext(ctx,
		`SELECT id, public, created_at FROM projects WHERE name = $1`, name).
		Scan(&p.ID, &p.Public, timeScan{&p.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "project %q not found", name)
	}
	if err != nil {
		return nil, db.wrap(err)
	}
	return p, nil
}

// UpdateProject saves p's mutable fields (Public), finding the project by
// name. ENOTFOUND if missing.
func (db *DB) UpdateProject(ctx context.Context, p *store.Project) error {
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE projects SET public = $1 WHERE name = $2`, p.Public, p.Name)
		if err != nil {
			return err
		}
		return mustAffect(res, apperr.Errorf(apperr.ENOTFOUND, "project %q not found", p.Name))
	})
}

// Projects lists projects ordered by name.
func (db *DB) Projects(ctx context.Context, page store.Page) ([]store.Project, error) {
	n, err := limit(page.N)
	if err != nil {
		return nil, err
	}
	rows, err := db.read.QueryContext(ctx,
		`SELECT id, name, public, created_at FROM projects WHERE name > $1 ORDER BY name LIMIT $2`,
		page.Last, n)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	out := []store.Project{}
	for rows.Next() {
		var p store.Project
		if err := rows.Scan(&p.ID, &p.Name, &p.Public, timeScan{&p.CreatedAt}); err != nil {
			return nil, db.wrap(err)
		}
		out = append(out, p)
	}
	return out, db.wrap(rows.Err())
}

// DeleteProject removes an empty project. ENOTFOUND if missing, ECONFLICT if
// it still holds repositories.
func (db *DB) DeleteProject(ctx context.Context, name string) error {
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		// The lock makes a concurrent push that is creating the project's
		// first repository either finish first (and be counted below) or
		// wait and then find the project gone.
		var id int64
		err := tx.QueryRowContext(ctx,
			`SELECT id FROM projects WHERE name = $1`+db.d.lock("FOR UPDATE"), name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.Errorf(apperr.ENOTFOUND, "project %q not found", name)
		}
		if err != nil {
			return err
		}
		var repos int64
		if err := tx.QueryRowContext(ctx,
			`SELECT COUNT(*) FROM repositories WHERE project_id = $1`, id).Scan(&repos); err != nil {
			return err
		}
		if repos > 0 {
			return apperr.Errorf(apperr.ECONFLICT,
				"project %q still holds %d repositories; delete them first", name, repos)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM projects WHERE id = $1`, id)
		return err
	})
}

// mustAffect returns notFound if res affected no row.
func mustAffect(res sql.Result, notFound error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound
	}
	return nil
}
