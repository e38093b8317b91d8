package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

var (
	_ store.ScanJobStore      = (*DB)(nil)
	_ store.ScanReportStore   = (*DB)(nil)
	_ store.ScanSettingsStore = (*DB)(nil)
	_ store.LayerCacheStore   = (*DB)(nil)
)

const scanJobColumns = `id, kind, subject, repository, cause, status, stage, attempts, last_error, owner,
	lease_until, run_after, queued_at, started_at, finished_at`

func scanJobRow(sc interface{ Scan(...any) error }) (*store.ScanJob, error) {
	j := &store.ScanJob{}
	err := sc.Scan(&j.ID, &j.Kind, &j.Subject, &j.Repository, &j.Trigger, &j.Status, &j.Stage, &j.Attempts,
		&j.LastError, &j.Owner, nullTime{&j.LeaseUntil}, timeScan{&j.RunAfter}, timeScan{&j.QueuedAt},
		nullTime{&j.StartedAt}, nullTime{&j.FinishedAt})
	return j, err
}

// EnqueueScanJob queues the job (j.Kind, j.Subject).
func (db *DB) EnqueueScanJob(ctx context.Context, j *store.ScanJob) (bool, error) {
	if j.Kind != store.ScanJobManifest && j.Kind != store.ScanJobRematch {
		return false, apperr.Errorf(apperr.EINVALID, "unknown scan job kind %q", j.Kind)
	}
	if j.Subject == "" {
		return false, apperr.Errorf(apperr.EINVALID, "scan job of kind %s has no subject", j.Kind)
	}
	now := db.ts(db.nowUTC())
	var queued bool
	var got *store.ScanJob
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO scan_jobs (kind, subject, repository, cause, status, run_after, queued_at)
			VALUES ($1, $2, $3, $4, 'queued', $5, $5)
			ON CONFLICT (kind, subject) DO UPDATE SET repository = excluded.repository, cause = excluded.cause,
			status = 'queued', stage = '', attempts = 0, owner = '', lease_until = NULL,
			run_after = excluded.run_after, queued_at = excluded.queued_at, finished_at = NULL
			WHERE scan_jobs.status IN ('done', 'failed', 'unsupported') RETURNING id`,
			j.Kind, j.Subject, j.Repository, j.Trigger, now).Scan(&id)
		switch {
		case err == nil:
			queued = true
		case errors.Is(err, sql.ErrNoRows):
			queued = false
		default:
			return err
		}
		got, err = scanJobRow(tx.QueryRowContext(ctx, `SELECT `+scanJobColumns+` FROM scan_jobs
			WHERE kind = $1 AND subject = $2`, j.Kind, j.Subject))
		return err
	})
	if err != nil {
		return false, err
	}
	*j = *got
	return queued, nil
}

// ClaimScanJob takes the next due job, or one whose lease expired.
func (db *DB) ClaimScanJob(ctx context.Context, owner string, lease time.Duration) (*store.ScanJob, error) {
	if owner == "" || lease <= 0 {
		return nil, apperr.Errorf(apperr.EINVALID, "claiming a scan job needs an owner and a positive lease (got %q, %s)", owner, lease)
	}
	nowT := db.nowUTC()
	now := db.ts(nowT)
	var got *store.ScanJob
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		got = nil
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM scan_jobs
			WHERE (status = 'queued' AND run_after <= $1) OR (status = 'running' AND lease_until < $1)
			ORDER BY run_after, id LIMIT 1`+db.d.lock("FOR UPDATE SKIP LOCKED"), now).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE scan_jobs SET status = 'running', owner = $1, lease_until = $2,
			attempts = attempts + 1, started_at = $3 WHERE id = $4`,
			owner, db.ts(nowT.Add(lease)), now, id); err != nil {
			return err
		}
		got, err = scanJobRow(tx.QueryRowContext(ctx, `SELECT `+scanJobColumns+` FROM scan_jobs WHERE id = $1`, id))
		return err
	})
	return got, err
}

// RenewScanJob extends owner's lease of job id and sets its stage.
func (db *DB) RenewScanJob(ctx context.Context, id int64, owner, stage string, lease time.Duration) error {
	until := db.ts(db.nowUTC().Add(lease))
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE scan_jobs SET lease_until = $1, stage = $2
			WHERE id = $3 AND owner = $4 AND status = 'running'`, until, stage, id, owner)
		if err != nil {
			return err
		}
		return mustAffect(res, apperr.Errorf(apperr.ECONFLICT, "scan job %d is no longer held by %s", id, owner))
	})
}

