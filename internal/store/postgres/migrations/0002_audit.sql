-- The audit trail: append-only, hash-chained events (see package audit).
-- IDs are assigned by the store from audit_chain.last_id while it holds the
-- chain row's lock, so appends from every replica form one chain, and IDs
-- have no gaps and follow the chain's order.

CREATE TABLE audit_events (
	id          BIGINT PRIMARY KEY,
	occurred_at TIMESTAMPTZ NOT NULL,
	actor_kind  TEXT NOT NULL,
	actor       TEXT COLLATE "C" NOT NULL,
	client_ip   TEXT NOT NULL,
	user_agent  TEXT NOT NULL,
	action      TEXT COLLATE "C" NOT NULL,
	resource    TEXT COLLATE "C" NOT NULL,
	project     TEXT COLLATE "C" NOT NULL,
	outcome     TEXT NOT NULL,
	reason      TEXT NOT NULL,
	details     TEXT,
	prev_hash   TEXT NOT NULL,
	hash        TEXT NOT NULL
);
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);
CREATE INDEX audit_events_actor ON audit_events (actor, id);
CREATE INDEX audit_events_project ON audit_events (project, id);

-- One row: the last event appended (head) and the last event purged
-- (anchor, from which verification starts).
CREATE TABLE audit_chain (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	last_id     BIGINT NOT NULL,
	last_hash   TEXT NOT NULL,
	anchor_id   BIGINT NOT NULL,
	anchor_hash TEXT NOT NULL
);
INSERT INTO audit_chain (id, last_id, last_hash, anchor_id, anchor_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000',
        0, '0000000000000000000000000000000000000000000000000000000000000000');
