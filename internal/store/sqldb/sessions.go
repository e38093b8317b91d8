package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// RevokeSession records that session jti of user is logged out until
// expires, and purges revocations already expired.
func (db *DB) RevokeSession(ctx context.Context, jti, user string, expires time.Time) error {
	if jti == "" || user == "" {
		return apperr.Errorf(apperr.EINVALID, "a revoked session needs its token ID and user")
	}
	now := db.nowUTC()
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM revoked_sessions WHERE expires_at < $1`, db.ts(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx,
			`INSERT INTO revoked_sessions (jti, user_name, expires_at) VALUES ($1, $2, $3)
			 ON CONFLICT (jti) DO NOTHING`, jti, user, db.ts(expires))
		return err
	})
}

// UserSession returns the named user and whether session jti is revoked,
// with one query.
func (db *DB) UserSession(ctx context.Context, user, jti string) (*store.User, bool, error) {
	u := &store.User{}
	var revoked bool
	err := db.read.QueryRowContext(ctx,
		`SELECT `+userColumns+`, EXISTS (SELECT 1 FROM revoked_sessions WHERE jti = $2)
		 FROM users WHERE name = $1`, user, jti).Scan(
		&u.ID, &u.Name, &u.Source, &u.ExternalID, &u.PasswordHash, &u.Admin, &u.Disabled, timeScan{&u.CreatedAt},
		&u.SessionGeneration, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, apperr.Errorf(apperr.ENOTFOUND, "user %q not found", user)
	}
	if err != nil {
		return nil, false, db.wrap(err)
	}
	return u, revoked, nil
}

// EndUserSessions increments user's session generation.
func (db *DB) EndUserSessions(ctx context.Context, user string) (int64, error) {
	var gen int64
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx,
			`UPDATE users SET session_generation = session_generation + 1 WHERE name = $1 RETURNING session_generation`,
			user).Scan(&gen)
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.Errorf(apperr.ENOTFOUND, "user %q not found", user)
		}
		return err
	})
	return gen, err
}
