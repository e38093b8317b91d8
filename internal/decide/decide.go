// Package decide is the decision every door asks: a Decider keeps the
// policy engine compiled at the current stored policy revision, the system
// allowlist of that revision, and a decision cache, and completes a door's
// policy.Input with what customs stores about the image (its scan summary,
// the system allowlist) before evaluating it.
//
// The doors (the registry's pull door, Kubernetes admission, the what-if
// view) only turn their own request into a policy.Input and the decision
// back into their own answer.
//
// The engine is compiled again whenever the global policy revision moves.
// A Decider reads the revision from the store again when this process
// changed it (a store that counts its policy changes, ChangeCounter, tells
// without a database read) and otherwise at most every RevisionMaxAge
// (DefaultRevisionMaxAge, 100 ms): a policy, project setting or allowlist
// change made through this replica applies to the next decision, one made
// through another replica within RevisionMaxAge. Decisions are
// kept in a policy.Cache keyed by the engine's revision, the digest, the
// scan report's status, vulnerability database revision and match time,
// and the system allowlist's revision; denied decisions are kept 10
// seconds and allowed ones a minute (or until the allowlist entry they
// relied on expires).
package decide

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/policy"
	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/internal/store"
)

// Store is what a Decider reads.
type Store interface {
	// Policies and PolicyRevision: see store.PolicyStore.
	Policies(ctx context.Context, page store.Page) ([]store.PolicyDocument, error)
	PolicyRevision(ctx context.Context) (int64, error)
	// ScanReportData and ScanJob: see store.ScanReportStore and
	// store.ScanJobStore.
	ScanReportData(ctx context.Context, digest string) (*store.ScanReport, error)
	ScanJob(ctx context.Context, kind, subject string) (*store.ScanJob, error)
}

// ChangeCounter is implemented by stores that count the changes of the
// global policy revision made through them (this process):
// PolicyChanges moves after each such change has ended. A Decider over a
// store without it reads the revision on every decision.
type ChangeCounter interface {
	PolicyChanges() uint64
}

// DefaultRevisionMaxAge is how long a Decider decides with a policy
// revision it read before reading it again, when nothing changed it
// through this process: the bound on how late a change made through
// another replica applies.
const DefaultRevisionMaxAge = 100 * time.Millisecond

// AllowlistStore reads the system allowlist. Every change to it must move
// the global policy revision (the Decider reads it again only then).
type AllowlistStore interface {
	SystemAllowlist(ctx context.Context) ([]store.AllowlistEntry, error)
}

