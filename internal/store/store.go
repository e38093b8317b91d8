// Package store holds customs' domain types and the interfaces of the stores
// that keep them. Implementations live in sub-packages, one per dependency
// (store/sqlite, store/postgres), and all of them pass the same conformance
// suite in store/storetest.
//
// Errors returned by stores are *apperr.Error values: ENOTFOUND when a thing
// does not exist, ECONFLICT when it already does or is still in use, EINVALID
// for a rule the caller broke. Names are compared exactly (case-sensitive);
// callers validate names before they reach a store.
package store

import (
	"context"
	"iter"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/audit"
)

// Project groups repositories: repository "proj/a/b" lives in project "proj".
type Project struct {
	ID        int64
	Name      string
	Public    bool // anonymous users may pull
	CreatedAt time.Time
}

// Repository is a named collection of manifests and tags inside a project.
type Repository struct {
	ID        int64
	ProjectID int64
	Name      string // full name, "project/path..."
	CreatedAt time.Time
}

// Blob is content-addressed data known to the registry, shared by every
// repository that links it.
type Blob struct {
	Digest    digest.Digest
	Size      int64
	CreatedAt time.Time
	// TouchedAt is the last time the blob was uploaded, mounted or linked.
	// Garbage collection never removes a blob touched after its cutoff.
	TouchedAt time.Time
}

// RefKind says what a manifest reference points at.
type RefKind string

// Reference kinds.
const (
	RefBlob     RefKind = "blob"     // a config or layer blob
	RefManifest RefKind = "manifest" // a child manifest of an index
)

// Reference is one thing a manifest points at.
type Reference struct {
	Digest digest.Digest
	Kind   RefKind
	// Required is true when the referenced content must exist in the
	// repository for the manifest to be accepted (false for non-distributable
	// layers and for descriptors with external URLs).
	Required bool
}

// Manifest is a manifest stored in a repository. Its bytes are a blob (see
// package blob) addressed by Digest.
type Manifest struct {
	Repository string
	Digest     digest.Digest
	MediaType  string
	Size       int64
	// ArtifactType is the manifest's artifactType, or for an image manifest
	// without one, its config media type (what the referrers API reports).
	ArtifactType string
	// Subject is the digest of the manifest this one refers to, or "".
	Subject     digest.Digest
	Annotations map[string]string
	References  []Reference
	CreatedAt   time.Time
}

// RepositoryDeletion counts what RegistryStore.DeleteRepository removed.
type RepositoryDeletion struct {
	Tags      int64
	Manifests int64
	// BlobLinks counts the repository's links to blobs; the blobs
	// themselves are left to garbage collection.
	BlobLinks int64
}

// Tag points a name in a repository at a manifest.
type Tag struct {
	Repository string
	Name       string
	Digest     digest.Digest
	UpdatedAt  time.Time
}

// User sources: where a user's identity and password are kept.
const (
	SourceLocal = "local" // customs keeps the password hash
	SourceLDAP  = "ldap"  // a directory checks the password
	SourceOIDC  = "oidc"  // an OpenID Connect provider authenticates the user
)

// User is a person who logs in.
type User struct {
	ID   int64
	Name string
	// Source is SourceLocal, SourceLDAP or SourceOIDC; "" is stored as
	// SourceLocal.
	Source string
	// ExternalID identifies the user at their source (an LDAP DN, an OIDC
	// "iss sub"); "" for local users.
	ExternalID string
	// PasswordHash is the encoded hash of the password (see package auth);
	// for an OIDC user, of their CLI secret (the password registry clients
	// send, since they cannot do OIDC), or "" without one; "" for LDAP users.
	PasswordHash string
	Admin        bool // system administrator
	Disabled     bool
	CreatedAt    time.Time
	// SessionGeneration counts the times every login session and refresh
	// token of the user was ended at once (SessionStore.EndUserSessions);
	// tokens carry the generation they were issued at. UpdateUser does
	// not change it.
	SessionGeneration int64
}

// Member kinds: a project member is a user or a group of an external
// directory (LDAP, OIDC), whose users all get the member's role.
const (
	MemberUser  = "user"
	MemberGroup = "group"
)

// Member gives a user or a group a role in a project.
type Member struct {
	Project string
	Kind    string // MemberUser or MemberGroup
	Name    string // user name, or group name as the directory spells it
	// Role is a role name of package rbac ("developer"); stores keep it as
	// given.
	Role      string
	CreatedAt time.Time
}

