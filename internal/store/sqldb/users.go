package sqldb

import (
	"context"
	"database/sql"
	"errors"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// userColumns are the columns scanUser reads, in order.
const userColumns = `id, name, source, external_id, password_hash, admin, disabled, created_at, session_generation`

// scanUser scans a row of userColumns.
func scanUser(row interface{ Scan(...any) error }, u *store.User) error {
	return row.Scan(&u.ID, &u.Name, &u.Source, &u.ExternalID, &u.PasswordHash, &u.Admin, &u.Disabled, timeScan{&u.CreatedAt}, &u.SessionGeneration)
}

// CreateUser stores u and sets its ID and CreatedAt (and Source, when
// empty, to store.SourceLocal). ECONFLICT if the name is taken.
func (db *DB) CreateUser(ctx context.Context, u *store.User) error {
	if u.Name == "" {
		return apperr.Errorf(apperr.EINVALID, "user name is empty")
	}
	source := u.Source
	if source == "" {
		source = store.SourceLocal
	}
	now := db.nowUTC()
	var id int64
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx,
			`INSERT INTO users (name, source, external_id, password_hash, admin, disabled, created_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			u.Name, source, u.ExternalID, u.PasswordHash, u.Admin, u.Disabled, db.ts(now)).Scan(&id)
		if err != nil && db.d.Classify(err) == ErrUnique {
			return apperr.Errorf(apperr.ECONFLICT, "user %q already exists", u.Name)
		}
		return err
	})
	if err != nil {
		return err
	}
	u.ID, u.CreatedAt, u.Source = id, now, source
	return nil
}

// User returns the named user, or ENOTFOUND.
func (db *DB) User(ctx context.Context, name string) (*store.User, error) {
	u := &store.User{}
	err := scanUser(db.stmts.user.QueryRowContext(ctx, name), u)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "user %q not found", name)
	}
	if err != nil {
		return nil, db.wrap(err)
	}
	return u, nil
}

// UpdateUser saves u's mutable fields (PasswordHash, Admin, Disabled,
// ExternalID), finding the user by name. ENOTFOUND if missing.
func (db *DB) UpdateUser(ctx context.Context, u *store.User) error {
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE users SET password_hash = $1, admin = $2, disabled = $3, external_id = $4 WHERE name = $5`,
			u.PasswordHash, u.Admin, u.Disabled, u.ExternalID, u.Name)
		if err != nil {
			return err
		}
		return mustAffect(res, apperr.Errorf(apperr.ENOTFOUND, "user %q not found", u.Name))
	})
}

// Users lists users ordered by name.
func (db *DB) Users(ctx context.Context, page store.Page) ([]store.User, error) {
	n, err := limit(page.N)
	if err != nil {
		return nil, err
	}
	rows, err := db.read.QueryContext(ctx,
		`SELECT `+userColumns+` FROM users WHERE name > $1 ORDER BY name LIMIT $2`, page.Last, n)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	out := []store.User{}
	for rows.Next() {
		var u store.User
		if err := scanUser(rows, &u); err != nil {
			return nil, db.wrap(err)
		}
		out = append(out, u)
	}
	return out, db.wrap(rows.Err())
}

// DeleteUser removes the named user; their memberships go with them
// (ON DELETE CASCADE). ENOTFOUND if missing.
func (db *DB) DeleteUser(ctx context.Context, name string) error {
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE name = $1`, name)
		if err != nil {
			return err
		}
		return mustAffect(res, apperr.Errorf(apperr.ENOTFOUND, "user %q not found", name))
	})
}
