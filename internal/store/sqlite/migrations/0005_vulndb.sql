-- The vulnerability database (issue 4): records per source, the database
-- revision and its change log, operator severity overrides; and the
-- inventories of scanned images, whose packages are looked up by
-- (ecosystem, name) or (ecosystem, source package) to match a changed
-- advisory again without reading layers.

-- One row: the revision grows with every change of records or overrides.
CREATE TABLE vulndb_state (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	revision   INTEGER NOT NULL,
	updated_at INTEGER
) STRICT;
INSERT INTO vulndb_state (id, revision) VALUES (1, 0);

CREATE TABLE vulndb_sources (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	name          TEXT    NOT NULL UNIQUE,
	location      TEXT    NOT NULL,
	etag          TEXT    NOT NULL DEFAULT '',
	last_modified TEXT    NOT NULL DEFAULT '',
	last_attempt  INTEGER,
	last_success  INTEGER,
	last_error    TEXT    NOT NULL DEFAULT '',
	revision      INTEGER NOT NULL DEFAULT 0
) STRICT;

-- ecosystems is the newline-separated list of VulnRecord.Ecosystems.
CREATE TABLE vulndb_records (
	source_id  INTEGER NOT NULL REFERENCES vulndb_sources (id) ON DELETE CASCADE,
	kind       TEXT    NOT NULL CHECK (kind IN ('osv', 'cve')),
	id         TEXT    NOT NULL,
	hash       TEXT    NOT NULL,
	modified   INTEGER,
	ecosystems TEXT    NOT NULL DEFAULT '',
	revision   INTEGER NOT NULL,
	data       BLOB    NOT NULL,
	PRIMARY KEY (source_id, kind, id)
) STRICT;
CREATE INDEX vulndb_records_id ON vulndb_records (kind, id);

CREATE TABLE vulndb_changes (
	revision INTEGER NOT NULL,
	kind     TEXT    NOT NULL,
	id       TEXT    NOT NULL,
	PRIMARY KEY (revision, kind, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE vulndb_overrides (
	id         TEXT    NOT NULL PRIMARY KEY,
	level      TEXT    NOT NULL,
	reason     TEXT    NOT NULL,
	created_by TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	revision   INTEGER NOT NULL
) STRICT;

-- data is the whole inventory as JSON; the distro columns repeat its
-- release for reverse matching.
CREATE TABLE inventories (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	digest          TEXT    NOT NULL,
	platform        TEXT    NOT NULL,
	distro_id       TEXT,
	distro_version  TEXT    NOT NULL DEFAULT '',
	distro_codename TEXT    NOT NULL DEFAULT '',
	data            BLOB    NOT NULL,
	updated_at      INTEGER NOT NULL,
	UNIQUE (digest, platform)
) STRICT;

-- position is the package's index in the inventory; lookup is the name
-- advisories know it by (the source package for Debian, Ubuntu and Alpine,
-- normalized per ecosystem: see vulndb/match.KeyOf), '' if none. The lookup
-- index carries the matched columns, so reverse matching reads the index
-- only.
CREATE TABLE inventory_packages (
	inventory_id   INTEGER NOT NULL REFERENCES inventories (id) ON DELETE CASCADE,
	position       INTEGER NOT NULL,
	ecosystem      TEXT    NOT NULL,
	name           TEXT    NOT NULL,
	version        TEXT    NOT NULL,
	source_name    TEXT    NOT NULL DEFAULT '',
	source_version TEXT    NOT NULL DEFAULT '',
	lookup         TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (inventory_id, position)
) STRICT, WITHOUT ROWID;
CREATE INDEX inventory_packages_lookup ON inventory_packages (ecosystem, lookup, name, version, source_name, source_version)
	WHERE lookup <> '';
