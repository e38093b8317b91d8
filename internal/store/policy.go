package store

import (
	"context"
	"time"
)

// PolicyDocument is one revision of a stored policy document (package
// policy parses and validates it; the store keeps the text as given).
type PolicyDocument struct {
	// Name is the policy's metadata.name, unique among stored policies.
	Name string
	// Project is the project the policy is scoped to when it is scoped to
	// exactly one project (its admins may change it), "" otherwise.
	Project string
	// Document is the policy as YAML.
	Document string
	// Revision is the global policy revision this version was made at:
	// every change to any policy takes the next number, so a document's
	// revisions increase but have gaps.
	Revision int64
	// Deleted is true for the history entry that records a deletion.
	Deleted   bool
	UpdatedBy string
	UpdatedAt time.Time
}

// PolicyStore keeps policy documents with their history, and the global
// policy revision: a number that every change (apply or delete) increases,
// so that a replica can tell its compiled policies are stale by comparing
// one number.
type PolicyStore interface {
	// PutPolicy stores doc as the newest version of doc.Name, taking the
	// next global revision, and sets doc.Revision and doc.UpdatedAt.
	// EINVALID if Name or Document is empty.
	PutPolicy(ctx context.Context, doc *PolicyDocument) error
	// ReplacePolicy is PutPolicy on condition that the current version of
	// doc.Name is at revision base (0: that the policy does not exist), for
	// read-modify-write changes such as allowlist edits; ECONFLICT, and
	// nothing stored, otherwise.
	ReplacePolicy(ctx context.Context, doc *PolicyDocument, base int64) error
	// Policy returns the current version of the named policy, or
	// ENOTFOUND.
	Policy(ctx context.Context, name string) (*PolicyDocument, error)
	// Policies lists the current versions ordered by name.
	Policies(ctx context.Context, page Page) ([]PolicyDocument, error)
	// DeletePolicy removes the named policy, records the deletion in its
	// history by user `by`, and returns the new global revision.
	// ENOTFOUND if missing.
	DeletePolicy(ctx context.Context, name, by string) (int64, error)
	// PolicyHistory returns every version of the named policy, deletions
	// included, newest first; ENOTFOUND if it never existed.
	PolicyHistory(ctx context.Context, name string) ([]PolicyDocument, error)
	// PolicyRevision returns the global policy revision (0 before any
	// change).
	PolicyRevision(ctx context.Context) (int64, error)
}

// AllowlistEntry is one entry of the system allowlist (Harbor's
// system-level CVE allowlist): an advisory allowed in every image whose
// policies let the system allowlist apply.
type AllowlistEntry struct {
	// ID is an advisory id or alias (CVE-2019-14697, GHSA-…), unique in
	// the list (compared case-insensitively by policies; stored as given).
	ID string
	// Package and Repository, when set, limit the entry to that package
	// and to images whose name matches that host-anchored glob.
	Package    string
	Repository string
	// Expires, when not zero, is when the entry stops applying.
	Expires time.Time
	Reason  string
	AddedBy string
	AddedAt time.Time
}

// SystemAllowlistStore keeps the system allowlist. Every change takes the
// next global policy revision (see PolicyStore), so decisions cached by
// that revision are made again.
type SystemAllowlistStore interface {
	// SystemAllowlist returns the entries ordered by ID (case-insensitive),
	// package and repository.
	SystemAllowlist(ctx context.Context) ([]AllowlistEntry, error)
	// PutSystemAllowlistEntry adds e, replacing the entry of the same
	// advisory (case-insensitively), package and repository; it sets
	// e.AddedAt and returns the new global policy revision. EINVALID if
	// e.ID is empty.
	PutSystemAllowlistEntry(ctx context.Context, e *AllowlistEntry) (int64, error)
	// DeleteSystemAllowlistEntries removes every entry of advisory id
	// (case-insensitively) and returns how many it removed and the new
	// global policy revision. ENOTFOUND if there is none.
	DeleteSystemAllowlistEntries(ctx context.Context, id string) (int, int64, error)
}
