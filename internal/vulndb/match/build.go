package match

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/vulndb/ecosystem"
	"github.com/customs-dev/customs/internal/vulndb/osv"
	"github.com/customs-dev/customs/internal/vulndb/severity"
)

// keyIndex holds the entries about one package, grouped per advisory.
type keyIndex struct {
	// all are entries that apply to every release (not release-scoped).
	all []*group
	// byRelease are release-scoped entries, by ecosystem.ReleaseKey.
	// Entries scoped to a release no image has are not indexed.
	byRelease map[string][]*group
}

// group is the entries of one advisory about one package (and release).
type group struct {
	adv     *advisory
	entries []*entry
}

// add indexes e for matching.
func (ix *Index) add(e *entry) {
	if e.scoped && !e.matchable {
		return
	}
	ki := ix.byKey[e.key]
	if ki == nil {
		ki = &keyIndex{}
		ix.byKey[e.key] = ki
	}
	if !e.scoped {
		ki.all = appendEntry(ki.all, e)
		return
	}
	if ki.byRelease == nil {
		ki.byRelease = make(map[string][]*group)
	}
	ki.byRelease[e.releaseKey] = appendEntry(ki.byRelease[e.releaseKey], e)
}

// appendEntry adds e to the group of its advisory, which is the last one
// when it exists: an advisory's entries are added one after another.
func appendEntry(list []*group, e *entry) []*group {
	if n := len(list); n > 0 && list[n-1].adv == e.adv {
		list[n-1].entries = append(list[n-1].entries, e)
		return list
	}
	return append(list, &group{adv: e.adv, entries: []*entry{e}})
}

// RecordError is a problem with one advisory found by Build.
type RecordError struct {
	// ID is the record's id ("" when it has none).
	ID string
	// Ecosystem is the OSV ecosystem of the affected entry at fault
	// ("Alpine:v3.8"), when the error is about one.
	Ecosystem string
	// Field is the path of the bad field ("affected[0].ranges[1].events[2].fixed"),
	// or "" when the error text names it.
	Field string
	Err   error
	// Dropped is true when the record was left out of the index; false
	// when only the named affected entry was ignored.
	Dropped bool
}

func (e *RecordError) Error() string {
	var b strings.Builder
	if e.Field != "" {
		b.WriteString(e.ID)
		if e.Ecosystem != "" {
			fmt.Fprintf(&b, " (%s)", e.Ecosystem)
		}
		fmt.Fprintf(&b, ": %s: ", e.Field)
	}
	b.WriteString(e.Err.Error())
	if e.Dropped {
		b.WriteString(" (record left out)")
	} else {
		b.WriteString(" (entry ignored)")
	}
	return b.String()
}

func (e *RecordError) Unwrap() error { return e.Err }

// Build prepares advs for matching; lk may be nil.
//
// Withdrawn records are left out silently. A record that fails osv
// Validate, one of whose event versions does not parse under its
// ecosystem's rules, or one with a Go entry whose ecosystem_specific is
// not of the Go database's form (see goPlatforms), is left out with a
// *RecordError naming the record and field. An affected entry of an unknown ecosystem is ignored with a
// *RecordError (the record's other entries still match). The rest of the
// index is never affected by a bad record.
//
// Several records may share an id: the per-ecosystem exports each hold
// their part of an advisory (Alpine's v3.9 and v3.10 exports both hold an
// ALPINE-CVE-2019-14697, one per release). Build merges them into one
// advisory: for each (ecosystem, package) an affected entry names, the
// entries of the most recently modified record naming it are kept (the
// later one in advs on a tie); the other fields come from the most recently
// modified record, with the aliases and upstream ids of all of them. A bad
// record among them is left out alone; the others still make the advisory.
func Build(advs []*osv.Vulnerability, lk Lookup) (*Index, []error) {
	ix := &Index{
		advisories: make(map[string]*advisory, len(advs)),
		byKey:      make(map[PackageKey]*keyIndex),
		rules:      make(map[string]*ecosystem.Rules),
	}
	var errs []error
	byID := make(map[string][]*osv.Vulnerability, len(advs))
	var order []string
	for _, v := range advs {
		if v == nil || v.IsWithdrawn() {
			continue
		}
		if err := v.Validate(); err != nil {
			errs = append(errs, &RecordError{ID: v.ID, Err: err, Dropped: true})
			continue
		}
		if _, ok := byID[v.ID]; !ok {
			order = append(order, v.ID)
		}
		byID[v.ID] = append(byID[v.ID], v)
	}
	for _, id := range order {
		a, entries, recErrs := ix.prepare(byID[id], lk)
		errs = append(errs, recErrs...)
		if a == nil {
			continue
		}
		ix.advisories[id] = a
		for _, e := range entries {
			ix.add(e)
		}
	}
	return ix, errs
}

