-- The audit trail: append-only, hash-chained events (see package audit).
-- IDs are assigned by the store from audit_chain.last_id, in the same
-- transaction that moves the head, so they have no gaps and follow the
-- chain's order.

CREATE TABLE audit_events (
	id          INTEGER PRIMARY KEY,
	occurred_at INTEGER NOT NULL,
	actor_kind  TEXT    NOT NULL,
	actor       TEXT    NOT NULL,
	client_ip   TEXT    NOT NULL,
	user_agent  TEXT    NOT NULL,
	action      TEXT    NOT NULL,
	resource    TEXT    NOT NULL,
	project     TEXT    NOT NULL,
	outcome     TEXT    NOT NULL,
	reason      TEXT    NOT NULL,
	details     TEXT,
	prev_hash   TEXT    NOT NULL,
	hash        TEXT    NOT NULL
) STRICT;
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);
CREATE INDEX audit_events_actor ON audit_events (actor, id);
CREATE INDEX audit_events_project ON audit_events (project, id);

-- One row: the last event appended (head) and the last event purged
-- (anchor, from which verification starts).
CREATE TABLE audit_chain (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	last_id     INTEGER NOT NULL,
	last_hash   TEXT    NOT NULL,
	anchor_id   INTEGER NOT NULL,
	anchor_hash TEXT    NOT NULL
) STRICT;
INSERT INTO audit_chain (id, last_id, last_hash, anchor_id, anchor_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000',
        0, '0000000000000000000000000000000000000000000000000000000000000000');
