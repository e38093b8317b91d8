-- The scanner (issue 5): the persistent scan queue, one report per manifest
-- digest with when each finding was first seen, projects' scan settings,
-- and per-layer extraction results that survive restarts.

-- One job per (kind, subject): a manifest scan per digest, one rematch job.
-- A claimed job is leased to owner until lease_until; an expired lease is
-- claimed again. Workers claim with FOR UPDATE SKIP LOCKED.
CREATE TABLE scan_jobs (
	id          BIGSERIAL PRIMARY KEY,
	kind        TEXT COLLATE "C" NOT NULL CHECK (kind IN ('manifest', 'rematch')),
	subject     TEXT COLLATE "C" NOT NULL,
	repository  TEXT COLLATE "C" NOT NULL DEFAULT '',
	cause       TEXT NOT NULL DEFAULT '',
	status      TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'unsupported')),
	stage       TEXT NOT NULL DEFAULT '',
	attempts    INTEGER NOT NULL DEFAULT 0,
	last_error  TEXT NOT NULL DEFAULT '',
	owner       TEXT NOT NULL DEFAULT '',
	lease_until TIMESTAMPTZ,
	run_after   TIMESTAMPTZ NOT NULL,
	queued_at   TIMESTAMPTZ NOT NULL,
	started_at  TIMESTAMPTZ,
	finished_at TIMESTAMPTZ,
	UNIQUE (kind, subject)
);
CREATE INDEX scan_jobs_due ON scan_jobs (status, run_after, id);
CREATE INDEX scan_jobs_lease ON scan_jobs (status, lease_until);

-- data is the report as package scan/report encodes it; the other columns
-- repeat what listings and the rematch need.
CREATE TABLE scan_reports (
	digest         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	media_type     TEXT NOT NULL DEFAULT '',
	platform       TEXT NOT NULL DEFAULT '',
	status         TEXT NOT NULL CHECK (status IN ('done', 'failed', 'unsupported')),
	reason         TEXT NOT NULL DEFAULT '',
	vuln_revision  BIGINT NOT NULL,
	scanned_at     TIMESTAMPTZ,
	matched_at     TIMESTAMPTZ,
	packages       INTEGER NOT NULL DEFAULT 0,
	count_critical INTEGER NOT NULL DEFAULT 0,
	count_high     INTEGER NOT NULL DEFAULT 0,
	count_medium   INTEGER NOT NULL DEFAULT 0,
	count_low      INTEGER NOT NULL DEFAULT 0,
	count_none     INTEGER NOT NULL DEFAULT 0,
	count_unknown  INTEGER NOT NULL DEFAULT 0,
	data           BYTEA NOT NULL,
	updated_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX scan_reports_revision ON scan_reports (status, vuln_revision);

-- One row per finding of a report: key identifies advisory and package.
CREATE TABLE scan_findings (
	digest      TEXT COLLATE "C" NOT NULL REFERENCES scan_reports (digest) ON DELETE CASCADE,
	key         TEXT COLLATE "C" NOT NULL,
	advisory_id TEXT COLLATE "C" NOT NULL,
	first_seen  TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (digest, key)
);
CREATE INDEX scan_findings_advisory ON scan_findings (advisory_id);

-- One row: the vulnerability database revision up to which stored reports
-- were matched again.
CREATE TABLE scan_state (
	id                 INTEGER PRIMARY KEY CHECK (id = 1),
	rematched_revision BIGINT NOT NULL
);
INSERT INTO scan_state (id, rematched_revision) VALUES (1, 0);

CREATE TABLE project_scan_settings (
	project_id   BIGINT NOT NULL PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
	scan_on_push BOOLEAN NOT NULL
);

CREATE TABLE layer_cache (
	diff_id    TEXT COLLATE "C" NOT NULL,
	version    TEXT COLLATE "C" NOT NULL,
	data       BYTEA NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (diff_id, version)
);