// FinishScanJob ends owner's run of job id.
func (db *DB) FinishScanJob(ctx context.Context, id int64, owner string, r store.ScanJobResult) error {
	now := db.ts(db.nowUTC())
	var query string
	var args []any
	switch r.Status {
	case store.ScanQueued:
		runAfter := r.RunAfter
		if runAfter.IsZero() {
			runAfter = db.nowUTC()
		}
		if r.Defer {
			query = `UPDATE scan_jobs SET status = 'queued', owner = '', lease_until = NULL, run_after = $1,
				attempts = attempts - 1 WHERE id = $2 AND owner = $3 AND status = 'running'`
			args = []any{db.ts(runAfter), id, owner}
		} else {
			query = `UPDATE scan_jobs SET status = 'queued', owner = '', lease_until = NULL, run_after = $1,
				last_error = $2, stage = '' WHERE id = $3 AND owner = $4 AND status = 'running'`
			args = []any{db.ts(runAfter), r.Error, id, owner}
		}
	case store.ScanDone, store.ScanFailed, store.ScanUnsupported:
		query = `UPDATE scan_jobs SET status = $1, owner = '', lease_until = NULL, last_error = $2, stage = '',
			finished_at = $3 WHERE id = $4 AND owner = $5 AND status = 'running'`
		args = []any{r.Status, r.Error, now, id, owner}
	default:
		return apperr.Errorf(apperr.EINVALID, "scan job %d cannot finish with status %q", id, r.Status)
	}
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		return mustAffect(res, apperr.Errorf(apperr.ECONFLICT, "scan job %d is no longer held by %s", id, owner))
	})
}

// ScanJob returns the job (kind, subject).
func (db *DB) ScanJob(ctx context.Context, kind, subject string) (*store.ScanJob, error) {
	j, err := scanJobRow(db.read.QueryRowContext(ctx, `SELECT `+scanJobColumns+` FROM scan_jobs
		WHERE kind = $1 AND subject = $2`, kind, subject))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "no %s scan job for %s", kind, subject)
	}
	if err != nil {
		return nil, db.wrap(err)
	}
	return j, nil
}

// ScanJobs lists jobs matching f.
func (db *DB) ScanJobs(ctx context.Context, f store.ScanJobFilter) ([]store.ScanJob, error) {
	n, err := limit(f.N)
	if err != nil {
		return nil, err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+scanJobColumns+` FROM scan_jobs
		WHERE ($1 = '' OR kind = $1) AND ($2 = '' OR status = $2)
		ORDER BY CASE WHEN status = 'running' THEN 0 ELSE 1 END, run_after, id LIMIT $3`, f.Kind, f.Status, n)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	out := []store.ScanJob{}
	for rows.Next() {
		j, err := scanJobRow(rows)
		if err != nil {
			return nil, db.wrap(err)
		}
		out = append(out, *j)
	}
	return out, db.wrap(rows.Err())
}