// RobotPermission lets a robot perform Actions (action names of package
// rbac) in Project, or in every project when Project is "*".
type RobotPermission struct {
	Project string   `json:"project"`
	Actions []string `json:"actions"`
}

// Robot is a robot account: a non-human identity for CI that authenticates
// with its name and a generated secret.
type Robot struct {
	ID int64
	// Name is the full login name: "robot$<project>+<name>" for a project
	// robot, "robot$<name>" for a system robot.
	Name string
	// Project is the project a project robot belongs to (and is deleted
	// with); "" for a system robot.
	Project     string
	Description string
	// SecretHash is the keyed hash of the secret (see package auth).
	SecretHash  string
	Permissions []RobotPermission
	// ExpiresAt is when the robot stops working; zero means never.
	ExpiresAt time.Time
	Disabled  bool
	CreatedBy string
	CreatedAt time.Time
}

// Page asks for part of an ordered list: at most N items (0 means no limit)
// strictly after Last in lexical order ("" starts at the beginning).
type Page struct {
	N    int
	Last string
}

// ProjectStore keeps projects.
type ProjectStore interface {
	// CreateProject stores p and sets its ID and CreatedAt. ECONFLICT if a
	// project with that name exists.
	CreateProject(ctx context.Context, p *Project) error
	// Project returns the named project, or ENOTFOUND.
	Project(ctx context.Context, name string) (*Project, error)
	// UpdateProject saves p's mutable fields (Public). ENOTFOUND if missing.
	UpdateProject(ctx context.Context, p *Project) error
	// Projects lists projects ordered by name.
	Projects(ctx context.Context, page Page) ([]Project, error)
	// DeleteProject removes an empty project, with its memberships and
	// project robots. ENOTFOUND if missing, ECONFLICT if it still holds
	// repositories.
	DeleteProject(ctx context.Context, name string) error
}

// UserStore keeps users.
type UserStore interface {
	// CreateUser stores u and sets its ID and CreatedAt. ECONFLICT if the
	// name is taken.
	CreateUser(ctx context.Context, u *User) error
	// User returns the named user, or ENOTFOUND.
	User(ctx context.Context, name string) (*User, error)
	// UpdateUser saves u's mutable fields (PasswordHash, Admin, Disabled,
	// ExternalID). ENOTFOUND if missing.
	UpdateUser(ctx context.Context, u *User) error
	// Users lists users ordered by name.
	Users(ctx context.Context, page Page) ([]User, error)
	// DeleteUser removes the named user, their project memberships and
	// their groups. ENOTFOUND if missing.
	DeleteUser(ctx context.Context, name string) error
}

// SessionStore keeps what ends login sessions before they expire: single
// sessions logged out (by their token ID, "jti") and each user's session
// generation.
type SessionStore interface {
	// RevokeSession records that the session with token ID jti, of user,
	// is logged out, until expires (when the session would end anyway);
	// recording it again is no error. Revocations already past their
	// expiry are purged in the same call.
	RevokeSession(ctx context.Context, jti, user string, expires time.Time) error
	// UserSession returns the named user and whether the session jti is
	// revoked, in one read (it is on the path of every request made with a
	// session). ENOTFOUND if the user does not exist.
	UserSession(ctx context.Context, user, jti string) (*User, bool, error)
	// EndUserSessions increments the named user's SessionGeneration and
	// returns the new value. ENOTFOUND if the user does not exist.
	EndUserSessions(ctx context.Context, user string) (int64, error)
}

// GroupStore keeps the directory groups of LDAP and OIDC users as their
// directory reported them at their last login, so that memberships given
// to groups apply on every replica and to requests made with tokens.
type GroupStore interface {
	// SetUserGroups replaces the named user's groups with groups (empty
	// names and duplicates are dropped). ENOTFOUND if the user does not
	// exist.
	SetUserGroups(ctx context.Context, user string, groups []string) error
	// UserGroups returns the named user's groups sorted by name: none for a
	// user without groups or who does not exist.
	UserGroups(ctx context.Context, user string) ([]string, error)
}

// MemberStore keeps project memberships.
type MemberStore interface {
	// AddMember stores m and sets its CreatedAt. ENOTFOUND if the project
	// or (for MemberUser) the user does not exist, ECONFLICT if the user or
	// group is already a member, EINVALID for an unknown Kind.
	AddMember(ctx context.Context, m *Member) error
	// UpdateMember saves m's Role. ENOTFOUND if m is not a member.
	UpdateMember(ctx context.Context, m *Member) error
	// DeleteMember removes a membership. ENOTFOUND if absent.
	DeleteMember(ctx context.Context, project, kind, name string) error
	// Members lists a project's members: users, then groups, each by name.
	// ENOTFOUND if the project does not exist.
	Members(ctx context.Context, project string) ([]Member, error)
	// MemberRoles returns the role names the user, directly or through one
	// of groups, holds in each project: project name -> roles (one per
	// matching membership, in no particular order).
	MemberRoles(ctx context.Context, user string, groups []string) (map[string][]string, error)
}

