-- The scanner (issue 5): the persistent scan queue, one report per manifest
-- digest with when each finding was first seen, projects' scan settings,
-- and per-layer extraction results that survive restarts.

-- One job per (kind, subject): a manifest scan per digest, one rematch job.
-- A claimed job is leased to owner until lease_until; an expired lease is
-- claimed again.
CREATE TABLE scan_jobs (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	kind        TEXT    NOT NULL CHECK (kind IN ('manifest', 'rematch')),
	subject     TEXT    NOT NULL,
	repository  TEXT    NOT NULL DEFAULT '',
	cause       TEXT    NOT NULL DEFAULT '',
	status      TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'unsupported')),
	stage       TEXT    NOT NULL DEFAULT '',
	attempts    INTEGER NOT NULL DEFAULT 0,
	last_error  TEXT    NOT NULL DEFAULT '',
	owner       TEXT    NOT NULL DEFAULT '',
	lease_until INTEGER,
	run_after   INTEGER NOT NULL,
	queued_at   INTEGER NOT NULL,
	started_at  INTEGER,
	finished_at INTEGER,
	UNIQUE (kind, subject)
) STRICT;
CREATE INDEX scan_jobs_due ON scan_jobs (status, run_after, id);
CREATE INDEX scan_jobs_lease ON scan_jobs (status, lease_until);

-- data is the report as package scan/report encodes it; the other columns
-- repeat what listings and the rematch need.
CREATE TABLE scan_reports (
	digest         TEXT    NOT NULL PRIMARY KEY,
	media_type     TEXT    NOT NULL DEFAULT '',
	platform       TEXT    NOT NULL DEFAULT '',
	status         TEXT    NOT NULL CHECK (status IN ('done', 'failed', 'unsupported')),
	reason         TEXT    NOT NULL DEFAULT '',
	vuln_revision  INTEGER NOT NULL,
	scanned_at     INTEGER,
	matched_at     INTEGER,
	packages       INTEGER NOT NULL DEFAULT 0,
	count_critical INTEGER NOT NULL DEFAULT 0,
	count_high     INTEGER NOT NULL DEFAULT 0,
	count_medium   INTEGER NOT NULL DEFAULT 0,
	count_low      INTEGER NOT NULL DEFAULT 0,
	count_none     INTEGER NOT NULL DEFAULT 0,
	count_unknown  INTEGER NOT NULL DEFAULT 0,
	data           BLOB    NOT NULL,
	updated_at     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX scan_reports_revision ON scan_reports (status, vuln_revision);

-- One row per finding of a report: key identifies advisory and package.
CREATE TABLE scan_findings (
	digest      TEXT    NOT NULL REFERENCES scan_reports (digest) ON DELETE CASCADE,
	key         TEXT    NOT NULL,
	advisory_id TEXT    NOT NULL,
	first_seen  INTEGER NOT NULL,
	PRIMARY KEY (digest, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX scan_findings_advisory ON scan_findings (advisory_id);

-- One row: the vulnerability database revision up to which stored reports
-- were matched again.
CREATE TABLE scan_state (
	id                 INTEGER PRIMARY KEY CHECK (id = 1),
	rematched_revision INTEGER NOT NULL
) STRICT;
INSERT INTO scan_state (id, rematched_revision) VALUES (1, 0);

CREATE TABLE project_scan_settings (
	project_id   INTEGER NOT NULL PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
	scan_on_push INTEGER NOT NULL
) STRICT;

CREATE TABLE layer_cache (
	diff_id    TEXT    NOT NULL,
	version    TEXT    NOT NULL,
	data       BLOB    NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (diff_id, version)
) STRICT, WITHOUT ROWID;
