package store

import (
	"context"
	"time"
)

// Kinds of scan jobs.
const (
	// ScanJobManifest inventories and matches one manifest (Subject is its
	// digest); for an image index it summarises the children.
	ScanJobManifest = "manifest"
	// ScanJobRematch matches stored inventories again after the
	// vulnerability database changed, reading no layer (Subject is
	// ScanRematchSubject: there is one such job).
	ScanJobRematch = "rematch"
)

// ScanRematchSubject is the Subject of the one ScanJobRematch job.
const ScanRematchSubject = "vulndb"

// Scan job and report statuses. Jobs are Queued, Running, then Done,
// Failed or Unsupported (final); reports hold a final status only.
const (
	ScanQueued      = "queued"
	ScanRunning     = "running"
	ScanDone        = "done"
	ScanFailed      = "failed"
	ScanUnsupported = "unsupported"
)

// ScanJob is one unit of scan work in the persistent queue. There is at
// most one job per (Kind, Subject): queueing it again while it is queued or
// running does nothing, and once it finished it is queued afresh.
type ScanJob struct {
	ID      int64
	Kind    string // ScanJobManifest or ScanJobRematch
	Subject string // the manifest digest, or ScanRematchSubject
	// Repository is a repository holding the manifest (where its metadata
	// is read); "" for a rematch.
	Repository string
	// Trigger says why the job was last queued ("push", "api", "index",
	// "vulndb").
	Trigger string
	Status  string
	// Stage says what a running job is doing ("reading layers",
	// "matching", "waiting for 2 platform scans"), for progress.
	Stage string
	// Attempts counts the runs of the current queueing (a claim is a run;
	// a deferral does not count).
	Attempts int
	// LastError is the error of the last failed run, "" if none.
	LastError string
	// Owner and LeaseUntil name the worker running the job and until when
	// its claim holds; a job whose lease expired is claimed again.
	Owner      string
	LeaseUntil time.Time
	// RunAfter is when a queued job becomes due (backoff of retries).
	RunAfter   time.Time
	QueuedAt   time.Time // when the job was last queued
	StartedAt  time.Time // when the current or last run began (zero: never)
	FinishedAt time.Time // when the last run ended finally (zero: not since queued)
}

// ScanJobResult ends a run of a job (see FinishScanJob).
type ScanJobResult struct {
	// Status is ScanDone, ScanFailed or ScanUnsupported to end the job,
	// or ScanQueued to run it again at RunAfter (a retry).
	Status string
	// Error is the run's failure, kept as LastError ("" for none).
	Error    string
	RunAfter time.Time
	// Defer, with ScanQueued, says the run was not an attempt (the job
	// waits for other work): Attempts is not counted, Stage is kept.
	Defer bool
}

// ScanJobFilter selects jobs for ScanJobs. Zero fields match all.
type ScanJobFilter struct {
	Kind   string
	Status string
	// N caps the number of jobs returned (0: no cap).
	N int
}

// ScanQueueStats counts jobs per status.
type ScanQueueStats struct {
	Queued, Running, Done, Failed, Unsupported int
	// Due counts the queued jobs whose RunAfter has passed.
	Due int
	// OldestQueued is when the longest-waiting queued job was queued
	// (zero if none).
	OldestQueued time.Time
}

// ScanJobStore is the persistent scan queue. Any number of workers on any
// number of replicas claim jobs; a claimed job is leased, and a job whose
// worker died is claimed again once its lease expires, so work is never
// lost and never run twice at once.
type ScanJobStore interface {
	// EnqueueScanJob queues the job (j.Kind, j.Subject) with j.Repository
	// and j.Trigger: it creates it, or queues a finished one again
	// (Attempts reset, RunAfter now), or leaves a queued or running one as
	// it is. It reports whether this call queued it, and sets j to the
	// stored job. EINVALID for an unknown kind or an empty subject.
	EnqueueScanJob(ctx context.Context, j *ScanJob) (bool, error)
	// ClaimScanJob takes the due job queued longest ago (by RunAfter, then
	// ID), or a running job whose lease expired: it becomes running, held
	// by owner until now+lease, with Attempts counted. It returns nil and
	// no error when no job is due.
	ClaimScanJob(ctx context.Context, owner string, lease time.Duration) (*ScanJob, error)
	// RenewScanJob extends owner's lease of running job id to now+lease
	// and sets its Stage. ECONFLICT if owner no longer holds it.
	RenewScanJob(ctx context.Context, id int64, owner, stage string, lease time.Duration) error
	// FinishScanJob ends owner's run of job id with r. ECONFLICT if owner
	// no longer holds it (its lease expired and another worker claimed
	// it), EINVALID for a bad status.
	FinishScanJob(ctx context.Context, id int64, owner string, r ScanJobResult) error
	// ScanJob returns the job (kind, subject), or ENOTFOUND.
	ScanJob(ctx context.Context, kind, subject string) (*ScanJob, error)
	// ScanJobs lists jobs matching f: running ones first, then by
	// RunAfter and ID.
	ScanJobs(ctx context.Context, f ScanJobFilter) ([]ScanJob, error)
	// ScanQueueStats counts the jobs per status.
	ScanQueueStats(ctx context.Context) (ScanQueueStats, error)
}

