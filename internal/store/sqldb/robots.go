package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// robotSelect selects the columns scanRobot reads.
const robotSelect = `SELECT r.id, r.name, COALESCE(p.name, ''), r.description, r.secret_hash, r.permissions,
	r.expires_at, r.disabled, r.created_by, r.created_at
	FROM robots r LEFT JOIN projects p ON p.id = r.project_id`

// nullTimeScan scans a nullable timestamp column; NULL is the zero time.
type nullTimeScan struct{ t *time.Time }

// Scan implements sql.Scanner.
func (s nullTimeScan) Scan(src any) error {
	if src == nil {
		*s.t = time.Time{}
		return nil
	}
	return timeScan(s).Scan(src)
}

// jsonScan scans a JSON text or JSONB column into its raw bytes.
type jsonScan struct{ b *[]byte }

// Scan implements sql.Scanner.
func (s jsonScan) Scan(src any) error {
	switch v := src.(type) {
	case []byte:
		*s.b = append((*s.b)[:0], v...)
	case string:
		*s.b = []byte(v)
	case nil:
		*s.b = nil
	default:
		return fmt.Errorf("sqldb: cannot scan %T as JSON", src)
	}
	return nil
}

func scanRobot(row interface{ Scan(...any) error }, r *store.Robot) error {
	var perms []byte
	if err := row.Scan(&r.ID, &r.Name, &r.Project, &r.Description, &r.SecretHash, jsonScan{&perms},
		nullTimeScan{&r.ExpiresAt}, &r.Disabled, &r.CreatedBy, timeScan{&r.CreatedAt}); err != nil {
		return err
	}
	r.Permissions = nil
	if err := json.Unmarshal(perms, &r.Permissions); err != nil {
		return fmt.Errorf("decoding robot %q permissions: %w", r.Name, err)
	}
	return nil
}

// robotArgs encodes r's permissions and expiry as query arguments.
func (db *DB) robotArgs(r *store.Robot) (perms string, expires any, err error) {
	p := r.Permissions
	if p == nil {
		p = []store.RobotPermission{}
	}
	b, err := json.Marshal(p)
	if err != nil {
		return "", nil, apperr.Wrap(err, apperr.EINVALID, "robot permissions cannot be encoded")
	}
	if !r.ExpiresAt.IsZero() {
		expires = db.ts(r.ExpiresAt)
	}
	return string(b), expires, nil
}

// CreateRobot stores r and sets its ID and CreatedAt. ECONFLICT if the name
// is taken, ENOTFOUND if r.Project is set and does not exist.
func (db *DB) CreateRobot(ctx context.Context, r *store.Robot) error {
	if r.Name == "" || r.SecretHash == "" {
		return apperr.Errorf(apperr.EINVALID, "robot name and secret hash are required")
	}
	perms, expires, err := db.robotArgs(r)
	if err != nil {
		return err
	}
	now := db.nowUTC()
	var id int64
	err = db.inTx(ctx, true, func(tx *sql.Tx) error {
		var pid sql.NullInt64
		if r.Project != "" {
			id, err := projectID(ctx, tx, r.Project)
			if err != nil {
				return err
			}
			pid = sql.NullInt64{Int64: id, Valid: true}
		}
		err := tx.QueryRowContext(ctx,
			`INSERT INTO robots (name, project_id, description, secret_hash, permissions, expires_at, disabled, created_by, created_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
			r.Name, pid, r.Description, r.SecretHash, perms, expires, r.Disabled, r.CreatedBy, db.ts(now)).Scan(&id)
		if err != nil && db.d.Classify(err) == ErrUnique {
			return apperr.Errorf(apperr.ECONFLICT, "robot %q already exists", r.Name)
		}
		return err
	})
	if err != nil {
		return err
	}
	r.ID, r.CreatedAt = id, now
	if !r.ExpiresAt.IsZero() {
		r.ExpiresAt = r.ExpiresAt.UTC().Truncate(time.Microsecond)
	}
	return nil
}

// Robot returns the named robot, or ENOTFOUND.
func (db *DB) Robot(ctx context.Context, name string) (*store.Robot, error) {
	r := &store.Robot{}
	err := scanRobot(db.read.QueryRowContext(ctx, robotSelect+` WHERE r.name = $1`, name), r)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "robot %q not found", name)
	}
	if err != nil {
		return nil, db.wrap(err)
	}
	return r, nil
}

// UpdateRobot saves r's mutable fields (Description, SecretHash,
// Permissions, ExpiresAt, Disabled). ENOTFOUND if missing.
func (db *DB) UpdateRobot(ctx context.Context, r *store.Robot) error {
	if r.SecretHash == "" {
		return apperr.Errorf(apperr.EINVALID, "robot secret hash is required")
	}
	perms, expires, err := db.robotArgs(r)
	if err != nil {
		return err
	}
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE robots SET description = $1, secret_hash = $2, permissions = $3, expires_at = $4, disabled = $5
			 WHERE name = $6`,
			r.Description, r.SecretHash, perms, expires, r.Disabled, r.Name)
		if err != nil {
			return err
		}
		return mustAffect(res, apperr.Errorf(apperr.ENOTFOUND, "robot %q not found", r.Name))
	})
}

// DeleteRobot removes the named robot. ENOTFOUND if missing.
func (db *DB) DeleteRobot(ctx context.Context, name string) error {
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM robots WHERE name = $1`, name)
		if err != nil {
			return err
		}
		return mustAffect(res, apperr.Errorf(apperr.ENOTFOUND, "robot %q not found", name))
	})
}

// Robots lists robots ordered by name: project's, or all when project is "".
func (db *DB) Robots(ctx context.Context, project string, page store.Page) ([]store.Robot, error) {
	n, err := limit(page.N)
	if err != nil {
		return nil, err
	}
	var rows *sql.Rows
	if project == "" {
		rows, err = db.read.QueryContext(ctx, robotSelect+` WHERE r.name > $1 ORDER BY r.name LIMIT $2`, page.Last, n)
	} else {
		rows, err = db.read.QueryContext(ctx, robotSelect+` WHERE p.name = $1 AND r.name > $2 ORDER BY r.name LIMIT $3`,
			project, page.Last, n)
	}
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	out := []store.Robot{}
	for rows.Next() {
		var r store.Robot
		if err := scanRobot(rows, &r); err != nil {
			return nil, db.wrap(err)
		}
		out = append(out, r)
	}
	return out, db.wrap(rows.Err())
}
