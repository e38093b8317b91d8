package store

import (
	"context"
	"errors"
	"time"

	"github.com/customs-dev/customs/internal/inventory"
)

// Kinds of vulnerability records.
const (
	// VulnOSV is an OSV advisory; its Data is the record as JSON.
	VulnOSV = "osv"
	// VulnCVE is one CVE's severity rating read from a CVE feed (NVD CVE
	// API 2.0 or CVE JSON 5); its Data is the rating as JSON.
	VulnCVE = "cve"
	// VulnOverride names an operator's severity override in the change log
	// (see VulnChange); overrides are not records.
	VulnOverride = "override"
)

// VulnKey identifies a record within its source.
type VulnKey struct {
	Kind string // VulnOSV or VulnCVE
	ID   string // the advisory or CVE id
}

// VulnRecord is one record of a vulnerability source. The same advisory id
// may be held by several sources (the Alpine exports each hold their
// release's part of ALPINE-CVE-2019-14697); each source owns its copy.
type VulnRecord struct {
	Kind string
	ID   string
	// Hash identifies the record's content as read from its source (the
	// importer hashes the bytes); an import writes a record only when its
	// hash changed.
	Hash string
	// Modified is the record's own modification time (zero if it has none).
	Modified time.Time
	// Ecosystems are the OSV ecosystems the record affects packages of,
	// as the importer names them (for counts); empty for CVE ratings.
	Ecosystems []string
	// Data is the record's content (see VulnOSV and VulnCVE).
	Data []byte
	// Source names the source holding the record; set by reads.
	Source string
	// Revision is the database revision that wrote this content; set by
	// the store.
	Revision int64
}

// VulnSource is a place vulnerability records are imported from (an OSV
// all.zip export, a directory, a URL) and what the last imports of it did.
type VulnSource struct {
	Name     string
	Location string
	// ETag and LastModified are the HTTP validators of the last successful
	// download of a URL source, sent with the next conditional request.
	ETag         string
	LastModified string
	// LastAttempt is when the last import of the source ended, successful
	// or not; LastSuccess when the last successful one did. Zero if never.
	LastAttempt time.Time
	LastSuccess time.Time
	// LastError is the last attempt's failure, "" if it succeeded.
	LastError string
	// Revision is the last database revision an import of the source
	// changed something in (0 if none).
	Revision int64
	// Records counts the records the source holds (OSV and CVE).
	Records int
}

// VulnImport is one successful read of a source: the whole set of records
// it holds now, by key and hash, and the content of those that may have
// changed.
type VulnImport struct {
	Source       string
	Location     string
	ETag         string
	LastModified string
	// Seen holds every record the source holds now (its full export), key
	// to hash. A stored record of the source missing from Seen is removed.
	// A hash of "" keeps the stored record as it is (the importer could not
	// read the record this time and skipped it).
	Seen map[VulnKey]string
	// Records holds the content of every record of Seen whose hash may
	// differ from the stored one (at least those; more are harmless).
	Records []VulnRecord
}

// VulnImportResult says what an import changed.
type VulnImportResult struct {
	Added, Updated, Removed int
	// Revision is the database revision after the import: a new one if it
	// changed anything, the previous one otherwise.
	Revision int64
}

// Changed reports whether the import changed any record.
func (r VulnImportResult) Changed() bool { return r.Added+r.Updated+r.Removed > 0 }

// VulnAttempt records an import attempt that changed no records: a failure
// (Err set) or an unchanged download (HTTP 304).
type VulnAttempt struct {
	Source   string
	Location string
	// Err is the failure; "" records a successful attempt.
	Err string
}

// VulnState is the vulnerability database's revision and when it changed.
type VulnState struct {
	// Revision grows by one with every import or override change that
	// changed something; 0 for an empty database.
	Revision int64
	// UpdatedAt is when Revision last changed (zero if never).
	UpdatedAt time.Time
	// PrunedThrough is the newest revision whose changes were pruned from
	// the change log (0 if none were): VulnChangesSince answers for
	// revisions at least this one.
	PrunedThrough int64
}

// ErrVulnChangesPruned is wrapped by the error of VulnChangesSince for a
// revision whose later changes are no longer all in the change log; the
// caller has to compare everything again instead.
var ErrVulnChangesPruned = errors.New("the vulnerability change log no longer reaches back to this revision")