// ScanCounts are a report's findings per severity level.
type ScanCounts struct {
	Critical, High, Medium, Low, None, Unknown int
}

// ScanFinding identifies one finding of a report, for first-seen tracking
// and for finding the reports an advisory is in.
type ScanFinding struct {
	// Key identifies the finding within its report (advisory and
	// package); AdvisoryID is the advisory's id.
	Key        string
	AdvisoryID string
	// FirstSeen is when this finding was first stored on this digest; set
	// by the store.
	FirstSeen time.Time
}

// ScanReport is the stored scan report of one manifest digest.
type ScanReport struct {
	Digest    string
	MediaType string
	Platform  string
	// Status is ScanDone, ScanFailed or ScanUnsupported; Reason says why
	// for the last two.
	Status string
	Reason string
	// VulnRevision is the vulnerability database revision the findings
	// are current for.
	VulnRevision int64
	ScannedAt    time.Time
	MatchedAt    time.Time
	Packages     int
	Counts       ScanCounts
	// Data is the whole report as its producer encodes it (package
	// scan/report JSON); the store keeps it as it is.
	Data []byte
	// Findings are the report's findings; reads return them ordered by
	// Key, with FirstSeen.
	Findings  []ScanFinding
	UpdatedAt time.Time // set by the store
}

// ScanReportSummary is a report without its data, as listings show it.
type ScanReportSummary struct {
	Digest       string
	MediaType    string
	Platform     string
	Status       string
	Reason       string
	VulnRevision int64
	ScannedAt    time.Time
	Packages     int
	Counts       ScanCounts
}

// TaggedScanReport is a tag of a repository, the report of the manifest it
// points at (Report nil when that manifest has no report) and that
// manifest's scan job (Job nil when it has none).
type TaggedScanReport struct {
	Tag    string
	Digest string
	Report *ScanReportSummary
	Job    *ScanJobState
}

// ScanJobState is where a manifest's scan job stands, as listings show it.
type ScanJobState struct {
	Status    string // ScanQueued, ScanRunning or a final status
	Stage     string // what a running job is doing
	Attempts  int
	LastError string
}

