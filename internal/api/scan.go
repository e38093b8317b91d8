package api

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/rbac"
	"github.com/customs-dev/customs/internal/scan"
	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/internal/store"
)

// Scanner is the scan service the API serves (scan.Scanner).
type Scanner interface {
	// Report returns the report of a manifest digest, or ENOTFOUND.
	Report(ctx context.Context, digest string) (*report.Report, error)
	// ReportWithInventory is Report with the inventory, for SBOMs.
	ReportWithInventory(ctx context.Context, digest string) (*report.Report, error)
	// Request queues a scan of manifest d of repo.
	Request(ctx context.Context, repo string, d digest.Digest, trigger string) (*store.ScanJob, error)
	// Queue describes the scan queue with up to limit jobs per status.
	Queue(ctx context.Context, limit int) (*scan.QueueStatus, error)
}

// ScanStore is what the scan endpoints read besides the scanner.
type ScanStore interface {
	store.ScanSettingsStore
	ManifestRepositories(ctx context.Context, digest string, limit int) ([]string, error)
	TaggedScanReports(ctx context.Context, repo string) ([]store.TaggedScanReport, error)
	ProjectScanReports(ctx context.Context, project string) ([]store.ScanReportSummary, int, error)
	Tag(ctx context.Context, repo, tag string) (*store.Tag, error)
}

// Audit action of on-demand scans.
const auditScan = "artifact.scan"

// maxScanRepos bounds the repositories looked at to decide whether a
// caller may read a digest's report.
const maxScanRepos = 200

func (h *handler) scanRoutes(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/scans", h.wrap(h.scanQueue))
	mux.Handle("GET /api/v1/scans/{digest}", h.wrap(h.scanReport))
	mux.Handle("GET /api/v1/scans/{digest}/sbom", h.wrap(h.scanSBOM))
	mux.Handle("GET /api/v1/projects/{name}/scans", h.wrap(h.projectScans))
	// {rest} is "<repository path>/scans" (GET) or
	// "<repository path>/manifests/<digest or tag>/scan" (POST): a
	// repository path has any number of segments.
	mux.Handle("GET /api/v1/projects/{name}/repositories/{rest...}", h.wrap(h.repositoryScans))
	mux.Handle("POST /api/v1/projects/{name}/repositories/{rest...}", h.wrap(h.requestScan))
}