// RobotStore keeps robot accounts.
type RobotStore interface {
	// CreateRobot stores r and sets its ID and CreatedAt. ECONFLICT if the
	// name is taken, ENOTFOUND if r.Project is set and does not exist.
	CreateRobot(ctx context.Context, r *Robot) error
	// Robot returns the named robot, or ENOTFOUND.
	Robot(ctx context.Context, name string) (*Robot, error)
	// UpdateRobot saves r's mutable fields (Description, SecretHash,
	// Permissions, ExpiresAt, Disabled). ENOTFOUND if missing.
	UpdateRobot(ctx context.Context, r *Robot) error
	// DeleteRobot removes the named robot. ENOTFOUND if missing.
	DeleteRobot(ctx context.Context, name string) error
	// Robots lists robots ordered by name: those of project, or every
	// robot (system and project ones) when project is "".
	Robots(ctx context.Context, project string, page Page) ([]Robot, error)
}

// RegistryStore keeps the registry's metadata: repositories, the blobs they
// link, manifests, tags and what references what.
type RegistryStore interface {
	// PutBlob records that blob d of the given size is stored, or touches it
	// if already recorded. Callers call it before the blob's bytes become
	// visible (see package blob), so that garbage collection, which deletes
	// the record before the bytes, can never remove bytes just written.
	PutBlob(ctx context.Context, d digest.Digest, size int64) error
	// PutLinkedBlob is PutBlob followed by LinkBlob(repo), in one
	// transaction. ENOTFOUND if the repository's project does not exist.
	PutLinkedBlob(ctx context.Context, repo string, d digest.Digest, size int64) error
	// Blob returns the blob record, or ENOTFOUND.
	Blob(ctx context.Context, d digest.Digest) (*Blob, error)
	// LinkBlob makes blob d available in repo, creating the repository if
	// needed, and touches the blob. ENOTFOUND if the blob or the repository's
	// project does not exist.
	LinkBlob(ctx context.Context, repo string, d digest.Digest) error
	// LinkedBlob returns blob d if it is linked in repo, or ENOTFOUND.
	LinkedBlob(ctx context.Context, repo string, d digest.Digest) (*Blob, error)
	// UnlinkBlob removes the link of blob d from repo. ENOTFOUND if absent.
	UnlinkBlob(ctx context.Context, repo string, d digest.Digest) error
	// RepositoriesWithBlob lists up to limit repositories that link d.
	RepositoriesWithBlob(ctx context.Context, d digest.Digest, limit int) ([]string, error)
	// ManifestsWithBlob lists up to limit manifests of repo that reference
	// blob d (as a layer, a config or another blob descriptor), ordered by
	// digest; none when no manifest of repo does.
	ManifestsWithBlob(ctx context.Context, repo string, d digest.Digest, limit int) ([]digest.Digest, error)

	// PutManifest stores m in m.Repository (creating the repository if
	// needed) and points each of tags at it, atomically. The manifest's own
	// blob (m.Digest) must have been recorded with PutBlob. Every Required
	// reference must be linked in the repository (RefBlob) or stored in it
	// (RefManifest); otherwise nothing is stored and the error is EINVALID
	// with Detail "MANIFEST_BLOB_UNKNOWN" naming the missing digest.
	// ENOTFOUND if the project does not exist.
	PutManifest(ctx context.Context, m *Manifest, tags []string) error
	// Manifest returns manifest d of repo, or ENOTFOUND.
	Manifest(ctx context.Context, repo string, d digest.Digest) (*Manifest, error)
	// Tag returns the tag, or ENOTFOUND.
	Tag(ctx context.Context, repo, tag string) (*Tag, error)
	// Tags lists repo's tag names in lexical order. ENOTFOUND if the
	// repository does not exist.
	Tags(ctx context.Context, repo string, page Page) ([]string, error)
	// DeleteTag removes a tag. ENOTFOUND if absent.
	DeleteTag(ctx context.Context, repo, tag string) error
	// DeleteManifest removes manifest d and every tag pointing at it from
	// repo. ENOTFOUND if absent.
	DeleteManifest(ctx context.Context, repo string, d digest.Digest) error
	// Referrers lists the manifests in repo whose subject is d, optionally
	// only those of the given artifactType, ordered by digest.
	Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]Manifest, error)
	// Repository returns the named repository, or ENOTFOUND.
	Repository(ctx context.Context, name string) (*Repository, error)
	// DeleteRepository removes repository name with every tag, manifest
	// (referrers and signatures included), reference and blob link, in one
	// transaction, and says how many of each it removed. Blob records and
	// bytes are left to garbage collection (other repositories may share
	// them). A manifest pushed concurrently is either removed whole or
	// stored whole afterwards (in a new repository of that name, if its
	// blobs are linked there). ENOTFOUND if the repository does not exist.
	DeleteRepository(ctx context.Context, name string) (RepositoryDeletion, error)
	// Repositories lists repository names in lexical order; if project is not
	// "", only that project's.
	Repositories(ctx context.Context, project string, page Page) ([]string, error)

	// BlobStats returns how many blob records exist and their total size.
	BlobStats(ctx context.Context) (count, bytes int64, err error)

	// GCCandidates lists up to limit blobs that no manifest references, that
	// are not themselves a stored manifest, and that were last touched
	// before cutoff.
	GCCandidates(ctx context.Context, cutoff time.Time, limit int) ([]digest.Digest, error)
	// DeleteBlobIfUnused deletes blob d's record and links in one
	// transaction if d is still a GC candidate for cutoff; before committing
	// it calls removeBytes, and rolls back if that fails. It reports whether
	// the blob was deleted.
	DeleteBlobIfUnused(ctx context.Context, d digest.Digest, cutoff time.Time, removeBytes func() error) (bool, error)
}