// rulesFor returns (and caches) the rules of a base ecosystem.
func (ix *Index) rulesFor(base string) (*ecosystem.Rules, error) {
	if r, ok := ix.rules[base]; ok {
		return r, nil
	}
	r, err := ecosystem.For(base)
	if err != nil {
		return nil, err
	}
	ix.rules[base] = r
	return r, nil
}

// prepare parses the valid records of one id into one advisory (merged
// as Build describes) and its entries. A copy whose versions do not parse
// is left out with its error; the advisory is nil when every copy was.
func (ix *Index) prepare(recs []*osv.Vulnerability, lk Lookup) (*advisory, []*entry, []error) {
	recs = slices.Clone(recs)
	slices.SortStableFunc(recs, func(a, b *osv.Vulnerability) int { return a.Modified.Compare(b.Modified) })
	type item struct {
		af *osv.Affected
		e  *entry
	}
	type pkgKey struct{ eco, name string }
	var (
		errs    []error
		kept    []*osv.Vulnerability // newest first
		items   []item
		claimed = make(map[pkgKey]bool)
	)
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		entries, recErrs, ok := ix.parseRecord(r)
		errs = append(errs, recErrs...)
		if !ok {
			continue
		}
		kept = append(kept, r)
		var mine []pkgKey
		for j := range r.Affected {
			k := pkgKey{r.Affected[j].Package.Ecosystem, r.Affected[j].Package.Name}
			if claimed[k] || entries[j] == nil {
				continue
			}
			items = append(items, item{&r.Affected[j], entries[j]})
			mine = append(mine, k)
		}
		for _, k := range mine {
			claimed[k] = true
		}
	}
	if len(kept) == 0 {
		return nil, nil, errs
	}
	v := kept[0]
	if len(kept) > 1 {
		merged := *kept[0]
		merged.Affected = make([]osv.Affected, len(items))
		merged.Aliases, merged.Upstream = nil, nil
		for i, it := range items {
			merged.Affected[i] = *it.af
		}
		for _, r := range kept {
			merged.Aliases = appendNew(merged.Aliases, r.Aliases...)
			merged.Upstream = appendNew(merged.Upstream, r.Upstream...)
		}
		v = &merged
	}
	a := &advisory{v: v, aliases: aliases(v), summary: summary(v)}
	ids := append([]string{v.ID}, a.aliases...)
	var override, feed func() (severity.Rating, bool)
	if lk != nil {
		override = memo(func() (severity.Rating, bool) { return lk.Override(ids) })
		feed = memo(func() (severity.Rating, bool) { return lk.Feed(ids) })
	}
	entries := make([]*entry, len(items))
	for i, it := range items {
		e := it.e
		e.adv = a
		e.rating = severity.Resolve(v, it.af, override, feed)
		entries[i] = e
		if !slices.Contains(a.keys, e.key) {
			a.keys = append(a.keys, e.key)
		}
	}
	slices.SortFunc(a.keys, func(x, y PackageKey) int {
		if c := strings.Compare(x.Ecosystem, y.Ecosystem); c != 0 {
			return c
		}
		return strings.Compare(x.Name, y.Name)
	})
	return a, entries, errs
}

