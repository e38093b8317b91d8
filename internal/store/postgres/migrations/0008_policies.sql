-- Policy documents (package policy) with their history, and the global
-- policy revision that every change increases (the decision cache key).

CREATE TABLE policy_state (
	id       INTEGER PRIMARY KEY CHECK (id = 1),
	revision BIGINT NOT NULL
);
INSERT INTO policy_state (id, revision) VALUES (1, 0);

-- The current version of each policy.
CREATE TABLE policies (
	name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	project    TEXT NOT NULL DEFAULT '',
	document   TEXT NOT NULL,
	revision   BIGINT NOT NULL,
	updated_by TEXT NOT NULL DEFAULT '',
	updated_at TIMESTAMPTZ NOT NULL
);

-- Every version, deletions included.
CREATE TABLE policy_revisions (
	name       TEXT COLLATE "C" NOT NULL,
	revision   BIGINT NOT NULL,
	project    TEXT NOT NULL DEFAULT '',
	document   TEXT NOT NULL,
	deleted    BOOLEAN NOT NULL DEFAULT FALSE,
	updated_by TEXT NOT NULL DEFAULT '',
	updated_at TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (name, revision)
);