// ScanQueueStats counts the jobs per status.
func (db *DB) ScanQueueStats(ctx context.Context) (store.ScanQueueStats, error) {
	var st store.ScanQueueStats
	rows, err := db.read.QueryContext(ctx, `SELECT status, COUNT(*) FROM scan_jobs GROUP BY status`)
	if err != nil {
		return st, db.wrap(err)
	}
	defer rows.Close()
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			return st, db.wrap(err)
		}
		switch status {
		case store.ScanQueued:
			st.Queued = n
		case store.ScanRunning:
			st.Running = n
		case store.ScanDone:
			st.Done = n
		case store.ScanFailed:
			st.Failed = n
		case store.ScanUnsupported:
			st.Unsupported = n
		}
	}
	if err := rows.Err(); err != nil {
		return st, db.wrap(err)
	}
	err = db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM scan_jobs WHERE status = 'queued' AND run_after <= $1`,
		db.ts(db.nowUTC())).Scan(&st.Due)
	if err != nil {
		return st, db.wrap(err)
	}
	err = db.read.QueryRowContext(ctx, `SELECT MIN(queued_at) FROM scan_jobs WHERE status = 'queued'`).
		Scan(nullTime{&st.OldestQueued})
	return st, db.wrap(err)
}

// checkScanReport validates what PutScanReport is given.
func checkScanReport(r *store.ScanReport) error {
	if r.Digest == "" {
		return apperr.Errorf(apperr.EINVALID, "scan report has no digest")
	}
	switch r.Status {
	case store.ScanDone, store.ScanFailed, store.ScanUnsupported:
	default:
		return apperr.Errorf(apperr.EINVALID, "scan report of %s: status %q is not a final status", r.Digest, r.Status)
	}
	seen := make(map[string]bool, len(r.Findings))
	for _, f := range r.Findings {
		if f.Key == "" || f.AdvisoryID == "" {
			return apperr.Errorf(apperr.EINVALID, "scan report of %s: a finding has no key or advisory id", r.Digest)
		}
		if seen[f.Key] {
			return apperr.Errorf(apperr.EINVALID, "scan report of %s: two findings have the key %q", r.Digest, f.Key)
		}
		seen[f.Key] = true
	}
	return nil
}

// PutScanReport creates or replaces the report of r.Digest and its findings.
func (db *DB) PutScanReport(ctx context.Context, r *store.ScanReport) error {
	if err := checkScanReport(r); err != nil {
		return err
	}
	now := db.nowUTC()
	seenAt := r.MatchedAt
	if seenAt.IsZero() {
		seenAt = now
	}
	seenAt = seenAt.UTC().Truncate(time.Microsecond)
	data := r.Data
	if data == nil {
		data = []byte{}
	}
	c := r.Counts
	firsts := make([]time.Time, len(r.Findings))
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO scan_reports (digest, media_type, platform, status, reason,
			vuln_revision, scanned_at, matched_at, packages, count_critical, count_high, count_medium, count_low,
			count_none, count_unknown, data, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
			ON CONFLICT (digest) DO UPDATE SET media_type = excluded.media_type, platform = excluded.platform,
			status = excluded.status, reason = excluded.reason, vuln_revision = excluded.vuln_revision,
			scanned_at = excluded.scanned_at, matched_at = excluded.matched_at, packages = excluded.packages,
			count_critical = excluded.count_critical, count_high = excluded.count_high,
			count_medium = excluded.count_medium, count_low = excluded.count_low, count_none = excluded.count_none,
			count_unknown = excluded.count_unknown, data = excluded.data, updated_at = excluded.updated_at`,
			r.Digest, r.MediaType, r.Platform, r.Status, r.Reason, r.VulnRevision, db.tsOrNull(r.ScannedAt),
			db.tsOrNull(r.MatchedAt), r.Packages, c.Critical, c.High, c.Medium, c.Low, c.None, c.Unknown,
			data, db.ts(now)); err != nil {
			return err
		}
		old := map[string]time.Time{}
		rows, err := tx.QueryContext(ctx, `SELECT key, first_seen FROM scan_findings WHERE digest = $1`, r.Digest)
		if err != nil {
			return err
		}
		for rows.Next() {
			var k string
			var t time.Time
			if err := rows.Scan(&k, timeScan{&t}); err != nil {
				rows.Close()
				return err
			}
			old[k] = t
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM scan_findings WHERE digest = $1`, r.Digest); err != nil {
			return err
		}
		ins := db.newRowInserter(tx, `INSERT INTO scan_findings (digest, key, advisory_id, first_seen) VALUES `, "", 4)
		for i, f := range r.Findings {
			first, ok := old[f.Key]
			if !ok {
				first = seenAt
			}
			firsts[i] = first
			if err := ins.add(ctx, r.Digest, f.Key, f.AdvisoryID, db.ts(first)); err != nil {
				return err
			}
		}
		return ins.flush(ctx)
	})
	if err != nil {
		return err
	}
	for i := range r.Findings {
		r.Findings[i].FirstSeen = firsts[i]
	}
	r.UpdatedAt = now
	return nil
}

const scanSummaryColumns = `r.digest, r.media_type, r.platform, r.status, r.reason, r.vuln_revision, r.scanned_at,
	r.packages, r.count_critical, r.count_high, r.count_medium, r.count_low, r.count_none, r.count_unknown`

func scanSummaryDest(s *store.ScanReportSummary) []any {
	c := &s.Counts
	return []any{&s.Digest, &s.MediaType, &s.Platform, &s.Status, &s.Reason, &s.VulnRevision, nullTime{&s.ScannedAt},
		&s.Packages, &c.Critical, &c.High, &c.Medium, &c.Low, &c.None, &c.Unknown}
}

// ScanReport returns the report of digest with its findings.
func (db *DB) ScanReport(ctx context.Context, digest string) (*store.ScanReport, error) {
	r := &store.ScanReport{}
	c := &r.Counts
	err := db.read.QueryRowContext(ctx, `SELECT digest, media_type, platform, status, reason, vuln_revision,
		scanned_at, matched_at, packages, count_critical, count_high, count_medium, count_low, count_none,
		count_unknown, data, updated_at FROM scan_reports WHERE digest = $1`, digest).
		Scan(&r.Digest, &r.MediaType, &r.Platform, &r.Status, &r.Reason, &r.VulnRevision, nullTime{&r.ScannedAt},
			nullTime{&r.MatchedAt}, &r.Packages, &c.Critical, &c.High, &c.Medium, &c.Low, &c.None, &c.Unknown,
			&r.Data, timeScan{&r.UpdatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "no scan report of %s", digest)
	}
	if err != nil {
		return nil, db.wrap(err)
	}
	rows, err := db.read.QueryContext(ctx, `SELECT key, advisory_id, first_seen FROM scan_findings
		WHERE digest = $1 ORDER BY key`, digest)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	r.Findings = []store.ScanFinding{}
	for rows.Next() {
		var f store.ScanFinding
		if err := rows.Scan(&f.Key, &f.AdvisoryID, timeScan{&f.FirstSeen}); err != nil {
			return nil, db.wrap(err)
		}
		r.Findings = append(r.Findings, f)
	}
	return r, db.wrap(rows.Err())
}

// ScanReportSummaries returns the summaries of the reports of digests.
func (db *DB) ScanReportSummaries(ctx context.Context, digests []string) (map[string]store.ScanReportSummary, error) {
	out := make(map[string]store.ScanReportSummary, len(digests))
	for start := 0; start < len(digests); start += chunkSize {
		chunk := digests[start:min(start+chunkSize, len(digests))]
		args := make([]any, len(chunk))
		for i, d := range chunk {
			args[i] = d
		}
		rows, err := db.read.QueryContext(ctx, `SELECT `+scanSummaryColumns+` FROM scan_reports r
			WHERE r.digest IN (`+placeholders(1, len(chunk))+`)`, args...)
		if err != nil {
			return nil, db.wrap(err)
		}
		for rows.Next() {
			var s store.ScanReportSummary
			if err := rows.Scan(scanSummaryDest(&s)...); err != nil {
				rows.Close()
				return nil, db.wrap(err)
			}
			out[s.Digest] = s
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, db.wrap(err)
		}
	}
	return out, nil
}

// ScanReportsWithAdvisories returns the digests of reports with a finding
// of one of ids.
func (db *DB) ScanReportsWithAdvisories(ctx context.Context, ids []string) ([]string, error) {
	set := map[string]bool{}
	for start := 0; start < len(ids); start += chunkSize {
		chunk := ids[start:min(start+chunkSize, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		got, err := queryStrings(ctx, db.read, `SELECT DISTINCT digest FROM scan_findings
			WHERE advisory_id IN (`+placeholders(1, len(chunk))+`)`, args...)
		if err != nil {
			return nil, db.wrap(err)
		}
		for _, d := range got {
			set[d] = true
		}
	}
	out := make([]string, 0, len(set))
	for d := range set {
		out = append(out, d)
	}
	slices.Sort(out)
	return out, nil
}

// StaleScanReports returns digests of done reports matched below rev.
func (db *DB) StaleScanReports(ctx context.Context, rev int64, n int) ([]string, error) {
	lim, err := limit(n)
	if err != nil {
		return nil, err
	}
	out, err := queryStrings(ctx, db.read, `SELECT digest FROM scan_reports WHERE status = 'done' AND vuln_revision < $1
		ORDER BY digest LIMIT $2`, rev, lim)
	return out, db.wrap(err)
}

// AdvanceScanReports moves done reports current at [from, to) to to.
func (db *DB) AdvanceScanReports(ctx context.Context, from, to int64, savedBefore time.Time) (int64, error) {
	var n int64
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE scan_reports SET vuln_revision = $1
			WHERE status = 'done' AND vuln_revision >= $2 AND vuln_revision < $1 AND updated_at < $3`,
			to, from, db.ts(savedBefore))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// RematchedRevision returns the revision stored reports were matched up to.
