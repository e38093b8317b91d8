package vulndb

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/vulndb/match"
	"github.com/customs-dev/customs/internal/vulndb/osv"
	"github.com/customs-dev/customs/internal/vulndb/severity"
)

// snapshot is the index of one database revision.
type snapshot struct {
	rev int64
	ix  *match.Index
	// aliases maps every alias and upstream id to the advisories naming it
	// (a CVE's rating or override changes those advisories).
	aliases map[string][]string
	// errs are the problems Build found in stored records.
	errs []error
	// cves counts the CVE ratings, overrides the overrides.
	cves, overrides int
}

// indexBuild is an index build under way; done is closed once snap (the
// newest index after it) or err is set.
type indexBuild struct {
	done chan struct{}
	snap *snapshot
	err  error
}

// lookup is the match.Lookup of a snapshot: overrides and CVE ratings by id.
type lookup struct {
	overrides map[string]severity.Rating
	feed      map[string]severity.Rating
}

// first returns the rating of the first of ids that m holds.
func first(m map[string]severity.Rating, ids []string) (severity.Rating, bool) {
	for _, id := range ids {
		if r, ok := m[id]; ok {
			return r, true
		}
	}
	return severity.Rating{}, false
}

func (l *lookup) Override(ids []string) (severity.Rating, bool) { return first(l.overrides, ids) }
func (l *lookup) Feed(ids []string) (severity.Rating, bool)     { return first(l.feed, ids) }

// Index returns the match index to use now and the database revision it
// answers for; callers that cache decisions key them on that revision.
// The index is built once per revision and shared. The revision is checked
// at most once per Options.RevisionCheck, so a change made by another
// replica shows within that time plus a build: when the database has a
// newer revision, one goroutine builds its index in the background while
// Index keeps returning the previous one (and its revision) at once. Only
// the first build of the process is waited for.
func (s *Service) Index(ctx context.Context) (*match.Index, int64, error) {
	return s.IndexAt(ctx, 0)
}

// IndexAt is Index for an index at revision atLeast or newer: when the
// index at hand is older it waits for the build of the database's current
// revision (asking for a revision beyond the database's asks for that).
func (s *Service) IndexAt(ctx context.Context, atLeast int64) (*match.Index, int64, error) {
	snap, err := s.snapshot(ctx, atLeast)
	if err != nil {
		return nil, 0, err
	}
	return snap.ix, snap.rev, nil
}

// checkDue reports whether the database's revision should be read now, and
// if so records that it is being read, so that concurrent callers keep
// serving the index at hand meanwhile.
func (s *Service) checkDue(force bool) bool {
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	now := s.opts.Clock()
	if !force && s.opts.RevisionCheck > 0 && !s.checked.IsZero() && now.Sub(s.checked) < s.opts.RevisionCheck {
		return false
	}
	s.checked = now
	return true
}

// snapshot returns the index to answer with: the one at hand unless it is
// older than atLeast or the database moved on; see Index and IndexAt.
func (s *Service) snapshot(ctx context.Context, atLeast int64) (*snapshot, error) {
	cur := s.snap.Load()
	usable := cur != nil && cur.rev >= atLeast
	if !s.checkDue(!usable) && usable {
		return cur, nil
	}
	st, err := s.st.VulnState(ctx)
	if err != nil {
		return nil, err
	}
	if cur != nil && cur.rev >= st.Revision {
		return cur, nil
	}
	need := min(atLeast, st.Revision)
	b := s.startBuild()
	if cur != nil && cur.rev >= need {
		return cur, nil // the build goes on; later calls get its index
	}
	for {
		select {
		case <-b.done:
		case <-ctx.Done():
			return nil, apperr.Wrap(ctx.Err(), apperr.EUNAVAILABLE, "waiting for the vulnerability index: request cancelled")
		}
		if b.err != nil {
			return nil, b.err
		}
		if b.snap.rev >= need {
			return b.snap, nil
		}
		// That build began before revision need was written.
		b = s.startBuild()
	}
}

// startBuild starts a build of the database's current revision in the
// background, or returns the one under way.
func (s *Service) startBuild() *indexBuild {
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	if s.building != nil {
		return s.building
	}
	b := &indexBuild{done: make(chan struct{})}
	s.building = b
	run := func() {
		snap, err := s.build(s.bg)
		switch {
		case err == nil:
			snap = s.install(snap)
		case s.bg.Err() != nil:
			err = errClosing()
		default:
			s.log.Warn("vulndb: building the index failed; the previous one stays in use", "err", err)
		}
		s.idxMu.Lock()
		s.building = nil
		s.idxMu.Unlock()
		b.snap, b.err = snap, err
		close(b.done)
	}
	if !s.goBG(run) {
		s.building = nil
		b.err = errClosing()
		close(b.done)
	}
	return b
}

// install makes snap the index at hand unless a newer one is, and returns
// the one at hand.
func (s *Service) install(snap *snapshot) *snapshot {
	for {
		cur := s.snap.Load()
		if cur != nil && cur.rev >= snap.rev {
			return cur
		}
		if s.snap.CompareAndSwap(cur, snap) {
			return snap
		}
	}
}

// refreshAfterWrite brings an index this process uses up to revision rev,
// written by this process, so that its own callers read their writes; a
// process that never used an index builds none.
func (s *Service) refreshAfterWrite(ctx context.Context, rev int64) {
	if cur := s.snap.Load(); cur == nil || cur.rev >= rev {
		return
	}
	if _, err := s.snapshot(ctx, rev); err != nil {
		s.log.Warn("vulndb: rebuilding the index after a change", "revision", rev, "err", err)
	}
}

