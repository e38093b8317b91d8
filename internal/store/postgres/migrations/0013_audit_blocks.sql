-- The audit trail in blocks: one row per append batch (split into blocks
-- of at most 256 events, see sqldb.maxBlockEvents) instead of one per
-- event. data is the concatenation of the events' records (package audit:
-- each event's canonical encoding followed by its hash), in ID order;
-- prev_hash is the PrevHash of the first; min_time and max_time bound the
-- events' times. The rows of audit_events are moved into blocks, and the
-- table dropped, by a Go step that runs in this migration's transaction
-- (sqldb.Migrate).
CREATE TABLE audit_blocks (
	first_id  BIGINT PRIMARY KEY,
	last_id   BIGINT NOT NULL,
	min_time  TIMESTAMPTZ NOT NULL,
	max_time  TIMESTAMPTZ NOT NULL,
	prev_hash TEXT NOT NULL,
	data      TEXT NOT NULL
);

-- One row per distinct actor, project, action and outcome of each block,
-- so that queries filtering on them find the candidate blocks by index
-- (values compare bytewise, for action prefixes).
CREATE TABLE audit_block_keys (
	kind     TEXT NOT NULL,
	value    TEXT COLLATE "C" NOT NULL,
	first_id BIGINT NOT NULL,
	PRIMARY KEY (kind, value, first_id)
);

-- Blocks are stored uncompressed (as the rows of audit_events were, and as
-- SQLite stores them): reading a block then costs no decompression, and
-- appending none in the database (bench/audit/results.md, round 6).
ALTER TABLE audit_blocks ALTER COLUMN data SET STORAGE EXTERNAL;