func (db *DB) RematchedRevision(ctx context.Context) (int64, error) {
	var rev int64
	err := db.read.QueryRowContext(ctx, `SELECT rematched_revision FROM scan_state WHERE id = 1`).Scan(&rev)
	return rev, db.wrap(err)
}

// SetRematchedRevision moves the rematched revision from from to to.
func (db *DB) SetRematchedRevision(ctx context.Context, from, to int64) (bool, error) {
	var n int64
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE scan_state SET rematched_revision = $1 WHERE id = 1 AND rematched_revision = $2`, to, from)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n == 1, err
}

// TaggedScanReports lists repo's tags with their manifests' report summaries.
func (db *DB) TaggedScanReports(ctx context.Context, repo string) ([]store.TaggedScanReport, error) {
	if _, err := db.Repository(ctx, repo); err != nil {
		return nil, err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT t.name, t.digest, j.status, j.stage, j.attempts, j.last_error, `+scanSummaryColumns+`
		FROM tags t JOIN repositories p ON p.id = t.repository_id LEFT JOIN scan_reports r ON r.digest = t.digest
		LEFT JOIN scan_jobs j ON j.kind = 'manifest' AND j.subject = t.digest
		WHERE p.name = $1 ORDER BY t.name`, repo)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	out := []store.TaggedScanReport{}
	for rows.Next() {
		var tr store.TaggedScanReport
		var jobStatus, jobStage, jobError sql.NullString
		var jobAttempts sql.NullInt64
		s, ok, err := scanNullableSummary(rows, &tr.Tag, &tr.Digest, &jobStatus, &jobStage, &jobAttempts, &jobError)
		if err != nil {
			return nil, db.wrap(err)
		}
		if ok {
			tr.Report = &s
		}
		if jobStatus.Valid {
			tr.Job = &store.ScanJobState{Status: jobStatus.String, Stage: jobStage.String, Attempts: int(jobAttempts.Int64),
				LastError: jobError.String}
		}
		out = append(out, tr)
	}
	return out, db.wrap(rows.Err())
}

