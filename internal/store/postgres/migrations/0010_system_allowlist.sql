-- The system allowlist (Harbor's system-level CVE allowlist): advisories
-- allowed in every image whose policies let it apply. Every change takes
-- the next global policy revision (policy_state), the decision cache key.
CREATE TABLE system_allowlist (
	id_key     TEXT COLLATE "C" NOT NULL, -- lower(id): entries are unique per advisory case-insensitively
	id         TEXT NOT NULL,
	package    TEXT COLLATE "C" NOT NULL DEFAULT '',
	repository TEXT COLLATE "C" NOT NULL DEFAULT '',
	expires_at TIMESTAMPTZ,
	reason     TEXT NOT NULL DEFAULT '',
	added_by   TEXT NOT NULL DEFAULT '',
	added_at   TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (id_key, package, repository)
);
