package sqldb

import (
	"context"
	"database/sql"
	"errors"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// projectID returns the id of the named project inside tx, or ENOTFOUND.
func projectID(ctx context.Context, tx *sql.Tx, name string) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM projects WHERE name = $1`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, apperr.Errorf(apperr.ENOTFOUND, "project %q not found", name)
	}
	return id, err
}

// AddMember stores m and sets its CreatedAt. ENOTFOUND if the project or
// (for store.MemberUser) the user does not exist, ECONFLICT if already a
// member, EINVALID for an unknown kind or an empty name or role.
func (db *DB) AddMember(ctx context.Context, m *store.Member) error {
	if m.Kind != store.MemberUser && m.Kind != store.MemberGroup {
		return apperr.Errorf(apperr.EINVALID, "member kind %q is not %q or %q", m.Kind, store.MemberUser, store.MemberGroup)
	}
	if m.Name == "" || m.Role == "" {
		return apperr.Errorf(apperr.EINVALID, "member name and role are required")
	}
	now := db.nowUTC()
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		pid, err := projectID(ctx, tx, m.Project)
		if err != nil {
			return err
		}
		var uid sql.NullInt64
		if m.Kind == store.MemberUser {
			err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE name = $1`, m.Name).Scan(&uid)
			if errors.Is(err, sql.ErrNoRows) {
				return apperr.Errorf(apperr.ENOTFOUND, "user %q not found", m.Name)
			}
			if err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO project_members (project_id, kind, name, user_id, role, created_at)
			 VALUES ($1, $2, $3, $4, $5, $6)`,
			pid, m.Kind, m.Name, uid, m.Role, db.ts(now))
		if err != nil && db.d.Classify(err) == ErrUnique {
			return apperr.Errorf(apperr.ECONFLICT, "%s %q is already a member of project %q", m.Kind, m.Name, m.Project)
		}
		return err
	})
	if err != nil {
		return err
	}
	m.CreatedAt = now
	return nil
}

// UpdateMember saves m's Role. ENOTFOUND if m is not a member.
func (db *DB) UpdateMember(ctx context.Context, m *store.Member) error {
	if m.Role == "" {
		return apperr.Errorf(apperr.EINVALID, "member role is required")
	}
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE project_members SET role = $1
			 WHERE project_id = (SELECT id FROM projects WHERE name = $2) AND kind = $3 AND name = $4`,
			m.Role, m.Project, m.Kind, m.Name)
		if err != nil {
			return err
		}
		return mustAffect(res, apperr.Errorf(apperr.ENOTFOUND, "%s %q is not a member of project %q", m.Kind, m.Name, m.Project))
	})
}

// DeleteMember removes a membership. ENOTFOUND if absent.
func (db *DB) DeleteMember(ctx context.Context, project, kind, name string) error {
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`DELETE FROM project_members
			 WHERE project_id = (SELECT id FROM projects WHERE name = $1) AND kind = $2 AND name = $3`,
			project, kind, name)
		if err != nil {
			return err
		}
		return mustAffect(res, apperr.Errorf(apperr.ENOTFOUND, "%s %q is not a member of project %q", kind, name, project))
	})
}

// Members lists a project's members: users, then groups, each by name. ENOTFOUND
// if the project does not exist.
func (db *DB) Members(ctx context.Context, project string) ([]store.Member, error) {
	var pid int64
	err := db.read.QueryRowContext(ctx, `SELECT id FROM projects WHERE name = $1`, project).Scan(&pid)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "project %q not found", project)
	}
	if err != nil {
		return nil, db.wrap(err)
	}
	rows, err := db.read.QueryContext(ctx,
		`SELECT kind, name, role, created_at FROM project_members WHERE project_id = $1 ORDER BY kind DESC, name`, pid)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	out := []store.Member{}
	for rows.Next() {
		m := store.Member{Project: project}
		if err := rows.Scan(&m.Kind, &m.Name, &m.Role, timeScan{&m.CreatedAt}); err != nil {
			return nil, db.wrap(err)
		}
		out = append(out, m)
	}
	return out, db.wrap(rows.Err())
}

// MemberRoles returns, per project name, the roles user holds directly or
// through one of groups.
func (db *DB) MemberRoles(ctx context.Context, user string, groups []string) (map[string][]string, error) {
	out := map[string][]string{}
	add := func(query string, args ...any) error {
		rows, err := db.read.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var project, role string
			if err := rows.Scan(&project, &role); err != nil {
				return err
			}
			out[project] = append(out[project], role)
		}
		return rows.Err()
	}
	const sel = `SELECT p.name, m.role FROM project_members m JOIN projects p ON p.id = m.project_id WHERE m.kind = `
	if user != "" {
		if err := add(sel+`'user' AND m.name = $1`, user); err != nil {
			return nil, db.wrap(err)
		}
	}
	for start := 0; start < len(groups); start += chunkSize {
		chunk := groups[start:min(start+chunkSize, len(groups))]
		args := make([]any, len(chunk))
		for i, g := range chunk {
			args[i] = g
		}
		if err := add(sel+`'group' AND m.name IN (`+placeholders(1, len(chunk))+`)`, args...); err != nil {
			return nil, db.wrap(err)
		}
	}
	return out, nil
}