// VulnImportRun is an import under way as the database records it: the
// lease one process holds on a source while importing it, and the
// import's progress, so that every replica can show it.
type VulnImportRun struct {
	Source   string
	Location string
	// Owner names the process holding the lease (host-pid-random).
	Owner string
	// Started is when the lease was claimed, UpdatedAt when it was last
	// renewed, LeaseUntil when it expires unless renewed again: after that
	// the import counts as dead and another process may claim the source.
	// Set by the store.
	Started, UpdatedAt, LeaseUntil time.Time
	// Phase is what the import does now ("downloading", "reading",
	// "writing"); Bytes counts the bytes downloaded, Read the records read,
	// Changed those new or changed, Errors the bad ones.
	Phase   string
	Bytes   int64
	Read    int64
	Changed int64
	Errors  int64
}

// VulnChange is one record or override that a revision changed (added,
// updated or removed).
type VulnChange struct {
	Revision int64
	Kind     string // VulnOSV, VulnCVE or VulnOverride
	ID       string
}

// VulnCounts counts distinct record ids over all sources.
type VulnCounts struct {
	// Ecosystems maps each ecosystem name found in the OSV records'
	// Ecosystems to how many distinct advisory ids name it.
	Ecosystems map[string]int
	// Advisories counts distinct OSV ids, CVEs distinct rated CVE ids.
	Advisories, CVEs int
}

// VulnOverrideRule is an operator's severity for an advisory or CVE id,
// which beats every other rating of the advisories it names.
type VulnOverrideRule struct {
	ID string // advisory id ("GHSA-…", "ALPINE-CVE-…") or alias ("CVE-…")
	// Level is a severity level name (package vulndb/severity); stores keep
	// it as given.
	Level     string
	Reason    string
	CreatedBy string
	// CreatedAt and Revision are set by the store.
	CreatedAt time.Time
	Revision  int64
}

// VulnStore keeps the vulnerability database: records per source, the
// revision, the change log and operator overrides.
type VulnStore interface {
	// VulnState returns the current revision; it is cheap (one row).
	VulnState(ctx context.Context) (VulnState, error)
	// VulnSources lists the sources ever imported, ordered by name.
	VulnSources(ctx context.Context) ([]VulnSource, error)
	// VulnHashes returns the hashes of source's stored records (none for
	// an unknown source).
	VulnHashes(ctx context.Context, source string) (map[VulnKey]string, error)
	// ImportVulns applies imp in one transaction: the source (created if
	// new, its Location updated) gets the records of imp.Records whose hash
	// differs from the stored one, loses the stored records missing from
	// imp.Seen, and records a successful attempt with imp's validators. If
	// anything changed, the revision grows by one and each changed key is
	// logged under it. EINVALID (nothing written) if a record of Seen needs
	// writing but is not in Records, or a record is malformed.
	ImportVulns(ctx context.Context, imp *VulnImport) (VulnImportResult, error)
	// RecordVulnAttempt records an attempt that changed no record (creating
	// the source if new): with Err set, a failure that leaves the source's
	// records and validators alone; otherwise a success.
	RecordVulnAttempt(ctx context.Context, a VulnAttempt) error
	// DeleteVulnSource removes a source and its records, bumping the
	// revision if it held any. ENOTFOUND if there is no such source.
	DeleteVulnSource(ctx context.Context, name string) (VulnImportResult, error)
	// ScanVulnRecords calls fn with every stored record of every source, in
	// (kind, id, source) order, read from one snapshot, and returns that
	// snapshot's revision; it stops at fn's first error and returns it.
	ScanVulnRecords(ctx context.Context, fn func(VulnRecord) error) (int64, error)
	// VulnRecords returns every source's copy of the record (kind, id),
	// ordered by source name; none if no source holds it.
	VulnRecords(ctx context.Context, kind, id string) ([]VulnRecord, error)
	// VulnChangesSince lists the changes of revisions after rev, in
	// revision order. If changes after rev were pruned (rev is older than
	// VulnState.PrunedThrough) it fails with ECONFLICT wrapping
	// ErrVulnChangesPruned.
	VulnChangesSince(ctx context.Context, rev int64) ([]VulnChange, error)
	// PruneVulnChanges removes from the change log the changes of every
	// revision made before the given time (and of the revisions before
	// those), and returns VulnState.PrunedThrough after it.
	PruneVulnChanges(ctx context.Context, before time.Time) (int64, error)
	// ClaimVulnImport claims the lease of run.Source for run.Owner until
	// now+lease, recording run's location and progress, unless another
	// owner holds an unexpired lease of it: then it returns that holder's
	// run and claims nothing. On success it returns nil and sets run's
	// Started, UpdatedAt and LeaseUntil. An owner may claim a source it
	// holds again (renewing it). EINVALID if Source or Owner is empty or
	// lease is not positive.
	ClaimVulnImport(ctx context.Context, run *VulnImportRun, lease time.Duration) (*VulnImportRun, error)
	// RenewVulnImport records run's progress and extends run.Owner's lease
	// of run.Source to now+lease (setting run's UpdatedAt and LeaseUntil).
	// ECONFLICT if the owner no longer holds the lease (released, or
	// expired and claimed by another).
	RenewVulnImport(ctx context.Context, run *VulnImportRun, lease time.Duration) error
	// ReleaseVulnImport ends owner's lease of source; it does nothing if
	// owner does not hold it.
	ReleaseVulnImport(ctx context.Context, source, owner string) error
	// VulnImports lists the imports whose lease has not expired, ordered
	// by source; expired ones are dead and left out.
	VulnImports(ctx context.Context) ([]VulnImportRun, error)
	// VulnCounts counts the distinct ids of the stored records.
	VulnCounts(ctx context.Context) (VulnCounts, error)
	// PutVulnOverride creates or replaces the override of o.ID, sets its
	// CreatedAt and Revision, bumps the revision and logs the change.
	// EINVALID if ID, Level or CreatedBy is empty.
	PutVulnOverride(ctx context.Context, o *VulnOverrideRule) error
	// VulnOverrides lists the overrides ordered by id.
	VulnOverrides(ctx context.Context) ([]VulnOverrideRule, error)
	// DeleteVulnOverride removes the override of id, bumps the revision
	// and logs the change; it returns the new revision. ENOTFOUND if
	// absent.
	DeleteVulnOverride(ctx context.Context, id string) (int64, error)
}

