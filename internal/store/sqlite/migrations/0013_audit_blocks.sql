-- The audit trail in blocks: one row per append batch (split into blocks
-- of at most 256 events, see sqldb.maxBlockEvents) instead of one per
-- event. data is the concatenation of the events' records (package audit:
-- each event's canonical encoding followed by its hash), in ID order;
-- prev_hash is the PrevHash of the first; min_time and max_time bound the
-- events' times (Unix microseconds, as occurred_at was). The rows of
-- audit_events are moved into blocks, and the table dropped, by a Go step
-- that runs in this migration's transaction (sqldb.Migrate).
CREATE TABLE audit_blocks (
	first_id  INTEGER PRIMARY KEY,
	last_id   INTEGER NOT NULL,
	min_time  INTEGER NOT NULL,
	max_time  INTEGER NOT NULL,
	prev_hash TEXT    NOT NULL,
	data      TEXT    NOT NULL
) STRICT;

-- One row per distinct actor, project, action and outcome of each block,
-- so that queries filtering on them find the candidate blocks by index.
CREATE TABLE audit_block_keys (
	kind     TEXT    NOT NULL,
	value    TEXT    NOT NULL,
	first_id INTEGER NOT NULL,
	PRIMARY KEY (kind, value, first_id)
) STRICT, WITHOUT ROWID;