// scanNullableSummary scans leading columns into lead and then the
// summary columns of a LEFT JOINed report, which are all NULL when there
// is none (ok false).
func scanNullableSummary(rows *sql.Rows, lead ...any) (store.ScanReportSummary, bool, error) {
	var s store.ScanReportSummary
	var digest, mediaType, platform, status, reason sql.NullString
	var rev, pkgs, crit, high, med, low, none, unk sql.NullInt64
	dest := append(lead, &digest, &mediaType, &platform, &status, &reason, &rev, nullTime{&s.ScannedAt},
		&pkgs, &crit, &high, &med, &low, &none, &unk)
	if err := rows.Scan(dest...); err != nil {
		return s, false, err
	}
	if !digest.Valid {
		return s, false, nil
	}
	s.Digest, s.MediaType, s.Platform, s.Status, s.Reason = digest.String, mediaType.String, platform.String, status.String, reason.String
	s.VulnRevision, s.Packages = rev.Int64, int(pkgs.Int64)
	s.Counts = store.ScanCounts{Critical: int(crit.Int64), High: int(high.Int64), Medium: int(med.Int64),
		Low: int(low.Int64), None: int(none.Int64), Unknown: int(unk.Int64)}
	return s, true, nil
}

// ProjectScanReports returns the reports of the manifests tagged in project.
func (db *DB) ProjectScanReports(ctx context.Context, project string) ([]store.ScanReportSummary, int, error) {
	if _, err := db.Project(ctx, project); err != nil {
		return nil, 0, err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT d.digest, `+scanSummaryColumns+` FROM (
		SELECT DISTINCT t.digest FROM tags t JOIN repositories p ON p.id = t.repository_id
		JOIN projects pr ON pr.id = p.project_id WHERE pr.name = $1) d
		LEFT JOIN scan_reports r ON r.digest = d.digest ORDER BY d.digest`, project)
	if err != nil {
		return nil, 0, db.wrap(err)
	}
	defer rows.Close()
	out := []store.ScanReportSummary{}
	tagged := 0
	for rows.Next() {
		var d string
		s, ok, err := scanNullableSummary(rows, &d)
		if err != nil {
			return nil, 0, db.wrap(err)
		}
		tagged++
		if ok {
			out = append(out, s)
		}
	}
	return out, tagged, db.wrap(rows.Err())
}

// ManifestRepositories lists repositories that store manifest digest.
func (db *DB) ManifestRepositories(ctx context.Context, digest string, n int) ([]string, error) {
	lim, err := limit(n)
	if err != nil {
		return nil, err
	}
	out, err := queryStrings(ctx, db.read, `SELECT r.name FROM manifests m JOIN repositories r ON r.id = m.repository_id
		WHERE m.digest = $1 ORDER BY r.name LIMIT $2`, digest, lim)
	return out, db.wrap(err)
}

// IndexesOf lists the stored indexes that list manifest digest.
func (db *DB) IndexesOf(ctx context.Context, digest string) ([]store.ManifestRef, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT DISTINCT r.name, mr.manifest_digest FROM manifest_references mr
		JOIN repositories r ON r.id = mr.repository_id WHERE mr.digest = $1 AND mr.kind = 'manifest'
		ORDER BY r.name, mr.manifest_digest`, digest)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	out := []store.ManifestRef{}
	for rows.Next() {
		var m store.ManifestRef
		if err := rows.Scan(&m.Repository, &m.Digest); err != nil {
			return nil, db.wrap(err)
		}
		out = append(out, m)
	}
	return out, db.wrap(rows.Err())
}