// Options configures a Decider. Store is required.
type Options struct {
	Store Store
	// Allowlists reads the system allowlist; nil means there is none.
	Allowlists AllowlistStore
	// Config configures the engine; its Default applies to images no
	// selected policy matches (package policy: empty means deny).
	Config policy.Config
	// Select chooses the stored policies this Decider evaluates (a door
	// that applies only some of them, as the registry applies project
	// policies); nil selects every stored policy.
	Select func(*policy.Policy) bool
	// Cache keeps decisions; nil makes a default one with Config.Now as
	// its clock.
	Cache *policy.Cache
	// RevisionMaxAge bounds how long a policy revision read from the
	// store is used when the store's ChangeCounter says this process did
	// not change it: 0 means DefaultRevisionMaxAge, a negative value reads
	// the revision on every decision.
	RevisionMaxAge time.Duration
	// Now is the clock of RevisionMaxAge; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Decider decides images with the stored policies. It is safe for
// concurrent use.
type Decider struct {
	opts  Options
	cache *policy.Cache

	changes ChangeCounter // nil: read the revision on every decision

	// cur is the state last read, with when and at which change count;
	// decisions read it without a lock.
	cur atomic.Pointer[snapshot]

	summaries summaryMemo

	mu     sync.Mutex     // serialises compiling
	eng    *policy.Engine // nil when no policy is selected and the default allows
	all    []*policy.Policy
	sys    policy.SystemAllowlist
	engRev int64 // the policy revision eng was compiled at
}

// snapshot is a state with when its revision was read (before the read)
// and the store's change count seen before the read.
type snapshot struct {
	st     state
	gen    uint64
	readAt time.Time
}

// New returns a Decider. It panics when Store is nil or Config is invalid
// (programming errors).
func New(opts Options) *Decider {
	if opts.Store == nil {
		panic("decide: Options.Store is required")
	}
	if err := opts.Config.Validate(); err != nil {
		panic("decide: " + err.Error())
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := opts.Cache
	if c == nil {
		c = policy.NewCache(policy.CacheConfig{Now: opts.Config.Now})
	}
	if opts.RevisionMaxAge == 0 {
		opts.RevisionMaxAge = DefaultRevisionMaxAge
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Decider{opts: opts, cache: c, engRev: -1}
	if cc, ok := opts.Store.(ChangeCounter); ok && opts.RevisionMaxAge > 0 {
		d.changes = cc
	}
	return d
}

// Config returns the engine configuration the Decider was made with.
func (d *Decider) Config() policy.Config { return d.opts.Config }

// state is the compiled view of one policy revision.
type state struct {
	eng *policy.Engine
	all []*policy.Policy // the selected stored policies
	sys policy.SystemAllowlist
	rev int64
}

// load returns the state of the current policy revision: the one last
// read while it is fresh (no change through this process since, read less
// than RevisionMaxAge ago), else the store's, compiling the stored policies
// again when the revision moved.
func (d *Decider) load(ctx context.Context) (state, error) {
	var gen uint64
	var now time.Time
	if d.changes != nil {
		// The count is read before the revision: a change that ends after
		// this moves it, and the next decision reads the revision again.
		gen = d.changes.PolicyChanges()
		now = d.opts.Now()
		if s := d.cur.Load(); s != nil && s.gen == gen {
			if age := now.Sub(s.readAt); age >= 0 && age < d.opts.RevisionMaxAge {
				return s.st, nil
			}
		}
	}
	rev, err := d.opts.Store.PolicyRevision(ctx)
	if err != nil {
		return state{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := d.compile(ctx, rev)
	if err != nil {
		return state{}, err
	}
	if d.changes != nil {
		d.cur.Store(&snapshot{st: st, gen: gen, readAt: now})
	}
	return st, nil
}

// compile returns the state of revision rev, compiling the stored policies
// again when it is not the one compiled last. d.mu must be held.
func (d *Decider) compile(ctx context.Context, rev int64) (state, error) {
	// Revisions only grow: a smaller one was read before the compiled one.
	if rev <= d.engRev {
		return state{d.eng, d.all, d.sys, d.engRev}, nil
	}
	ps, err := d.storedPolicies(ctx)
	if err != nil {
		return state{}, err
	}
	sys := policy.SystemAllowlist{Revision: "policy revision " + strconv.FormatInt(rev, 10)}
	if d.opts.Allowlists != nil {
		entries, err := d.opts.Allowlists.SystemAllowlist(ctx)
		if err != nil {
			return state{}, err
		}
		for _, e := range entries {
			sys.Entries = append(sys.Entries, PolicyEntry(e))
		}
	}
	var eng *policy.Engine
	if len(ps) > 0 || d.opts.Config.Default != policy.Allowed {
		// Update compiles only the policies that changed (Rego once per
		// policy revision).
		if d.eng != nil {
			eng, err = d.eng.Update(ps, d.opts.Config)
		} else {
			eng, err = policy.Compile(ps, d.opts.Config)
		}
		if err != nil {
			return state{}, apperr.Wrap(err, apperr.EINTERNAL, "compiling the stored policies")
		}
	}
	d.eng, d.all, d.sys, d.engRev = eng, ps, sys, rev
	d.opts.Logger.Info("policies loaded", "revision", rev, "policies", len(ps), "systemAllowlist", len(sys.Entries))
	return state{eng, ps, sys, rev}, nil
}

// storedPolicies parses the stored policies Select chooses.
func (d *Decider) storedPolicies(ctx context.Context) ([]*policy.Policy, error) {
	// Page{} is every stored policy.
	docs, err := d.opts.Store.Policies(ctx, store.Page{})
	if err != nil {
		return nil, err
	}
	var ps []*policy.Policy
	for _, doc := range docs {
		parsed, err := policy.Parse("policy "+doc.Name, []byte(doc.Document))
		if err != nil {
			// Saved documents were validated; one that no longer parses
			// (an older customs wrote it) fails decisions closed, loudly.
			return nil, apperr.Wrap(err, apperr.EINTERNAL, fmt.Sprintf("stored policy %q does not parse", doc.Name))
		}
		for _, p := range parsed {
			p.Revision = doc.Revision
			if d.opts.Select == nil || d.opts.Select(p) {
				ps = append(ps, p)
			}
		}
	}
	return ps, nil
}

// Engine returns the engine of the current policy revision; nil when no
// policy is selected and the default allows (nothing to evaluate).
func (d *Decider) Engine(ctx context.Context) (*policy.Engine, error) {
	st, err := d.load(ctx)
	return st.eng, err
}

// Revision returns the global policy revision the Decider currently
// decides with (read from the store as decisions read it: see
// RevisionMaxAge).
func (d *Decider) Revision(ctx context.Context) (int64, error) {
	st, err := d.load(ctx)
	return st.rev, err
}

// Decide completes in and decides it with the stored policies: when
// in.Digest is set and in.Scan is nil, in.Scan becomes the stored scan
// summary of the digest (ScanSummary); in.SystemAllowlist becomes the
// stored system allowlist. in is not modified (a copy is completed).
// Decisions are cached; do not modify the one returned. When no policy is
// selected and the default allows, the decision is the default's without
// evaluation. Errors: EINVALID for an invalid Input (naming the field),
// the store's errors otherwise.
func (d *Decider) Decide(ctx context.Context, in *policy.Input) (*policy.Decision, error) {
	st, err := d.load(ctx)
	if err != nil {
		return nil, err
	}
	if st.eng == nil {
		return &policy.Decision{Outcome: policy.Allowed, Default: true, Rule: policy.RuleDefault, Image: in.Image.String()}, nil
	}
	full, err := d.complete(ctx, in, st)
	if err != nil {
		return nil, err
	}
	dec, err := d.cache.Evaluate(ctx, st.eng, full)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.EINVALID, "policy input")
	}
	return dec, nil
}

// DecideWith decides in as Decide does, with extra policies added to the
// stored ones (a what-if view, or a CI gate's own policy): an extra policy
// named like a stored one replaces it, and Select applies to extra
// policies as to stored ones (a door decides with what it would apply).
// The engine is compiled for this call and the decision is not cached.
func (d *Decider) DecideWith(ctx context.Context, in *policy.Input, extra []*policy.Policy) (*policy.Decision, error) {
	if len(extra) == 0 {
		return d.Decide(ctx, in)
	}
	st, err := d.load(ctx)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	var ps []*policy.Policy
	for _, p := range extra {
		names[p.Metadata.Name] = true
		if d.opts.Select == nil || d.opts.Select(p) {
			ps = append(ps, p)
		}
	}
	for _, p := range st.all {
		if !names[p.Metadata.Name] {
			ps = append(ps, p)
		}
	}
	var eng *policy.Engine
	if st.eng != nil {
		eng, err = st.eng.Update(ps, d.opts.Config)
	} else {
		eng, err = policy.Compile(ps, d.opts.Config)
	}
	if err != nil {
		return nil, apperr.Wrap(err, apperr.EINVALID, "policies")
	}
	full, err := d.complete(ctx, in, st)
	if err != nil {
		return nil, err
	}
	dec, err := eng.Evaluate(ctx, full)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.EINVALID, "policy input")
	}
	return dec, nil
}

// Complete returns a copy of in completed as Decide completes it: the
// stored scan summary of in.Digest when in.Scan is nil, the system
// allowlist (for showing what a decision was made on).
func (d *Decider) Complete(ctx context.Context, in *policy.Input) (*policy.Input, error) {
	st, err := d.load(ctx)
	if err != nil {
		return nil, err
	}
	return d.complete(ctx, in, st)
}

// complete returns a copy of in with the scan and system allowlist filled
// in.
func (d *Decider) complete(ctx context.Context, in *policy.Input, st state) (*policy.Input, error) {
	full := *in
	if full.Digest != "" && full.Scan == nil {
		s, err := d.ScanSummary(ctx, full.Digest)
		if err != nil {
			return nil, err
		}
		full.Scan = s
	}
	full.SystemAllowlist = st.sys
	return &full, nil
}

// ScanSummary returns the scan summary of digest: its stored report, or
// for a manifest without one a queued or running summary when a scan job
// waits for it, or nil (never scanned). The summary of a report is decoded
// once per version of the report and shared: do not modify it.
func (d *Decider) ScanSummary(ctx context.Context, digest string) (*policy.ScanSummary, error) {
	r, err := d.opts.Store.ScanReportData(ctx, digest)
	if apperr.Is(err, apperr.ENOTFOUND) {
		j, err := d.opts.Store.ScanJob(ctx, store.ScanJobManifest, digest)
		if apperr.Is(err, apperr.ENOTFOUND) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		switch j.Status {
		case store.ScanQueued:
			return &policy.ScanSummary{Status: policy.ScanQueued}, nil
		case store.ScanRunning:
			return &policy.ScanSummary{Status: policy.ScanRunning}, nil
		}
		return &policy.ScanSummary{Status: policy.ScanStatus(j.Status), Reason: j.LastError}, nil
	}
	if err != nil {
		return nil, err
	}
	if s := d.summaries.get(r); s != nil {
		return s, nil
	}
	s, err := Summary(r)
	if err != nil {
		return nil, err
	}
	d.summaries.put(r, s)
	return s, nil
}

// maxSummaries bounds the decoded scan summaries a Decider keeps; past it
// the memo starts again empty.
const maxSummaries = 4096

// summaryMemo keeps the summaries decoded from stored reports (decoding a
// report's JSON with its findings is most of a scan lookup), each valid
// while the stored report has the same status, reason, vulnerability
// database revision, scan and match times and update time — the report is
// still read on every decision, only its decoding is saved. The decision
// cache keys on the same fields. The zero value is ready; it is safe for
// concurrent use.
type summaryMemo struct {
	mu sync.RWMutex
	m  map[string]memoSummary
}

// memoSummary is one kept summary with what it was decoded from.
type memoSummary struct {
	status, reason            string
	vulnRev                   int64
	scanned, matched, updated time.Time
	size                      int
	summary                   *policy.ScanSummary
}

func (e *memoSummary) of(r *store.ScanReport) bool {
	return e.status == r.Status && e.reason == r.Reason && e.vulnRev == r.VulnRevision && e.size == len(r.Data) &&
		e.scanned.Equal(r.ScannedAt) && e.matched.Equal(r.MatchedAt) && e.updated.Equal(r.UpdatedAt)
}

// get returns the summary kept for r, or nil.
func (m *summaryMemo) get(r *store.ScanReport) *policy.ScanSummary {
	m.mu.RLock()
	e, ok := m.m[r.Digest]
	m.mu.RUnlock()
	if !ok || !e.of(r) {
		return nil
	}
	return e.summary
}

// put keeps s as the summary of r.
func (m *summaryMemo) put(r *store.ScanReport, s *policy.ScanSummary) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil || len(m.m) >= maxSummaries {
		m.m = make(map[string]memoSummary)
	}
	m.m[r.Digest] = memoSummary{status: r.Status, reason: r.Reason, vulnRev: r.VulnRevision, scanned: r.ScannedAt,
		matched: r.MatchedAt, updated: r.UpdatedAt, size: len(r.Data), summary: s}
}

