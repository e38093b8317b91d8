package scan

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/vulndb"
)

// runRematch brings the stored reports up to the vulnerability database's
// current revision without reading a layer: the reports of the inventories
// the changes since the last rematch affect, of the reports holding a
// finding of a changed advisory (it may no longer apply), and of reports
// matched at an older revision are matched again from their stored
// inventories; the other done reports are current at the new revision as
// they are.
func (s *Scanner) runRematch(ctx context.Context, stage func(string)) outcome {
	since, err := s.st.RematchedRevision(ctx)
	if err != nil {
		return retry(err)
	}
	start := s.now()
	stage(fmt.Sprintf("finding inventories affected since revision %d", since))
	res, err := s.vdb.AffectedSince(ctx, since)
	everything := false
	if errors.Is(err, vulndb.ErrTooOld) {
		// The change log no longer reaches back to since (the workers
		// were off longer than vulndb.changeLogRetention): nothing can
		// say which reports the changes touched, so every done report
		// is matched again at the current revision.
		cur, merr := s.vdb.Match(ctx, &inventory.Inventory{})
		if merr != nil {
			return retry(merr)
		}
		s.log.Warn("scan: the vulnerability database's change log no longer reaches the last re-matched revision; re-matching every report",
			"from_revision", since, "to_revision", cur.Revision)
		res = &vulndb.AffectedSinceResult{AffectedResult: vulndb.AffectedResult{Revision: cur.Revision}, Since: since}
		everything, err = true, nil
	}
	if err != nil {
		return retry(fmt.Errorf("reverse matching since revision %d: %w", since, err))
	}
	staleBelow := since
	if everything {
		staleBelow = math.MaxInt64
	}
	set := map[string]bool{}
	for _, inv := range res.Inventories {
		set[inv.Key.Digest] = true
	}
	ids := append(slices.Clone(res.Advisories), res.Changed...)
	with, err := s.st.ScanReportsWithAdvisories(ctx, ids)
	if err != nil {
		return retry(err)
	}
	stale, err := s.st.StaleScanReports(ctx, staleBelow, 0)
	if err != nil {
		return retry(err)
	}
	for _, d := range append(with, stale...) {
		set[d] = true
	}
	digests := make([]string, 0, len(set))
	for d := range set {
		digests = append(digests, d)
	}
	slices.Sort(digests)
	for i, d := range digests {
		stage(fmt.Sprintf("re-matching report %d of %d (revision %d to %d)", i+1, len(digests), since, res.Revision))
		if err := s.rematch(ctx, d); err != nil {
			return retry(fmt.Errorf("re-matching %s: %w", d, err))
		}
	}
	if res.Revision > since {
		if _, err := s.st.AdvanceScanReports(ctx, since, res.Revision, start); err != nil {
			return retry(err)
		}
		if _, err := s.st.SetRematchedRevision(ctx, since, res.Revision); err != nil {
			return retry(err)
		}
	}
	s.log.Info("scan: reports re-matched", "from_revision", since, "to_revision", res.Revision,
		"changed_ids", len(res.Changed), "reports", len(digests))
	return done()
}

// rematch matches the stored inventory of the manifest digest again and
// updates its done report; an index's summary is queued again instead.
func (s *Scanner) rematch(ctx context.Context, d string) error {
	sr, err := s.st.ScanReport(ctx, d)
	if apperr.Is(err, apperr.ENOTFOUND) {
		return nil // an inventory whose report is gone: nothing to update
	}
	if err != nil {
		return err
	}
	if sr.Status != store.ScanDone {
		return nil
	}
	if isIndex(sr.MediaType) {
		repos, err := s.st.ManifestRepositories(ctx, d, 1)
		if err != nil || len(repos) == 0 {
			return err
		}
		_, err = s.st.EnqueueScanJob(ctx, &store.ScanJob{Kind: store.ScanJobManifest, Subject: d, Repository: repos[0], Trigger: "vulndb"})
		return err
	}
	inv, err := s.st.Inventory(ctx, store.InventoryKey{Digest: d, Platform: sr.Platform})
	if apperr.Is(err, apperr.ENOTFOUND) {
		// No inventory to match: scan the image again.
		repos, err := s.st.ManifestRepositories(ctx, d, 1)
		if err != nil || len(repos) == 0 {
			return err
		}
		_, err = s.st.EnqueueScanJob(ctx, &store.ScanJob{Kind: store.ScanJobManifest, Subject: d, Repository: repos[0], Trigger: "vulndb"})
		return err
	}
	if err != nil {
		return err
	}
	res, err := s.vdb.Match(ctx, &inv.Inventory)
	if err != nil {
		return err
	}
	rep, err := decodeReport(sr)
	if err != nil {
		return err
	}
	rep.Findings = findingsOf(res.Findings)
	rep.VulnDBRevision = res.Revision
	rep.MatchedAt = s.now()
	if err := s.saveReport(ctx, rep); err != nil {
		return err
	}
	s.metrics.rematched.Inc()
	s.refreshIndexes(ctx, d)
	return nil
}