// ScanSettings returns the project's scan settings.
func (db *DB) ScanSettings(ctx context.Context, project string) (store.ScanSettings, error) {
	var id int64
	var onPush, sbomReferrer sql.NullBool
	err := db.read.QueryRowContext(ctx, `SELECT p.id, s.scan_on_push, s.sbom_referrer FROM projects p
		LEFT JOIN project_scan_settings s ON s.project_id = p.id WHERE p.name = $1`, project).Scan(&id, &onPush, &sbomReferrer)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ScanSettings{}, apperr.Errorf(apperr.ENOTFOUND, "project %q not found", project)
	}
	if err != nil {
		return store.ScanSettings{}, db.wrap(err)
	}
	s := store.DefaultScanSettings()
	if onPush.Valid {
		s.ScanOnPush = onPush.Bool
	}
	if sbomReferrer.Valid {
		s.SBOMReferrer = sbomReferrer.Bool
	}
	return s, nil
}

// PutScanSettings saves the project's scan settings.
func (db *DB) PutScanSettings(ctx context.Context, project string, s store.ScanSettings) error {
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO project_scan_settings (project_id, scan_on_push, sbom_referrer)
			SELECT id, $2, $3 FROM projects WHERE name = $1
			ON CONFLICT (project_id) DO UPDATE SET scan_on_push = excluded.scan_on_push, sbom_referrer = excluded.sbom_referrer`,
			project, s.ScanOnPush, s.SBOMReferrer)
		if err != nil {
			return err
		}
		return mustAffect(res, apperr.Errorf(apperr.ENOTFOUND, "project %q not found", project))
	})
}

// LayerResult returns the layer result stored under (diffID, version).
func (db *DB) LayerResult(ctx context.Context, diffID, version string) ([]byte, bool, error) {
	var data []byte
	err := db.read.QueryRowContext(ctx, `SELECT data FROM layer_cache WHERE diff_id = $1 AND version = $2`,
		diffID, version).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, db.wrap(err)
	}
	return data, true, nil
}

// PutLayerResult stores a layer result.
func (db *DB) PutLayerResult(ctx context.Context, diffID, version string, data []byte) error {
	if diffID == "" || version == "" {
		return apperr.Errorf(apperr.EINVALID, "layer result needs a diffID and an extractor version (got %q, %q)", diffID, version)
	}
	if data == nil {
		data = []byte{}
	}
	now := db.ts(db.nowUTC())
	return db.inTx(ctx, true, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO layer_cache (diff_id, version, data, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (diff_id, version) DO UPDATE SET data = excluded.data, created_at = excluded.created_at`,
			diffID, version, data, now)
		return err
	})
}

