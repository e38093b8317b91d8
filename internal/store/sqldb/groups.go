package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"slices"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// SetUserGroups replaces the named user's groups. ENOTFOUND if the user does
// not exist.
func (db *DB) SetUserGroups(ctx context.Context, user string, groups []string) error {
	set := make([]string, 0, len(groups))
	for _, g := range groups {
		if g != "" {
			set = append(set, g)
		}
	}
	slices.Sort(set)
	set = slices.Compact(set)
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		var uid int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE name = $1`, user).Scan(&uid)
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.Errorf(apperr.ENOTFOUND, "user %q not found", user)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM user_groups WHERE user_id = $1`, uid); err != nil {
			return err
		}
		for start := 0; start < len(set); start += chunkSize / 2 {
			chunk := set[start:min(start+chunkSize/2, len(set))]
			args := make([]any, 0, 2*len(chunk))
			q := `INSERT INTO user_groups (user_id, name) VALUES `
			for i, g := range chunk {
				if i > 0 {
					q += ", "
				}
				q += "(" + placeholders(2*i+1, 2) + ")"
				args = append(args, uid, g)
			}
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
		}
		return nil
	})
}

// UserGroups returns the named user's groups sorted by name.
func (db *DB) UserGroups(ctx context.Context, user string) ([]string, error) {
	rows, err := db.read.QueryContext(ctx,
		`SELECT g.name FROM user_groups g JOIN users u ON u.id = g.user_id WHERE u.name = $1 ORDER BY g.name`, user)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, db.wrap(err)
		}
		out = append(out, g)
	}
	return out, db.wrap(rows.Err())
}

var _ store.GroupStore = (*DB)(nil)
