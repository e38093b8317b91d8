// Package pulldoor is the registry's pull door of the policy engine: it
// turns a manifest pull (registry.Pull) into a policy.Input — the image
// reference, the manifest digest, the project, and the stored scan report
// of the digest — evaluates it with the engine compiled from the stored
// policies, and refuses a denied pull with the decision's message.
//
// The engine is compiled again whenever the global policy revision moves
// (one indexed read per pull tells), so a policy or allowlist change made
// through any replica applies at once. Decisions are kept in a
// policy.Cache keyed by the engine's revision, the digest, and the scan
// report's status, vulnerability database revision and match time; denied
// decisions are kept 10 seconds and allowed ones a minute (or until the
// allowlist entry they relied on expires), so an expired entry refuses
// again within that time at most.
package pulldoor

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/policy"
	"github.com/customs-dev/customs/internal/registry"
	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/internal/store"
)

// Store is what the door reads.
type Store interface {
	// Policies and PolicyRevision: see store.PolicyStore.
	Policies(ctx context.Context, page store.Page) ([]store.PolicyDocument, error)
	PolicyRevision(ctx context.Context) (int64, error)
	// ScanReport and ScanJob: see store.ScanReportStore and
	// store.ScanJobStore.
	ScanReport(ctx context.Context, digest string) (*store.ScanReport, error)
	ScanJob(ctx context.Context, kind, subject string) (*store.ScanJob, error)
}

// Options configures a Door. Store is required.
type Options struct {
	Store Store
	// Config configures the engine; its Default applies to images no
	// policy matches (package policy: empty means deny). The server
	// passes policy.Allowed: at the registry only policies refuse pulls.
	Config policy.Config
	// Cache keeps decisions; nil makes a default one with Config.Now as
	// its clock.
	Cache  *policy.Cache
	Logger *slog.Logger
}

// Door decides manifest pulls; it implements registry.PullGate. It is safe
// for concurrent use.
type Door struct {
	opts  Options
	cache *policy.Cache

	mu     sync.Mutex
	eng    *policy.Engine
	engRev int64 // the policy revision eng was compiled at
	empty  bool  // no stored policies at engRev
}

var _ registry.PullGate = (*Door)(nil)

// New returns a Door. It panics when Store is nil or Config is invalid
// (programming errors, as in registry.New).
func New(opts Options) *Door {
	if opts.Store == nil {
		panic("pulldoor: Options.Store is required")
	}
	if err := opts.Config.Validate(); err != nil {
		panic("pulldoor: " + err.Error())
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := opts.Cache
	if c == nil {
		c = policy.NewCache(policy.CacheConfig{Now: opts.Config.Now})
	}
	return &Door{opts: opts, cache: c, engRev: -1}
}

// engine returns the engine of the current policy revision (nil when no
// policy is stored and the default allows, so pulls skip evaluation).
func (d *Door) engine(ctx context.Context) (*policy.Engine, error) {
	rev, err := d.opts.Store.PolicyRevision(ctx)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if rev == d.engRev {
		return d.eng, nil
	}
	docs, err := d.opts.Store.Policies(ctx, store.Page{})
	if err != nil {
		return nil, err
	}
	var ps []*policy.Policy
	for _, doc := range docs {
		parsed, err := policy.Parse("policy "+doc.Name, []byte(doc.Document))
		if err != nil {
			// Saved documents were validated; one that no longer parses
			// (an older customs wrote it) fails pulls closed, loudly.
			return nil, apperr.Wrap(err, apperr.EINTERNAL, fmt.Sprintf("stored policy %q does not parse", doc.Name))
		}
		for _, p := range parsed {
			p.Revision = doc.Revision
			ps = append(ps, p)
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
			return nil, apperr.Wrap(err, apperr.EINTERNAL, "compiling the stored policies")
		}
	}
	d.eng, d.engRev = eng, rev
	d.opts.Logger.Info("pull door: policies loaded", "revision", rev, "policies", len(ps))
	return eng, nil
}

// AllowPull implements registry.PullGate: nil when the decision allows
// the pull (or warns), EDENIED with the decision's message when it denies.
func (d *Door) AllowPull(ctx context.Context, pull registry.Pull) error {
	d2, err := d.Decide(ctx, pull)
	if err != nil || d2 == nil || d2.Allowed() {
		return err
	}
	return apperr.Errorf(apperr.EDENIED, "%s", d2.Message())
}

// Decide returns the decision about pull; nil and no error when there is
// nothing to decide (no policies, default allow).
func (d *Door) Decide(ctx context.Context, pull registry.Pull) (*policy.Decision, error) {
	eng, err := d.engine(ctx)
	if err != nil || eng == nil {
		return nil, err
	}
	in, err := d.input(ctx, pull)
	if err != nil {
		return nil, err
	}
	dec, err := d.cache.Evaluate(ctx, eng, in)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.EINTERNAL, "evaluating the pull policy")
	}
	return dec, nil
}

// input builds the policy input of pull.
func (d *Door) input(ctx context.Context, pull registry.Pull) (*policy.Input, error) {
	sep := ":"
	if strings.Contains(pull.Reference, ":") {
		sep = "@"
	}
	host := pull.Host
	if host == "" {
		host = "localhost"
	}
	img, err := policy.ParseImage(host + "/" + pull.Repository + sep + pull.Reference)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.EINVALID, fmt.Sprintf("image reference of %s %s", pull.Repository, pull.Reference))
	}
	dg := pull.Manifest.Digest.String()
	in := &policy.Input{Image: img, Digest: dg, Project: pull.Project}
	if in.Scan, err = d.scan(ctx, dg); err != nil {
		return nil, err
	}
	return in, nil
}

// scan returns the scan summary of digest: its stored report, or for a
// manifest without one a queued or running summary when a scan job waits
// for it, or nil (never scanned).
func (d *Door) scan(ctx context.Context, digest string) (*policy.ScanSummary, error) {
	r, err := d.opts.Store.ScanReport(ctx, digest)
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
	return Summary(r)
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
