-- The vulnerability database across replicas: when each revision was made
-- (the change log is pruned by age) and how far it was pruned, and the
-- imports running now: a lease per source, held by one process at a time,
-- carrying its progress so that every replica can show it.

-- pruned_through: the changes of revisions up to it are gone from
-- vulndb_changes; "what changed since N" is answered for N >= it only.
ALTER TABLE vulndb_state ADD COLUMN pruned_through INTEGER NOT NULL DEFAULT 0;

CREATE TABLE vulndb_revisions (
	revision   INTEGER PRIMARY KEY,
	created_at INTEGER NOT NULL
) STRICT;
-- Older revisions have no time: they count as older than the newest one.
INSERT INTO vulndb_revisions (revision, created_at)
	SELECT revision, updated_at FROM vulndb_state WHERE revision > 0 AND updated_at IS NOT NULL;

-- One row per source being imported. A row whose lease_until has passed is
-- a dead import (its process stopped renewing) and may be claimed again.
CREATE TABLE vulndb_imports (
	source          TEXT    NOT NULL PRIMARY KEY,
	location        TEXT    NOT NULL,
	owner           TEXT    NOT NULL,
	started_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	lease_until     INTEGER NOT NULL,
	phase           TEXT    NOT NULL DEFAULT '',
	bytes           INTEGER NOT NULL DEFAULT 0,
	records_read    INTEGER NOT NULL DEFAULT 0,
	records_changed INTEGER NOT NULL DEFAULT 0,
	record_errors   INTEGER NOT NULL DEFAULT 0
) STRICT;
