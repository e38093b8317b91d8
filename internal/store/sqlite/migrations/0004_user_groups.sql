-- The directory groups of LDAP and OIDC users as their directory reported
-- them at their last login (issue 3), so that memberships given to groups
-- apply on every replica. They go with their user.
CREATE TABLE user_groups (
	user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name    TEXT    NOT NULL,
	PRIMARY KEY (user_id, name)
) STRICT, WITHOUT ROWID;