// ScanJob is a scan job as the API shows it.
type ScanJob struct {
	Kind       string    `json:"kind"`
	Subject    string    `json:"subject"`
	Repository string    `json:"repository,omitempty"`
	Trigger    string    `json:"trigger,omitempty"`
	Status     string    `json:"status"`
	Stage      string    `json:"stage,omitempty"`
	Attempts   int       `json:"attempts"`
	LastError  string    `json:"lastError,omitempty"`
	Owner      string    `json:"owner,omitempty"`
	QueuedAt   time.Time `json:"queuedAt"`
	RunAfter   time.Time `json:"runAfter"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
}

func toScanJob(j store.ScanJob) ScanJob {
	return ScanJob{Kind: j.Kind, Subject: j.Subject, Repository: j.Repository, Trigger: j.Trigger, Status: j.Status,
		Stage: j.Stage, Attempts: j.Attempts, LastError: j.LastError, Owner: j.Owner, QueuedAt: j.QueuedAt,
		RunAfter: j.RunAfter, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt}
}

// ScanQueue is the answer of GET /api/v1/scans.
type ScanQueue struct {
	*scan.QueueStatus
	Jobs []ScanJob `json:"jobs"`
}

// scanQueue answers the queue's counts, running jobs with their stage,
// the next queued ones and recent failures (system administrators only).
func (h *handler) scanQueue(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := h.requireAdmin(r, p, "", ""); err != nil {
		return err
	}
	limit := 50
	if s := r.URL.Query().Get("n"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return apperr.Errorf(apperr.EINVALID, "query parameter n must be between 1 and 1000")
		}
		limit = n
	}
	q, err := h.opts.Scans.Queue(r.Context(), limit)
	if err != nil {
		return err
	}
	out := ScanQueue{QueueStatus: q, Jobs: []ScanJob{}}
	for _, j := range q.Jobs {
		out.Jobs = append(out.Jobs, toScanJob(j))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// digestParam returns the request's {digest}, validated.
func digestParam(r *http.Request) (digest.Digest, error) {
	d, err := digest.Parse(r.PathValue("digest"))
	if err != nil {
		return "", apperr.Errorf(apperr.EINVALID, "%q is not a digest (algorithm:hex)", r.PathValue("digest"))
	}
	return d, nil
}

// mayReadScan returns nil if p may read the scan report of d: a system
// administrator, or a caller who may pull or read scans in the project of
// a repository holding the manifest. Otherwise the report is "not found"
// (EUNAUTHORIZED for anonymous callers), so digests cannot be probed.
func (h *handler) mayReadScan(r *http.Request, p auth.Principal, d digest.Digest) error {
	if p.Admin && p.Kind != auth.KindAnonymous {
		return nil
	}
	repos, err := h.opts.ScanStore.ManifestRepositories(r.Context(), d.String(), maxScanRepos)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, repo := range repos {
		project, _, _ := strings.Cut(repo, "/")
		if seen[project] {
			continue
		}
		seen[project] = true
		may, err := h.opts.Auth.ProjectPermissions(r.Context(), p, project)
		if err != nil {
			return err
		}
		if may.Has(rbac.ActionReadScan) || may.Has(rbac.ActionPull) {
			return nil
		}
	}
	if p.Kind == auth.KindAnonymous {
		return apperr.Errorf(apperr.EUNAUTHORIZED, "authentication required")
	}
	return apperr.Errorf(apperr.ENOTFOUND, "%s has not been scanned", d)
}

// scanReport answers the report of a manifest digest.
func (h *handler) scanReport(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	d, err := digestParam(r)
	if err != nil {
		return err
	}
	if err := h.mayReadScan(r, p, d); err != nil {
		return err
	}
	rep, err := h.opts.Scans.Report(r.Context(), d.String())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// scanSBOM answers the inventory of an image manifest as a CycloneDX 1.6
// (default) or SPDX 2.3 JSON document, with its findings.
func (h *handler) scanSBOM(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	d, err := digestParam(r)
	if err != nil {
		return err
	}
	format := report.FormatCycloneDX
	contentType := "application/vnd.cyclonedx+json"
	switch f := r.URL.Query().Get("format"); f {
	case "", "cyclonedx":
	case "spdx":
		format, contentType = report.FormatSPDX, "application/spdx+json"
	default:
		return apperr.Errorf(apperr.EINVALID, "format %q is not one of cyclonedx, spdx", f)
	}
	if err := h.mayReadScan(r, p, d); err != nil {
		return err
	}
	rep, err := h.opts.Scans.ReportWithInventory(r.Context(), d.String())
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := report.Encode(&buf, rep, format, report.Options{ToolVersion: h.opts.Version}); err != nil {
		return apperr.Wrap(err, apperr.EINTERNAL, "encoding the SBOM")
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// ScanSummary is a report without its findings, as the per-repository and
// per-project summaries list them.
type ScanSummary struct {
	Digest         string        `json:"digest"`
	MediaType      string        `json:"mediaType,omitempty"`
	Platform       string        `json:"platform,omitempty"`
	Status         string        `json:"status"`
	Reason         string        `json:"reason,omitempty"`
	VulnDBRevision int64         `json:"vulndbRevision"`
	ScannedAt      time.Time     `json:"scannedAt,omitzero"`
	Packages       int           `json:"packages"`
	Counts         report.Counts `json:"counts"`
}

func toScanSummary(s store.ScanReportSummary) *ScanSummary {
	c := s.Counts
	return &ScanSummary{Digest: s.Digest, MediaType: s.MediaType, Platform: s.Platform, Status: s.Status, Reason: s.Reason,
		VulnDBRevision: s.VulnRevision, ScannedAt: s.ScannedAt, Packages: s.Packages,
		Counts: report.Counts{Critical: c.Critical, High: c.High, Medium: c.Medium, Low: c.Low, None: c.None, Unknown: c.Unknown}}
}

// TagScan is one tag of a repository, where the scan of its manifest
// stands now, and the manifest's last final report (nil when it has none).
type TagScan struct {
	Tag    string `json:"tag"`
	Digest string `json:"digest"`
	// Status is the current one: queued, running, done, failed,
	// unsupported, or unscanned (no report and no scan queued).
	Status string `json:"status"`
	// Stage is what a running scan is doing.
	Stage string `json:"stage,omitempty"`
	// Reason says why for failed and unsupported, or why a queued scan is
	// being retried.
	Reason string       `json:"reason,omitempty"`
	Report *ScanSummary `json:"report"`
}

// RepositoryScans is the answer of GET .../repositories/{repo}/scans.
type RepositoryScans struct {
	Repository string    `json:"repository"`
	Tags       []TagScan `json:"tags"`
}

// repositoryScans answers, per tag of a repository, the current status of
// its manifest's scan and its last report summary (rbac.ActionReadScan in
// the project).
func (h *handler) repositoryScans(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	rest, ok := strings.CutSuffix(r.PathValue("rest"), "/scans")
	if !ok || rest == "" {
		return apperr.Errorf(apperr.ENOTFOUND, "no API endpoint %s %s", r.Method, r.URL.Path)
	}
	pr, err := h.lookup(r, p)
	if err != nil {
		return err
	}
	if err := h.require(r, p, pr, rbac.ActionReadScan, "", ""); err != nil {
		return err
	}
	repo := pr.Name + "/" + rest
	tagged, err := h.opts.ScanStore.TaggedScanReports(r.Context(), repo)
	if err != nil {
		return err
	}
	out := RepositoryScans{Repository: repo, Tags: []TagScan{}}
	for _, t := range tagged {
		ts := TagScan{Tag: t.Tag, Digest: t.Digest}
		var reportStatus, reportReason string
		if t.Report != nil {
			ts.Report = toScanSummary(*t.Report)
			reportStatus, reportReason = t.Report.Status, t.Report.Reason
		}
		st := scan.CurrentStatus(reportStatus, reportReason, t.Job)
		ts.Status, ts.Stage, ts.Reason = st.Status, st.Stage, st.Reason
		out.Tags = append(out.Tags, ts)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// ProjectScans is the answer of GET /api/v1/projects/{name}/scans: over
// the distinct manifests tagged in the project, how many there are, how
// many have a report in each status, how many have findings of each
// severity (Vulnerable: critical or high), and the findings summed.
type ProjectScans struct {
	Project    string         `json:"project"`
	Manifests  int            `json:"manifests"`
	Scanned    int            `json:"scanned"`
	ByStatus   map[string]int `json:"byStatus"`
	Vulnerable int            `json:"vulnerable"`
	Findings   report.Counts  `json:"findings"`
	ScanOnPush bool           `json:"scanOnPush"`
}

// projectScans answers the project's scan counts (rbac.ActionReadScan).
func (h *handler) projectScans(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	pr, err := h.lookup(r, p)
	if err != nil {
		return err
	}
	if err := h.require(r, p, pr, rbac.ActionReadScan, "", ""); err != nil {
		return err
	}
	sums, tagged, err := h.opts.ScanStore.ProjectScanReports(r.Context(), pr.Name)
	if err != nil {
		return err
	}
	settings, err := h.opts.ScanStore.ScanSettings(r.Context(), pr.Name)
	if err != nil {
		return err
	}
	out := ProjectScans{Project: pr.Name, Manifests: tagged, Scanned: len(sums), ByStatus: map[string]int{}, ScanOnPush: settings.ScanOnPush}
	for _, s := range sums {
		out.ByStatus[s.Status]++
		c := toScanSummary(s).Counts
		out.Findings = out.Findings.Plus(c)
		if c.Critical+c.High > 0 {
			out.Vulnerable++
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// ScanRequested is the answer of a scan request: the job queued (or
// already queued or running).
type ScanRequested struct {
	Repository string  `json:"repository"`
	Digest     string  `json:"digest"`
	Job        ScanJob `json:"job"`
}

// requestScan queues a scan of .../repositories/{repo}/manifests/{ref}/scan,
// ref a digest or a tag (rbac.ActionScan in the project), and answers 202.
func (h *handler) requestScan(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	rest, ok := strings.CutSuffix(r.PathValue("rest"), "/scan")
	var repoPath, ref string
	if ok {
		repoPath, ref, ok = cutLast(rest, "/manifests/")
	}
	if !ok || repoPath == "" || ref == "" {
		return apperr.Errorf(apperr.ENOTFOUND, "no API endpoint %s %s", r.Method, r.URL.Path)
	}
	pr, err := h.lookup(r, p)
	if err != nil {
		return err
	}
	repo := pr.Name + "/" + repoPath
	resource := "repository:" + repo
	if err := h.require(r, p, pr, rbac.ActionScan, auditScan, resource); err != nil {
		return err
	}
	d, err := digest.Parse(ref)
	if err != nil {
		t, terr := h.opts.ScanStore.Tag(r.Context(), repo, ref)
		if terr != nil {
			if apperr.Is(terr, apperr.ENOTFOUND) {
				return apperr.Errorf(apperr.ENOTFOUND, "no manifest %q in repository %s", ref, repo)
			}
			return terr
		}
		d = t.Digest
	}
	j, err := h.opts.Scans.Request(r.Context(), repo, d, "api")
	if err != nil {
		if apperr.Is(err, apperr.ENOTFOUND) {
			return apperr.Errorf(apperr.ENOTFOUND, "no manifest %s in repository %s", d, repo)
		}
		return err
	}
	reqLogger(r, h).Info("scan requested", "repository", repo, "digest", d, "by", p.Name)
	h.audit(r, p, audit.Event{Action: auditScan, Resource: resource + "@" + d.String(), Project: pr.Name})
	writeJSON(w, http.StatusAccepted, ScanRequested{Repository: repo, Digest: d.String(), Job: toScanJob(*j)})
	return nil
}

// cutLast splits s around the last sep.
func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