// ScanReportStore keeps scan reports, one per manifest digest, with when
// each finding was first seen.
type ScanReportStore interface {
	// PutScanReport creates or replaces the report of r.Digest, in one
	// transaction with its findings: a finding whose Key the stored report
	// has keeps its FirstSeen, a new one is first seen at r.MatchedAt
	// (the store's clock if zero), and findings no longer listed are
	// forgotten. It sets r.UpdatedAt and each r.Findings[i].FirstSeen.
	// EINVALID if r has no digest, a bad status, or two findings share a
	// key.
	PutScanReport(ctx context.Context, r *ScanReport) error
	// ScanReport returns the report of digest with its findings, or
	// ENOTFOUND.
	ScanReport(ctx context.Context, digest string) (*ScanReport, error)
	// ScanReportData returns the report of digest without its findings
	// (Findings nil; Data carries them), in one read: what a policy
	// decision needs. ENOTFOUND if there is none.
	ScanReportData(ctx context.Context, digest string) (*ScanReport, error)
	// ScanReportSummaries returns the summaries of the reports of digests
	// that exist, by digest.
	ScanReportSummaries(ctx context.Context, digests []string) (map[string]ScanReportSummary, error)
	// ScanReportsWithAdvisories returns the digests of the reports having a
	// finding of one of the advisory ids, sorted.
	ScanReportsWithAdvisories(ctx context.Context, ids []string) ([]string, error)
	// StaleScanReports returns up to n digests (0: all) of done reports
	// whose VulnRevision is below rev, sorted.
	StaleScanReports(ctx context.Context, rev int64, n int) ([]string, error)
	// AdvanceScanReports sets the VulnRevision of every done report whose
	// revision is in [from, to) and that was stored before savedBefore to
	// to: their findings are current at to as well. It returns how many
	// changed.
	AdvanceScanReports(ctx context.Context, from, to int64, savedBefore time.Time) (int64, error)
	// RematchedRevision is the vulnerability database revision up to
	// which the stored reports were matched again (0 at first).
	RematchedRevision(ctx context.Context) (int64, error)
	// SetRematchedRevision moves it from from to to; it reports false, and
	// changes nothing, if it was not from.
	SetRematchedRevision(ctx context.Context, from, to int64) (bool, error)
	// TaggedScanReports lists repo's tags by name, each with the summary
	// of its manifest's report and the state of its manifest's scan job.
	// ENOTFOUND if the repository does not exist.
	TaggedScanReports(ctx context.Context, repo string) ([]TaggedScanReport, error)
	// ProjectScanReports returns the summaries of the reports of the
	// distinct manifests tagged in the project's repositories, and how
	// many tagged manifests there are. ENOTFOUND if the project does not
	// exist.
	ProjectScanReports(ctx context.Context, project string) ([]ScanReportSummary, int, error)
	// ManifestRepositories lists up to limit (0: all) repositories that
	// store manifest digest, by name.
	ManifestRepositories(ctx context.Context, digest string, limit int) ([]string, error)
	// IndexesOf lists the stored image indexes that list manifest digest
	// as a child, ordered by repository and digest.
	IndexesOf(ctx context.Context, digest string) ([]ManifestRef, error)
	// DeleteOrphanScanData removes what the scanner keeps about manifest
	// digests that no repository stores any more: their reports with
	// first-seen rows, their inventories (every platform), and their
	// manifest jobs that are not running (a running job ends on its own
	// and its late report is removed by the next call). A digest stored
	// again before the call commits keeps everything. Layer results are
	// not touched: they are keyed by layer, not manifest.
	DeleteOrphanScanData(ctx context.Context) (ScanCleanup, error)
}

// ScanCleanup counts what DeleteOrphanScanData removed.
type ScanCleanup struct {
	Reports, Inventories, Jobs int64
}

// ManifestRef names a manifest stored in a repository.
type ManifestRef struct {
	Repository string
	Digest     string
}

// ScanSettings are a project's scan settings.
type ScanSettings struct {
	// ScanOnPush scans every manifest pushed to the project (default on).
	ScanOnPush bool
	// SBOMReferrer stores, after each scan that reads an image's layers,
	// its SBOM as an OCI referrer of the image in the project's
	// repositories holding it (default off).
	SBOMReferrer bool
}

// DefaultScanSettings are the settings of a project that never set any.
func DefaultScanSettings() ScanSettings { return ScanSettings{ScanOnPush: true} }

// ScanSettingsStore keeps projects' scan settings.
type ScanSettingsStore interface {
	// ScanSettings returns the project's settings (DefaultScanSettings if
	// never set). ENOTFOUND if the project does not exist.
	ScanSettings(ctx context.Context, project string) (ScanSettings, error)
	// PutScanSettings saves the project's settings. ENOTFOUND if the
	// project does not exist.
	PutScanSettings(ctx context.Context, project string, s ScanSettings) error
}

// LayerCacheStore keeps the scanner's per-layer extraction results, keyed
// by layer diffID and extractor version, so that they survive restarts and
// are shared by replicas.
type LayerCacheStore interface {
	// LayerResult returns the result stored under (diffID, version); ok is
	// false when there is none.
	LayerResult(ctx context.Context, diffID, version string) (data []byte, ok bool, err error)
	// PutLayerResult stores data under (diffID, version), replacing what
	// was there. EINVALID if diffID or version is empty.
	PutLayerResult(ctx context.Context, diffID, version string, data []byte) error
	// DeleteLayerResults removes the results of every version but keep,
	// and returns how many it removed.
	DeleteLayerResults(ctx context.Context, keep string) (int64, error)
}
