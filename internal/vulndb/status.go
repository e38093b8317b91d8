package vulndb

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/vulndb/ecosystem"
	"github.com/customs-dev/customs/internal/vulndb/severity"
)

// Status describes the vulnerability database.
type Status struct {
	Revision int64 `json:"revision"`
	// UpdatedAt is when the revision last changed (zero if never).
	UpdatedAt time.Time `json:"updatedAt"`
	// Sources are the configured sources and every other source ever
	// imported, by name.
	Sources []SourceStatus `json:"sources"`
	// Ecosystems counts advisories per base ecosystem ("Alpine") and per
	// release-scoped ecosystem ("Alpine:v3.9"), by name.
	Ecosystems []EcosystemCount `json:"ecosystems"`
	// Advisories counts distinct advisory ids over all ecosystems.
	Advisories int `json:"advisories"`
	// CVERatings counts the CVEs rated by feeds, Overrides the operator
	// overrides.
	CVERatings int `json:"cveRatings"`
	Overrides  int `json:"overrides"`
	// ChangeLogFrom is the oldest revision AffectedSince answers for: the
	// changes of the revisions up to it were pruned (0 if none were).
	ChangeLogFrom int64 `json:"changeLogFrom"`
	// Running are the imports running now in every process sharing the
	// database, by source; another process's progress is as of its last
	// write (Progress.UpdatedAt), and an import whose process stopped
	// renewing its lease is not shown.
	Running []Progress `json:"running"`
}

