package scan

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/vulndb/match"
)

// findingsOf turns matcher findings into report findings, one per key,
// sorted.
func findingsOf(ms []match.Finding) []report.Finding {
	out := make([]report.Finding, 0, len(ms))
	seen := make(map[string]bool, len(ms))
	for _, m := range ms {
		f := report.FromMatch(m)
		if k := f.Key(); !seen[k] {
			seen[k] = true
			out = append(out, f)
		}
	}
	report.SortFindings(out)
	return out
}

// countsOf converts report counts to the store's.
func countsOf(c report.Counts) store.ScanCounts {
	return store.ScanCounts{Critical: c.Critical, High: c.High, Medium: c.Medium, Low: c.Low, None: c.None, Unknown: c.Unknown}
}

// reportCounts converts the store's counts to a report's.
func reportCounts(c store.ScanCounts) report.Counts {
	return report.Counts{Critical: c.Critical, High: c.High, Medium: c.Medium, Low: c.Low, None: c.None, Unknown: c.Unknown}
}

// saveReport stores rep (a final status), counting its findings, and fills
// in each finding's FirstSeen from the store.
func (s *Scanner) saveReport(ctx context.Context, rep *report.Report) error {
	if rep.Findings == nil {
		rep.Findings = []report.Finding{}
	}
	rep.Counts = report.CountFindings(rep.Findings)
	keep := rep.Inventory
	rep.Inventory = nil
	for i := range rep.Findings {
		rep.Findings[i].FirstSeen = rep.Findings[i].FirstSeen.UTC()
	}
	data, err := json.Marshal(rep)
	rep.Inventory = keep
	if err != nil {
		return apperr.Wrap(err, apperr.EINTERNAL, "encoding the scan report of "+rep.Digest)
	}
	sr := &store.ScanReport{
		Digest: rep.Digest, MediaType: rep.MediaType, Platform: rep.Platform, Status: string(rep.Status), Reason: rep.Reason,
		VulnRevision: rep.VulnDBRevision, ScannedAt: rep.ScannedAt, MatchedAt: rep.MatchedAt, Packages: rep.Packages,
		Counts: countsOf(rep.Counts), Data: data,
	}
	sr.Findings = make([]store.ScanFinding, len(rep.Findings))
	for i := range rep.Findings {
		sr.Findings[i] = store.ScanFinding{Key: rep.Findings[i].Key(), AdvisoryID: rep.Findings[i].AdvisoryID}
	}
	if err := s.st.PutScanReport(ctx, sr); err != nil {
		return err
	}
	for i := range rep.Findings {
		rep.Findings[i].FirstSeen = sr.Findings[i].FirstSeen
	}
	return nil
}

// decodeReport turns a stored report into a Report: its data, with the
// columns the store keeps current (status, revision, times) and the
// findings' FirstSeen.
func decodeReport(sr *store.ScanReport) (*report.Report, error) {
	rep := &report.Report{}
	if len(sr.Data) > 0 {
		if err := json.Unmarshal(sr.Data, rep); err != nil {
			return nil, apperr.Wrap(err, apperr.EINTERNAL, "stored scan report of "+sr.Digest+" is corrupt")
		}
	}
	rep.Digest, rep.MediaType, rep.Platform = sr.Digest, sr.MediaType, sr.Platform
	rep.Status, rep.Reason = report.Status(sr.Status), sr.Reason
	rep.VulnDBRevision, rep.ScannedAt, rep.MatchedAt, rep.Packages = sr.VulnRevision, sr.ScannedAt, sr.MatchedAt, sr.Packages
	rep.Counts = reportCounts(sr.Counts)
	first := make(map[string]store.ScanFinding, len(sr.Findings))
	for _, f := range sr.Findings {
		first[f.Key] = f
	}
	if rep.Findings == nil {
		rep.Findings = []report.Finding{}
	}
	for i := range rep.Findings {
		if f, ok := first[rep.Findings[i].Key()]; ok {
			rep.Findings[i].FirstSeen = f.FirstSeen
		}
	}
	return rep, nil
}

// writeFailure stores a failed or unsupported report of digest, keeping
// the findings of an earlier report of it.
func (s *Scanner) writeFailure(ctx context.Context, digest, status, reason string) error {
	rep := &report.Report{Digest: digest}
	sr, err := s.st.ScanReport(ctx, digest)
	switch {
	case err == nil:
		if rep, err = decodeReport(sr); err != nil {
			return err
		}
	case !apperr.Is(err, apperr.ENOTFOUND):
		return err
	}
	rep.Status, rep.Reason = report.Status(status), reason
	return s.saveReport(ctx, rep)
}

// Report returns the report of manifest digest. While a scan of it is
// queued or running, the status says so and the findings are the previous
// scan's (none before the first). ENOTFOUND if the digest was never
// scanned nor queued.
func (s *Scanner) Report(ctx context.Context, digest string) (*report.Report, error) {
	sr, err := s.st.ScanReport(ctx, digest)
	if err != nil && !apperr.Is(err, apperr.ENOTFOUND) {
		return nil, err
	}
	job, jerr := s.st.ScanJob(ctx, store.ScanJobManifest, digest)
	if jerr != nil && !apperr.Is(jerr, apperr.ENOTFOUND) {
		return nil, jerr
	}
	var rep *report.Report
	switch {
	case sr != nil:
		if rep, err = decodeReport(sr); err != nil {
			return nil, err
		}
	case job != nil:
		// No report yet, or none written (the manifest was gone).
		rep = &report.Report{Digest: digest, Findings: []report.Finding{}}
	default:
		return nil, apperr.Errorf(apperr.ENOTFOUND, "%s has not been scanned", digest)
	}
	if job != nil {
		st := CurrentStatus(string(rep.Status), rep.Reason, &store.ScanJobState{Status: job.Status, Stage: job.Stage,
			Attempts: job.Attempts, LastError: job.LastError})
		rep.Status, rep.Reason = report.Status(st.Status), st.Reason
	}
	return rep, nil
}