// parseRecord parses the affected entries of one record: entries[i] is
// affected[i], nil for an entry of an unknown ecosystem (reported in
// errs). ok is false when a version does not parse: the record is then
// left out, with errs saying why.
func (ix *Index) parseRecord(v *osv.Vulnerability) (entries []*entry, errs []error, ok bool) {
	entries = make([]*entry, len(v.Affected))
	for i := range v.Affected {
		af := &v.Affected[i]
		eco := ecosystem.Split(af.Package.Ecosystem)
		rules, err := ix.rulesFor(eco.Base)
		if err != nil {
			errs = append(errs, &RecordError{ID: v.ID, Ecosystem: af.Package.Ecosystem, Field: fmt.Sprintf("affected[%d].package.ecosystem", i), Err: err})
			continue
		}
		e := &entry{
			key:    PackageKey{Ecosystem: eco.Base, Name: rules.NormalizeName(af.Package.Name)},
			scoped: eco.Scoped(),
		}
		if e.scoped {
			e.releaseKey, e.matchable = ecosystem.ReleaseKey(eco)
		}
		if err := e.parseVersions(v.ID, af, rules, i); err != nil {
			return nil, append(errs, err), false
		}
		if eco.Base == inventory.Go {
			plats, err := goPlatforms(af.EcosystemSpecific)
			if err != nil {
				return nil, append(errs, &RecordError{ID: v.ID, Ecosystem: af.Package.Ecosystem,
					Field: fmt.Sprintf("affected[%d].ecosystem_specific", i), Err: err, Dropped: true}), false
			}
			e.platforms = plats
		}
		e.wontFix = len(e.fixed) == 0 && wontFix(eco.Base, af)
		entries[i] = e
	}
	return entries, errs, true
}

func appendNew(list []string, add ...string) []string {
	for _, s := range add {
		if !slices.Contains(list, s) {
			list = append(list, s)
		}
	}
	return list
}

// parseVersions fills the ranges, versions and fixed list of e from the
// i-th affected entry af of record id. A version that does not parse is a
// *RecordError that drops the record.
func (e *entry) parseVersions(id string, af *osv.Affected, rules *ecosystem.Rules, i int) error {
	bad := func(field string, err error) error {
		return &RecordError{ID: id, Ecosystem: af.Package.Ecosystem, Field: fmt.Sprintf("affected[%d].%s", i, field), Err: err, Dropped: true}
	}
	if len(af.Versions) > 0 {
		e.versions = make(map[string]struct{}, len(af.Versions))
		for _, s := range af.Versions {
			e.versions[s] = struct{}{}
		}
	}
	e.all = len(af.Ranges) == 0 && len(af.Versions) == 0
	for j, r := range af.Ranges {
		if r.Type == osv.RangeGit {
			continue
		}
		var vr vrange
		for k, ev := range r.Events {
			field := fmt.Sprintf("ranges[%d].events[%d]", j, k)
			switch {
			case ev.Introduced == "0":
				vr.events = append(vr.events, event{kind: evIntroduced, zero: true})
			case ev.Introduced != "":
				p, err := rules.Parse(ev.Introduced)
				if err != nil {
					return bad(field+".introduced", err)
				}
				vr.events = append(vr.events, event{kind: evIntroduced, v: p})
			case ev.Fixed != "":
				p, err := rules.Parse(ev.Fixed)
				if err != nil {
					return bad(field+".fixed", err)
				}
				vr.events = append(vr.events, event{kind: evFixed, v: p})
				e.fixed = append(e.fixed, p)
			case ev.LastAffected != "":
				p, err := rules.Parse(ev.LastAffected)
				if err != nil {
					return bad(field+".last_affected", err)
				}
				vr.events = append(vr.events, event{kind: evLastAffected, v: p})
			case ev.Limit == "*":
				// No upper limit.
			case ev.Limit != "":
				p, err := rules.Parse(ev.Limit)
				if err != nil {
					return bad(field+".limit", err)
				}
				vr.limits = append(vr.limits, p)
			}
		}
		sort.SliceStable(vr.events, func(a, b int) bool {
			ea, eb := vr.events[a], vr.events[b]
			if ea.zero || eb.zero {
				return ea.zero && !eb.zero
			}
			if c := ea.v.Compare(eb.v); c != 0 {
				return c < 0
			}
			return ea.kind < eb.kind
		})
		e.ranges = append(e.ranges, vr)
	}
	sort.Slice(e.fixed, func(a, b int) bool { return e.fixed[a].Compare(e.fixed[b]) < 0 })
	e.fixed = slices.CompactFunc(e.fixed, func(a, b ecosystem.Version) bool { return a.Compare(b) == 0 })
	return nil
}