// AuditFilter selects audit events. Zero fields match every event.
type AuditFilter struct {
	// Since and Until bound the events' Time: Since <= Time < Until.
	Since, Until time.Time
	// Actor and Project match exactly.
	Actor   string
	Project string
	// Action matches the action itself or any action it is a dotted
	// prefix of: "artifact" matches "artifact.push" but not "artifacts".
	Action string
	// Outcome matches exactly.
	Outcome audit.Outcome
	// Resource matches resources containing it (case-sensitive).
	Resource string
	// Before, if not 0, keeps events with ID < Before: pass the last ID of
	// a page to get the next (older) one.
	Before int64
	// N is the most events returned; 0 means no limit.
	N int
}

// AuditStore keeps the append-only, hash-chained audit trail (see package
// audit for the chain). Appends from any number of replicas form one chain.
type AuditStore interface {
	// AppendAudit normalizes events (audit.Normalize), stamps those without
	// a Time with the store's clock, and appends them in order in one
	// transaction, setting each one's ID (the head's ID + 1, so IDs have no
	// gaps), PrevHash and Hash. EINVALID, and nothing stored, if one fails
	// audit.Validate.
	AppendAudit(ctx context.Context, events []audit.Event) error
	// AuditEvents returns the events matching f, newest (highest ID) first.
	AuditEvents(ctx context.Context, f AuditFilter) ([]audit.Event, error)
	// ScanAudit calls fn with the chain's anchor and head and every stored
	// event in ID order, all read from one consistent snapshot; it returns
	// fn's error. Stored events it cannot read, or whose stored
	// description does not match them, are an *audit.BlockError in the
	// sequence (see audit.Scanner), which audit.Verify reports as a break.
	ScanAudit(ctx context.Context, fn func(c audit.Chain, events iter.Seq2[audit.Event, error]) error) error
	// PurgeAudit removes the longest run of oldest events whose Times are
	// all before the cutoff, moves the chain's anchor to the last one
	// removed, and appends by as an audit.PurgeAction event (details: the
	// cutoff, the count and the new anchor) in the same transaction, so the
	// remaining chain still verifies and the purge is on record. by names
	// the actor; the store fills Action, Resource, Outcome and Details, and
	// sets its ID and hashes. It returns how many events were removed.
	PurgeAudit(ctx context.Context, before time.Time, by *audit.Event) (int64, error)
}

// Store is everything a customs server keeps in its metadata database.
type Store interface {
	ProjectStore
	UserStore
	SessionStore
	GroupStore
	MemberStore
	RobotStore
	RegistryStore
	AuditStore
	VulnStore
	InventoryStore
	ScanJobStore
	ScanReportStore
	ScanSettingsStore
	LayerCacheStore
	PolicyStore
	SystemAllowlistStore
	WorkloadAuditStore
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}
