-- Policy documents (package policy) with their history, and the global
-- policy revision that every change increases (the decision cache key).

CREATE TABLE policy_state (
	id       INTEGER PRIMARY KEY CHECK (id = 1),
	revision INTEGER NOT NULL
) STRICT;
INSERT INTO policy_state (id, revision) VALUES (1, 0);

-- The current version of each policy.
CREATE TABLE policies (
	name       TEXT    NOT NULL PRIMARY KEY,
	project    TEXT    NOT NULL DEFAULT '',
	document   TEXT    NOT NULL,
	revision   INTEGER NOT NULL,
	updated_by TEXT    NOT NULL DEFAULT '',
	updated_at INTEGER NOT NULL
) STRICT;

-- Every version, deletions included.
CREATE TABLE policy_revisions (
	name       TEXT    NOT NULL,
	revision   INTEGER NOT NULL,
	project    TEXT    NOT NULL DEFAULT '',
	document   TEXT    NOT NULL,
	deleted    INTEGER NOT NULL DEFAULT 0,
	updated_by TEXT    NOT NULL DEFAULT '',
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (name, revision)
) STRICT;
