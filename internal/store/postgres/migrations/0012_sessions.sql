-- Revocable login sessions (package auth). session_generation is bumped
-- to end every session and refresh token of a user issued before ("log
-- out everywhere", password change, disabling or enabling); tokens carry
-- the generation they were issued at. revoked_sessions holds the IDs
-- (jti) of sessions logged out one by one, until the session would have
-- expired anyway (rows past expires_at are purged).
ALTER TABLE users ADD COLUMN session_generation BIGINT NOT NULL DEFAULT 0;

CREATE TABLE revoked_sessions (
	jti        TEXT NOT NULL PRIMARY KEY,
	user_name  TEXT NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX revoked_sessions_expires_at ON revoked_sessions (expires_at);
