-- The vulnerability database (issue 4): records per source, the database
-- revision and its change log, operator severity overrides; and the
-- inventories of scanned images, whose packages are looked up by
-- (ecosystem, name) or (ecosystem, source package) to match a changed
-- advisory again without reading layers.

-- One row: the revision grows with every change of records or overrides;
-- writers lock it, so revisions are assigned one at a time.
CREATE TABLE vulndb_state (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	revision   BIGINT NOT NULL,
	updated_at TIMESTAMPTZ
);
INSERT INTO vulndb_state (id, revision) VALUES (1, 0);

CREATE TABLE vulndb_sources (
	id            BIGSERIAL PRIMARY KEY,
	name          TEXT COLLATE "C" NOT NULL UNIQUE,
	location      TEXT NOT NULL,
	etag          TEXT NOT NULL DEFAULT '',
	last_modified TEXT NOT NULL DEFAULT '',
	last_attempt  TIMESTAMPTZ,
	last_success  TIMESTAMPTZ,
	last_error    TEXT NOT NULL DEFAULT '',
	revision      BIGINT NOT NULL DEFAULT 0
);

-- ecosystems is the newline-separated list of VulnRecord.Ecosystems.
CREATE TABLE vulndb_records (
	source_id  BIGINT NOT NULL REFERENCES vulndb_sources (id) ON DELETE CASCADE,
	kind       TEXT COLLATE "C" NOT NULL CHECK (kind IN ('osv', 'cve')),
	id         TEXT COLLATE "C" NOT NULL,
	hash       TEXT NOT NULL,
	modified   TIMESTAMPTZ,
	ecosystems TEXT NOT NULL DEFAULT '',
	revision   BIGINT NOT NULL,
	data       BYTEA NOT NULL,
	PRIMARY KEY (source_id, kind, id)
);
CREATE INDEX vulndb_records_id ON vulndb_records (kind, id);

CREATE TABLE vulndb_changes (
	revision BIGINT NOT NULL,
	kind     TEXT COLLATE "C" NOT NULL,
	id       TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (revision, kind, id)
);

CREATE TABLE vulndb_overrides (
	id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	level      TEXT NOT NULL,
	reason     TEXT NOT NULL,
	created_by TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	revision   BIGINT NOT NULL
);

-- data is the whole inventory as JSON; the distro columns repeat its
-- release for reverse matching.
CREATE TABLE inventories (
	id              BIGSERIAL PRIMARY KEY,
	digest          TEXT COLLATE "C" NOT NULL,
	platform        TEXT COLLATE "C" NOT NULL,
	distro_id       TEXT,
	distro_version  TEXT NOT NULL DEFAULT '',
	distro_codename TEXT NOT NULL DEFAULT '',
	data            BYTEA NOT NULL,
	updated_at      TIMESTAMPTZ NOT NULL,
	UNIQUE (digest, platform)
);

-- position is the package's index in the inventory; lookup is the name
-- advisories know it by (the source package for Debian, Ubuntu and Alpine,
-- normalized per ecosystem: see vulndb/match.KeyOf), '' if none. The lookup
-- index carries the matched columns, so reverse matching reads the index
-- only.
CREATE TABLE inventory_packages (
	inventory_id   BIGINT NOT NULL REFERENCES inventories (id) ON DELETE CASCADE,
	position       INTEGER NOT NULL,
	ecosystem      TEXT COLLATE "C" NOT NULL,
	name           TEXT COLLATE "C" NOT NULL,
	version        TEXT NOT NULL,
	source_name    TEXT COLLATE "C" NOT NULL DEFAULT '',
	source_version TEXT NOT NULL DEFAULT '',
	lookup         TEXT COLLATE "C" NOT NULL DEFAULT '',
	PRIMARY KEY (inventory_id, position)
);
CREATE INDEX inventory_packages_lookup ON inventory_packages (ecosystem, lookup)
	INCLUDE (name, version, source_name, source_version, inventory_id, position) WHERE lookup <> '';