// build reads every record and override and builds their index.
func (s *Service) build(ctx context.Context) (*snapshot, error) {
	start := time.Now()
	lk := &lookup{overrides: map[string]severity.Rating{}, feed: map[string]severity.Rating{}}
	var advs []*osv.Vulnerability
	var errs []error
	rev, err := s.st.ScanVulnRecords(ctx, func(r store.VulnRecord) error {
		switch r.Kind {
		case store.VulnOSV:
			v, err := osv.Parse(r.ID+".json", r.Data)
			if err != nil {
				errs = append(errs, fmt.Errorf("stored record %s of source %s: %w", r.ID, r.Source, err))
				return nil
			}
			advs = append(advs, v)
		case store.VulnCVE:
			// Records come ordered by source name: the first source's
			// rating of a CVE wins.
			if _, dup := lk.feed[r.ID]; dup {
				return nil
			}
			var rt severity.Rating
			if err := json.Unmarshal(r.Data, &rt); err != nil {
				errs = append(errs, fmt.Errorf("stored CVE rating %s of source %s: %w", r.ID, r.Source, err))
				return nil
			}
			lk.feed[r.ID] = rt
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Read after the records: overrides at least as new as rev, so a later
	// change of them shows as a newer revision.
	ovs, err := s.st.VulnOverrides(ctx)
	if err != nil {
		return nil, err
	}
	for _, o := range ovs {
		rt, err := overrideRating(o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		lk.overrides[o.ID] = rt
	}
	ix, berrs := match.Build(advs, lk)
	errs = append(errs, berrs...)
	snap := &snapshot{rev: rev, ix: ix, aliases: map[string][]string{}, errs: errs, cves: len(lk.feed), overrides: len(ovs)}
	for _, v := range advs {
		for _, ids := range [][]string{v.Aliases, v.Upstream} {
			for _, a := range ids {
				if !slices.Contains(snap.aliases[a], v.ID) {
					snap.aliases[a] = append(snap.aliases[a], v.ID)
				}
			}
		}
	}
	s.log.Info("vulndb: index built", "revision", rev, "advisories", ix.Len(), "cve_ratings", len(lk.feed),
		"overrides", len(ovs), "record_errors", len(errs), "duration", time.Since(start))
	for i, err := range errs {
		if i == 20 {
			s.log.Debug("vulndb: more record errors left out", "count", len(errs)-i)
			break
		}
		s.log.Debug("vulndb: stored record left out of the index", "err", err)
	}
	return snap, nil
}

// overrideRating is the rating an override gives.
func overrideRating(o store.VulnOverrideRule) (severity.Rating, error) {
	lvl, err := severity.ParseLevel(o.Level)
	if err != nil {
		return severity.Rating{}, fmt.Errorf("severity override of %s: %w", o.ID, err)
	}
	detail := fmt.Sprintf("set by %s for %s", o.CreatedBy, o.ID)
	if o.Reason != "" {
		detail += ": " + o.Reason
	}
	return severity.Rating{Level: lvl, Source: severity.SourceOverride, Detail: detail}, nil
}

// MatchResult is the findings of an inventory at a database revision.
type MatchResult struct {
	Revision int64           `json:"revision"`
	Findings []match.Finding `json:"findings"`
}

// Match returns the findings of inv against the index Index returns, with
// the revision they are for; it does not wait for a rebuild.
func (s *Service) Match(ctx context.Context, inv *inventory.Inventory) (*MatchResult, error) {
	if inv == nil {
		return nil, apperr.Errorf(apperr.EINVALID, "no inventory to match")
	}
	ix, rev, err := s.Index(ctx)
	if err != nil {
		return nil, err
	}
	// rev and ix belong together: a rebuild swaps both at once.
	fs := ix.Match(inv)
	if fs == nil {
		fs = []match.Finding{}
	}
	return &MatchResult{Revision: rev, Findings: fs}, nil
}

// Advisory is an advisory as the database holds it: the record matching
// uses (merged from every source holding the id) and each source's copy.
type Advisory struct {
	ID string `json:"id"`
	// Record is the merged record; nil when the index leaves the advisory
	// out (withdrawn, or no copy of it is valid).
	Record *osv.Vulnerability `json:"record,omitempty"`
	// Withdrawn is set when every copy is withdrawn.
	Withdrawn bool `json:"withdrawn,omitempty"`
	// Sources are the copies, one per source.
	Sources []AdvisorySource `json:"sources"`
	// Revision is the database revision the answer comes from.
	Revision int64 `json:"revision"`
}

// AdvisorySource is one source's copy of an advisory.
type AdvisorySource struct {
	Source   string          `json:"source"`
	Revision int64           `json:"revision"` // the revision that wrote this copy
	Record   json.RawMessage `json:"record"`
}

// Advisory returns the advisory with the given id (an OSV id). ENOTFOUND
// if no source holds it.
func (s *Service) Advisory(ctx context.Context, id string) (*Advisory, error) {
	ix, rev, err := s.Index(ctx)
	if err != nil {
		return nil, err
	}
	recs, err := s.st.VulnRecords(ctx, store.VulnOSV, id)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "no advisory %q in the vulnerability database", id)
	}
	a := &Advisory{ID: id, Revision: rev, Withdrawn: true}
	if v, ok := ix.Advisory(id); ok {
		a.Record = v
	}
	for _, r := range recs {
		if v, err := osv.Parse(id+".json", r.Data); err != nil || !v.IsWithdrawn() {
			a.Withdrawn = false
		}
		a.Sources = append(a.Sources, AdvisorySource{Source: r.Source, Revision: r.Revision, Record: json.RawMessage(r.Data)})
	}
	return a, nil
}
