-- Users from directories, project memberships and robot accounts (issue 3).

ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local';
ALTER TABLE users ADD COLUMN external_id TEXT NOT NULL DEFAULT '';

-- A member is a user (user_id set, deleted with the user) or a directory
-- group (user_id NULL); memberships go with their project.
CREATE TABLE project_members (
	project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	kind       TEXT    NOT NULL CHECK (kind IN ('user', 'group')),
	name       TEXT    NOT NULL,
	user_id    INTEGER REFERENCES users (id) ON DELETE CASCADE,
	role       TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (project_id, kind, name),
	CHECK ((kind = 'user') = (user_id IS NOT NULL))
) STRICT, WITHOUT ROWID;
CREATE INDEX project_members_name ON project_members (kind, name);
CREATE INDEX project_members_user ON project_members (user_id);

-- permissions is JSON: [{"project": "p" or "*", "actions": ["pull", ...]}].
-- A project robot (project_id set) goes with its project.
CREATE TABLE robots (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	name        TEXT    NOT NULL UNIQUE,
	project_id  INTEGER REFERENCES projects (id) ON DELETE CASCADE,
	description TEXT    NOT NULL DEFAULT '',
	secret_hash TEXT    NOT NULL,
	permissions TEXT    NOT NULL,
	expires_at  INTEGER,
	disabled    INTEGER NOT NULL DEFAULT 0,
	created_by  TEXT    NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX robots_project ON robots (project_id, name);