// contains reports whether v is inside the range (see the package doc).
func (r *vrange) contains(v ecosystem.Version) bool {
	affected := false
	for _, ev := range r.events {
		switch ev.kind {
		case evIntroduced:
			if ev.zero || v.Compare(ev.v) >= 0 {
				affected = true
			}
		case evFixed:
			if v.Compare(ev.v) >= 0 {
				affected = false
			}
		case evLastAffected:
			if v.Compare(ev.v) > 0 {
				affected = false
			}
		}
	}
	if !affected || len(r.limits) == 0 {
		return affected
	}
	for _, l := range r.limits {
		if v.Compare(l) < 0 {
			return true
		}
	}
	return false
}

// goPlatforms returns the GOOS/GOARCH lists of the imports of a Go
// affected entry's ecosystem_specific (golang.org/x/vuln's
// osv.EcosystemSpecific: {"imports": [{"path", "goos", "goarch",
// "symbols"}]}), one per import; nil when the entry affects every
// platform: it lists no imports, or one import restricts neither GOOS nor
// GOARCH. ecosystem_specific of another form is an error, as it is to
// govulncheck, which cannot read such a record.
func goPlatforms(raw json.RawMessage) ([]goPlatform, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var es struct {
		Imports []struct {
			GOOS   []string `json:"goos"`
			GOARCH []string `json:"goarch"`
		} `json:"imports"`
	}
	if err := json.Unmarshal(raw, &es); err != nil {
		return nil, err
	}
	if len(es.Imports) == 0 {
		return nil, nil
	}
	out := make([]goPlatform, 0, len(es.Imports))
	for _, imp := range es.Imports {
		if len(imp.GOOS) == 0 && len(imp.GOARCH) == 0 {
			return nil, nil
		}
		out = append(out, goPlatform{goos: imp.GOOS, goarch: imp.GOARCH})
	}
	return out, nil
}

// wontFix reports whether an affected entry says its distribution will not
// fix it. Debian's OSV records (converted from the Debian security
// tracker) carry the tracker's urgency in ecosystem_specific: "unimportant"
// issues get no security update, and "end-of-life" packages are no longer
// supported in that release. Ubuntu's OSV records carry no status (Canonical
// has said they will not), and Red Hat, SUSE and Alpine publish only fixed
// issues in OSV, so there is nothing to read for them.
func wontFix(base string, af *osv.Affected) bool {
	if base != inventory.Debian || len(af.EcosystemSpecific) == 0 {
		return false
	}
	var es struct {
		Urgency string `json:"urgency"`
	}
	if json.Unmarshal(af.EcosystemSpecific, &es) != nil {
		return false
	}
	switch strings.TrimSpace(es.Urgency) {
	case "unimportant", "end-of-life":
		return true
	}
	return false
}

func memo(f func() (severity.Rating, bool)) func() (severity.Rating, bool) {
	var done, ok bool
	var r severity.Rating
	return func() (severity.Rating, bool) {
		if !done {
			r, ok = f()
			done = true
		}
		return r, ok
	}
}

func aliases(v *osv.Vulnerability) []string {
	var out []string
	for _, list := range [][]string{v.Aliases, v.Upstream} {
		for _, s := range list {
			if s != "" && s != v.ID && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

func summary(v *osv.Vulnerability) string {
	if s := strings.TrimSpace(v.Summary); s != "" {
		return s
	}
	line, _, _ := strings.Cut(strings.TrimSpace(v.Details), "\n")
	line = strings.TrimSpace(line)
	if r := []rune(line); len(r) > 200 {
		line = string(r[:199]) + "…"
	}
	return line
}