// Summary converts a stored scan report into the policy's scan summary.
// The report's data (package scan/report JSON) carries the findings'
// packages, versions, fixes and severities.
func Summary(r *store.ScanReport) (*policy.ScanSummary, error) {
	s := &policy.ScanSummary{Status: policy.ScanStatus(r.Status), Reason: r.Reason,
		VulnDBRevision: r.VulnRevision, MatchedAt: r.MatchedAt, Findings: []policy.Finding{}}
	if r.Status != store.ScanDone {
		return s, nil
	}
	var rep report.Report
	if err := json.Unmarshal(r.Data, &rep); err != nil {
		return nil, apperr.Wrap(err, apperr.EINTERNAL, fmt.Sprintf("scan report of %s does not decode", r.Digest))
	}
	for _, f := range rep.Findings {
		sev, err := policy.ParseSeverity(f.Severity.Level.String())
		if err != nil {
			sev = policy.Unknown
		}
		pf := policy.Finding{ID: f.AdvisoryID, Aliases: f.Aliases, Package: f.Package.Name,
			SourcePackage: f.Package.SourceName, Installed: f.InstalledVersion, Fixed: f.FixedVersions,
			Severity: sev, Status: policy.FixStatus(f.Status)}
		s.Findings = append(s.Findings, pf)
	}
	return s, nil
}

// PolicyEntry converts a stored system allowlist entry into the policy's
// allowlist entry.
func PolicyEntry(e store.AllowlistEntry) policy.AllowlistEntry {
	pe := policy.AllowlistEntry{ID: e.ID, Package: e.Package, Repository: e.Repository, Reason: e.Reason, AddedBy: e.AddedBy}
	if !e.Expires.IsZero() {
		t := e.Expires
		pe.Expires = &t
	}
	return pe
}