// Status is where the scan of a manifest stands now.
type Status struct {
	// Status is queued, running, done, failed or unsupported, or
	// StatusUnscanned when there is neither a report nor a job.
	Status string
	// Stage is what a running scan is doing ("reading 3 layers").
	Stage string
	// Reason says why for failed and unsupported, or, for a queued scan
	// whose last run failed, "retrying after: <error>".
	Reason string
}

// StatusUnscanned is the Status of a manifest with neither a report nor
// a scan job.
const StatusUnscanned = "unscanned"

// CurrentStatus combines a manifest's last final report status and reason
// (reportStatus "" when it has no report) with its scan job (nil when none):
// a queued or running job is the current status; otherwise the report's;
// otherwise the job's final status (a scan that ended without a report).
func CurrentStatus(reportStatus, reportReason string, job *store.ScanJobState) Status {
	if job != nil && (job.Status == store.ScanQueued || job.Status == store.ScanRunning) {
		st := Status{Status: job.Status}
		if job.Status == store.ScanRunning {
			st.Stage = job.Stage
		} else if job.LastError != "" {
			st.Reason = "retrying after: " + job.LastError
		}
		return st
	}
	switch {
	case reportStatus != "":
		return Status{Status: reportStatus, Reason: reportReason}
	case job != nil:
		return Status{Status: job.Status, Reason: job.LastError}
	}
	return Status{Status: StatusUnscanned}
}

// ReportWithInventory is Report with the stored inventory of an image
// manifest filled in (for SBOMs). EINVALID for an image index (its
// platform manifests each have one), ENOTFOUND when no inventory is
// stored yet.
func (s *Scanner) ReportWithInventory(ctx context.Context, digest string) (*report.Report, error) {
	rep, err := s.Report(ctx, digest)
	if err != nil {
		return nil, err
	}
	if isIndex(rep.MediaType) {
		return nil, apperr.Errorf(apperr.EINVALID, "%s is an image index; ask for the SBOM of one of its platform manifests", digest)
	}
	inv, err := s.st.Inventory(ctx, store.InventoryKey{Digest: digest, Platform: rep.Platform})
	if err != nil {
		if apperr.Is(err, apperr.ENOTFOUND) {
			return nil, apperr.Errorf(apperr.ENOTFOUND, "%s has no inventory yet (status %s)", digest, rep.Status)
		}
		return nil, err
	}
	rep.Inventory = &inv.Inventory
	return rep, nil
}

// refreshIndexes queues the summary of every scanned image index listing
// manifest digest again, since that manifest's report changed.
func (s *Scanner) refreshIndexes(ctx context.Context, digest string) {
	parents, err := s.st.IndexesOf(ctx, digest)
	if err != nil {
		s.log.Warn("scan: finding the indexes of a manifest failed", "digest", digest, "err", err)
		return
	}
	for _, p := range parents {
		if _, err := s.st.ScanReport(ctx, p.Digest); err != nil {
			continue // never summarised: nothing to refresh
		}
		j := &store.ScanJob{Kind: store.ScanJobManifest, Subject: p.Digest, Repository: p.Repository, Trigger: "platform rescanned"}
		if _, err := s.st.EnqueueScanJob(ctx, j); err != nil {
			s.log.Warn("scan: queueing an index summary failed", "index", p.Digest, "err", err)
		}
	}
}

// QueueStatus is the state of the scan queue.
type QueueStatus struct {
	Queued      int `json:"queued"`
	Due         int `json:"due"`
	Running     int `json:"running"`
	Done        int `json:"done"`
	Failed      int `json:"failed"`
	Unsupported int `json:"unsupported"`
	// VulnDBRevision is the database's revision; RematchedRevision the one
	// stored reports were last matched up to.
	VulnDBRevision    int64 `json:"vulndbRevision"`
	RematchedRevision int64 `json:"rematchedRevision"`
	// Jobs are the running jobs, then the next queued ones, then the most
	// recent failures (up to limit each).
	Jobs []store.ScanJob `json:"-"`
}

// Queue returns the queue's counts and up to limit jobs of each of the
// running, queued and failed statuses.
func (s *Scanner) Queue(ctx context.Context, limit int) (*QueueStatus, error) {
	st, err := s.st.ScanQueueStats(ctx)
	if err != nil {
		return nil, err
	}
	vs, err := s.st.VulnState(ctx)
	if err != nil {
		return nil, err
	}
	rm, err := s.st.RematchedRevision(ctx)
	if err != nil {
		return nil, err
	}
	q := &QueueStatus{Queued: st.Queued, Due: st.Due, Running: st.Running, Done: st.Done, Failed: st.Failed,
		Unsupported: st.Unsupported, VulnDBRevision: vs.Revision, RematchedRevision: rm, Jobs: []store.ScanJob{}}
	for _, status := range []string{store.ScanRunning, store.ScanQueued, store.ScanFailed} {
		js, err := s.st.ScanJobs(ctx, store.ScanJobFilter{Status: status, N: limit})
		if err != nil {
			return nil, fmt.Errorf("listing %s scan jobs: %w", status, err)
		}
		q.Jobs = append(q.Jobs, js...)
	}
	return q, nil
}