// DeleteLayerResults removes the results of every extractor version but keep.
func (db *DB) DeleteLayerResults(ctx context.Context, keep string) (int64, error) {
	var n int64
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM layer_cache WHERE version <> $1`, keep)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// DeleteOrphanScanData removes reports, inventories and idle manifest jobs
// of digests no repository stores, in one transaction.
func (db *DB) DeleteOrphanScanData(ctx context.Context) (store.ScanCleanup, error) {
	var c store.ScanCleanup
	// NOT EXISTS reads the manifests_digest index once per row.
	gone := func(table, col string) string {
		return ` NOT EXISTS (SELECT 1 FROM manifests m WHERE m.digest = ` + table + `.` + col + `)`
	}
	err := db.inTx(ctx, true, func(tx *sql.Tx) error {
		c = store.ScanCleanup{}
		for _, d := range []struct {
			n     *int64
			query string
		}{
			// scan_findings rows go with their report (ON DELETE CASCADE),
			// inventory_packages with their inventory.
			{&c.Reports, `DELETE FROM scan_reports WHERE` + gone("scan_reports", "digest")},
			{&c.Inventories, `DELETE FROM inventories WHERE` + gone("inventories", "digest")},
			{&c.Jobs, `DELETE FROM scan_jobs WHERE kind = 'manifest' AND status <> 'running' AND` + gone("scan_jobs", "subject")},
		} {
			res, err := tx.ExecContext(ctx, d.query)
			if err != nil {
				return err
			}
			if *d.n, err = res.RowsAffected(); err != nil {
				return err
			}
		}
		return nil
	})
	return c, err
}
