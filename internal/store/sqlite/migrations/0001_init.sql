-- customs metadata schema, SQLite. Times are microseconds since the Unix
-- epoch (UTC); names and digests compare byte-wise (BINARY collation).

CREATE TABLE projects (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	name       TEXT    NOT NULL UNIQUE,
	public     INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE repositories (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	project_id INTEGER NOT NULL REFERENCES projects (id),
	name       TEXT    NOT NULL UNIQUE,
	created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX repositories_project_name ON repositories (project_id, name);

CREATE TABLE blobs (
	digest     TEXT    NOT NULL PRIMARY KEY,
	size       INTEGER NOT NULL CHECK (size >= 0),
	created_at INTEGER NOT NULL,
	touched_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX blobs_touched_at ON blobs (touched_at);

CREATE TABLE repository_blobs (
	repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
	digest        TEXT    NOT NULL REFERENCES blobs (digest) ON DELETE CASCADE,
	PRIMARY KEY (repository_id, digest)
) STRICT, WITHOUT ROWID;
CREATE INDEX repository_blobs_digest ON repository_blobs (digest);

-- digest references blobs: a manifest's own bytes are a blob that garbage
-- collection must never delete while the manifest is stored.
CREATE TABLE manifests (
	repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
	digest        TEXT    NOT NULL REFERENCES blobs (digest),
	media_type    TEXT    NOT NULL,
	artifact_type TEXT    NOT NULL DEFAULT '',
	size          INTEGER NOT NULL,
	subject       TEXT    NOT NULL DEFAULT '',
	annotations   TEXT,
	created_at    INTEGER NOT NULL,
	PRIMARY KEY (repository_id, digest)
) STRICT;
CREATE INDEX manifests_subject ON manifests (repository_id, subject, digest);
CREATE INDEX manifests_digest ON manifests (digest);

-- position keeps the manifest's order; one digest may appear twice.
CREATE TABLE manifest_references (
	repository_id   INTEGER NOT NULL,
	manifest_digest TEXT    NOT NULL,
	position        INTEGER NOT NULL,
	digest          TEXT    NOT NULL,
	kind            TEXT    NOT NULL CHECK (kind IN ('blob', 'manifest')),
	required        INTEGER NOT NULL,
	PRIMARY KEY (repository_id, manifest_digest, position),
	FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests (repository_id, digest) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX manifest_references_digest ON manifest_references (digest);

CREATE TABLE tags (
	repository_id INTEGER NOT NULL,
	name          TEXT    NOT NULL,
	digest        TEXT    NOT NULL,
	updated_at    INTEGER NOT NULL,
	PRIMARY KEY (repository_id, name),
	FOREIGN KEY (repository_id, digest) REFERENCES manifests (repository_id, digest) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX tags_manifest ON tags (repository_id, digest);

CREATE TABLE users (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	name          TEXT    NOT NULL UNIQUE,
	password_hash TEXT    NOT NULL,
	admin         INTEGER NOT NULL DEFAULT 0,
	disabled      INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL
) STRICT;