// InventoryKey identifies a stored inventory: the scanner keys an image's
// inventory by its manifest digest and the platform its config names
// ("linux/amd64"; "" when it names none), so a digest has one key whether
// it was pushed alone or in an index.
type InventoryKey struct {
	Digest   string
	Platform string
}

// StoredInventory is an inventory as kept by an InventoryStore.
type StoredInventory struct {
	Key       InventoryKey
	Inventory inventory.Inventory
	UpdatedAt time.Time
}

// PackageKey names a package as advisories do: base ecosystem and name.
type PackageKey struct {
	Ecosystem string
	Name      string
}

// LookupFunc returns the name a package is looked up by: the name
// advisories know it by, which for OS packages may be the source package's
// (package vulndb passes match.KeyOf's). "" means the package is never
// looked up.
type LookupFunc func(p inventory.Package) string

// InventoryPackage is a stored package found by InventoryPackages. Its
// Package carries Ecosystem, Name, Version, SourceName and SourceVersion
// only; Position is its index in the inventory's Packages.
type InventoryPackage struct {
	InventoryID int64
	Position    int
	Package     inventory.Package
}

// InventoryRef is what reverse matching needs of a stored inventory
// besides its packages.
type InventoryRef struct {
	ID     int64
	Key    InventoryKey
	Distro *inventory.Distro // nil when the inventory has none
}

// InventoryStore keeps the inventories of scanned images, so that a changed
// advisory is matched against them without reading a layer.
type InventoryStore interface {
	// PutInventory creates or replaces the inventory under key. lookup
	// gives the name each package is found by (InventoryPackages), "" for
	// none; nil means every package's own name. EINVALID if key.Digest is
	// empty or a package lacks an ecosystem or a name.
	PutInventory(ctx context.Context, key InventoryKey, inv *inventory.Inventory, lookup LookupFunc) error
	// Inventory returns the inventory under key, or ENOTFOUND.
	Inventory(ctx context.Context, key InventoryKey) (*StoredInventory, error)
	// DeleteInventory removes the inventory under key. ENOTFOUND if absent.
	DeleteInventory(ctx context.Context, key InventoryKey) error
	// InventoryPackages calls fn for every stored package whose ecosystem
	// and lookup name (see PutInventory) are one of keys, each package
	// once; it stops at fn's first error and returns it.
	InventoryPackages(ctx context.Context, keys []PackageKey, fn func(InventoryPackage) error) error
	// InventoryRefs returns the keys and distros of the inventories with
	// the given ids (ids that do not exist are left out).
	InventoryRefs(ctx context.Context, ids []int64) (map[int64]InventoryRef, error)
	// InventoryCount returns how many inventories are stored.
	InventoryCount(ctx context.Context) (int64, error)
}