// SourceStatus is one source's state.
type SourceStatus struct {
	Name     string `json:"name"`
	Location string `json:"location"`
	// Configured is true for sources of the configuration (vulndb.sources),
	// which updates import.
	Configured   bool      `json:"configured"`
	LastAttempt  time.Time `json:"lastAttempt"`
	LastSuccess  time.Time `json:"lastSuccess"`
	LastError    string    `json:"lastError,omitempty"`
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"lastModified,omitempty"`
	// Revision is the last revision the source changed anything in.
	Revision int64 `json:"revision"`
	Records  int   `json:"records"`
}

// EcosystemCount is how many advisories name an ecosystem.
type EcosystemCount struct {
	Ecosystem string `json:"ecosystem"`
	// Base and Release are Ecosystem split ("Alpine", "v3.9"); Release is
	// "" for a base ecosystem's total.
	Base       string `json:"base"`
	Release    string `json:"release,omitempty"`
	Advisories int    `json:"advisories"`
}

// Status reads the database's state; it does not build the index.
func (s *Service) Status(ctx context.Context) (*Status, error) {
	st, err := s.st.VulnState(ctx)
	if err != nil {
		return nil, err
	}
	srcs, err := s.st.VulnSources(ctx)
	if err != nil {
		return nil, err
	}
	counts, err := s.st.VulnCounts(ctx)
	if err != nil {
		return nil, err
	}
	ovs, err := s.st.VulnOverrides(ctx)
	if err != nil {
		return nil, err
	}
	running, err := s.runningEverywhere(ctx)
	if err != nil {
		return nil, err
	}
	out := &Status{Revision: st.Revision, UpdatedAt: st.UpdatedAt, Sources: []SourceStatus{}, Ecosystems: []EcosystemCount{},
		Overrides: len(ovs), ChangeLogFrom: st.PrunedThrough, Running: running}
	byName := map[string]int{}
	for _, c := range s.sources {
		byName[c.Name] = len(out.Sources)
		out.Sources = append(out.Sources, SourceStatus{Name: c.Name, Location: c.Location, Configured: true})
	}
	for _, v := range srcs {
		i, ok := byName[v.Name]
		if !ok {
			i = len(out.Sources)
			out.Sources = append(out.Sources, SourceStatus{Name: v.Name})
		}
		o := &out.Sources[i]
		if !o.Configured {
			o.Location = v.Location
		}
		o.LastAttempt, o.LastSuccess, o.LastError = v.LastAttempt, v.LastSuccess, v.LastError
		o.ETag, o.LastModified, o.Revision, o.Records = v.ETag, v.LastModified, v.Revision, v.Records
	}
	slices.SortFunc(out.Sources, func(a, b SourceStatus) int { return strings.Compare(a.Name, b.Name) })
	for eco, n := range counts.Ecosystems {
		e := ecosystem.Split(eco)
		out.Ecosystems = append(out.Ecosystems, EcosystemCount{Ecosystem: eco, Base: e.Base, Release: e.Release, Advisories: n})
	}
	slices.SortFunc(out.Ecosystems, func(a, b EcosystemCount) int {
		return cmp.Or(cmp.Compare(a.Base, b.Base), cmp.Compare(a.Release, b.Release))
	})
	out.Advisories, out.CVERatings = counts.Advisories, counts.CVEs
	return out, nil
}

// runningEverywhere lists the imports of every process, by source: those
// the database records, with this process's own as they are now.
func (s *Service) runningEverywhere(ctx context.Context) ([]Progress, error) {
	runs, err := s.st.VulnImports(ctx)
	if err != nil {
		return nil, err
	}
	out := s.Running()
	mine := map[string]bool{}
	for _, p := range out {
		mine[p.Source] = true
	}
	for _, r := range runs {
		if r.Owner == s.opts.Owner && mine[r.Source] {
			continue
		}
		out = append(out, Progress{Source: r.Source, Location: r.Location, Started: r.Started, Owner: r.Owner,
			UpdatedAt: r.UpdatedAt, Phase: r.Phase, Bytes: r.Bytes, Read: int(r.Read), Changed: int(r.Changed), Errors: int(r.Errors)})
	}
	slices.SortFunc(out, func(a, b Progress) int { return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Owner, b.Owner)) })
	return out, nil
}

// Override is an operator's severity for an advisory or CVE id.
type Override struct {
	ID        string         `json:"id"`
	Level     severity.Level `json:"level"`
	Reason    string         `json:"reason,omitempty"`
	CreatedBy string         `json:"createdBy"`
	CreatedAt time.Time      `json:"createdAt"`
	Revision  int64          `json:"revision"`
}

// SetOverride makes level the severity of every finding of the advisory
// id, or of the advisories aliasing it (a CVE id), whatever else rates
// them. by names who decided it. It bumps the revision (and, like Import,
// prunes the change log and brings an index in use up to it).
func (s *Service) SetOverride(ctx context.Context, id string, level severity.Level, reason, by string) (*Override, error) {
	id = strings.TrimSpace(id)
	if id == "" || strings.ContainsAny(id, " \t\n") {
		return nil, apperr.Errorf(apperr.EINVALID, "override id %q is not an advisory or CVE id", id)
	}
	if level.String() == "" || (!level.Known() && level != severity.Unknown) {
		return nil, apperr.Errorf(apperr.EINVALID, "override of %s: invalid severity level", id)
	}
	if strings.TrimSpace(by) == "" {
		return nil, apperr.Errorf(apperr.EINVALID, "override of %s: who sets it is required", id)
	}
	o := &store.VulnOverrideRule{ID: id, Level: level.String(), Reason: reason, CreatedBy: by}
	if err := s.st.PutVulnOverride(ctx, o); err != nil {
		return nil, err
	}
	s.afterWrite(ctx, o.Revision)
	return &Override{ID: o.ID, Level: level, Reason: o.Reason, CreatedBy: o.CreatedBy, CreatedAt: o.CreatedAt, Revision: o.Revision}, nil
}

// Overrides lists the overrides by id.
func (s *Service) Overrides(ctx context.Context) ([]Override, error) {
	ovs, err := s.st.VulnOverrides(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Override, 0, len(ovs))
	for _, o := range ovs {
		lvl, err := severity.ParseLevel(o.Level)
		if err != nil {
			lvl = severity.Unknown
		}
		out = append(out, Override{ID: o.ID, Level: lvl, Reason: o.Reason, CreatedBy: o.CreatedBy, CreatedAt: o.CreatedAt, Revision: o.Revision})
	}
	return out, nil
}

// DeleteOverride removes the override of id and returns the new revision.
// ENOTFOUND if there is none.
func (s *Service) DeleteOverride(ctx context.Context, id string) (int64, error) {
	rev, err := s.st.DeleteVulnOverride(ctx, id)
	if err != nil {
		return 0, err
	}
	s.afterWrite(ctx, rev)
	return rev, nil
}
