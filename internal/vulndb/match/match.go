// Package match matches package inventories against OSV advisories.
//
// Build turns a set of advisories into an Index once: every event version
// is parsed under its ecosystem's rules, release scopes are resolved, and
// each affected entry's rating and fix status are decided, so that Match
// parses nothing of the advisories and only looks packages up by
// (ecosystem, name).
//
// Matching follows the OSV schema's evaluation: an affected entry matches
// a version listed in its versions, or one inside any of its ranges (OR),
// where a range's events are sorted by version and the version is affected
// when the last event at or below it is an introduced event (an
// introduced "0" is the beginning of time, last_affected covers the
// version itself, fixed does not) and it is below one of the range's limit
// events, if any. GIT ranges are not evaluated (an entry's versions still
// count). An entry with neither ranges nor versions affects every version,
// as govulncheck reads the Go database.
//
// Debian, Ubuntu and Alpine advisories name source packages: a package
// with a SourceName is looked up by it (and its SourceVersion, when set).
// Release-scoped entries ("Alpine:v3.9") match only packages on an image
// of that release (see ecosystem.ReleaseKey). Go modules are matched as
// govulncheck -mode=binary -scan=module does: versions without their "v",
// the stdlib pseudo-package at the Go version the binary was built with,
// and a package with no version matching nothing.
//
// Go advisories may be platform-specific: an affected entry's
// ecosystem_specific.imports list the packages it is about, each with the
// GOOS and GOARCH values it affects (an empty list meaning all). As in
// govulncheck (golang.org/x/vuln internal/vulncheck
// affectingVulnerabilities), an entry affects a package whose Platform is
// "GOOS/GOARCH" when it lists no imports, or when one of its imports has
// a goos list that is empty or holds GOOS and a goarch list that is empty
// or holds GOARCH; an empty GOOS or GOARCH (a binary that does not record
// it, or a package with no Platform) matches every list. An entry that
// does not affect the package's platform is left out of the finding, its
// fixed versions too; an advisory none of whose entries affects it gives
// no finding. Symbol and package filters are not applied, so customs
// reports govulncheck's module-level findings.
package match

import (
	"slices"
	"strings"

	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/vulndb/ecosystem"
	"github.com/customs-dev/customs/internal/vulndb/osv"
	"github.com/customs-dev/customs/internal/vulndb/severity"
)

// Lookup gives ratings from outside the advisory: operator overrides and
// CVE feeds. ids are the advisory id, then its aliases, then its upstream
// ids; an implementation returns the rating of the first (or most
// relevant) id it knows.
type Lookup interface {
	Override(ids []string) (severity.Rating, bool)
	Feed(ids []string) (severity.Rating, bool)
}

// PackageKey identifies the packages an advisory entry is about: the base
// ecosystem and the package name as advisories write it (normalized, see
// KeyOf).
type PackageKey struct{ Ecosystem, Name string }

// Status says whether a fix exists for a finding.
type Status string

// Statuses.
const (
	// StatusFixed means a version that fixes the vulnerability exists
	// (Finding.Fixed lists it).
	StatusFixed Status = "fixed"
	// StatusNoFix means no fixed version is known.
	StatusNoFix Status = "no-fix"
	// StatusWontFix means no fixed version is known and the distribution
	// has said it will not fix it in this release (Debian: urgency
	// "unimportant" or "end-of-life" on an entry without a fix).
	StatusWontFix Status = "wont-fix"
)

// Finding is one advisory affecting one installed package.
type Finding struct {
	AdvisoryID string `json:"advisoryID"`
	// Aliases are the advisory's aliases followed by its upstream ids
	// (Alpine and Debian records name their CVE as upstream), without
	// duplicates.
	Aliases []string `json:"aliases,omitempty"`
	// Summary is the advisory's summary, or the first line of its details
	// when it has none.
	Summary  string          `json:"summary,omitempty"`
	Severity severity.Rating `json:"severity"`
	// Package is the installed package (the binary package for OS
	// packages matched through their source package).
	Package inventory.Package `json:"package"`
	// Fixed are the fixed versions the advisory gives for this package in
	// this ecosystem and release that are above the installed version,
	// lowest first.
	Fixed      []string        `json:"fixed,omitempty"`
	Status     Status          `json:"status"`
	References []osv.Reference `json:"references,omitempty"`
}

// Index is a set of advisories prepared for matching. It is read-only
// after Build and safe for concurrent use.
type Index struct {
	advisories map[string]*advisory
	byKey      map[PackageKey]*keyIndex
	rules      map[string]*ecosystem.Rules
}

type advisory struct {
	v       *osv.Vulnerability
	aliases []string
	summary string
	keys    []PackageKey
}

// entry is one affected[] element of an advisory, pre-parsed.
type entry struct {
	adv *advisory
	key PackageKey
	// scoped entries match only images whose distribution (of base
	// ecosystem key.Ecosystem) has release releaseKey; matchable is false
	// for a release no image has.
	scoped     bool
	releaseKey string
	matchable  bool
	ranges     []vrange
	versions   map[string]struct{}
	// all is set when the entry has neither ranges nor versions.
	all     bool
	fixed   []ecosystem.Version // sorted, distinct
	wontFix bool
	rating  severity.Rating
	// platforms are the GOOS/GOARCH lists of a Go entry's
	// ecosystem_specific.imports, one per import; nil when the entry
	// affects every platform (see the package doc).
	platforms []goPlatform
}

// goPlatform is the goos and goarch lists of one import of a Go advisory
// entry; an empty list allows every value.
type goPlatform struct{ goos, goarch []string }

// platform is the GOOS and GOARCH of an installed package, "" for each
// part it does not know.
type platform struct{ goos, goarch string }

// platformOf reads inventory.Package.Platform ("linux/amd64"); a variant
// after the architecture ("linux/arm/v7") is not part of GOARCH.
func platformOf(s string) platform {
	goos, rest, _ := strings.Cut(s, "/")
	goarch, _, _ := strings.Cut(rest, "/")
	return platform{goos: goos, goarch: goarch}
}

// onPlatform reports whether the entry affects packages of pl: it has no
// import restriction, or one of its imports allows pl's GOOS and GOARCH
// (govulncheck's matchesPlatform).
func (e *entry) onPlatform(pl platform) bool {
	if e.platforms == nil || (pl.goos == "" && pl.goarch == "") {
		return true
	}
	for _, gp := range e.platforms {
		if allows(gp.goos, pl.goos) && allows(gp.goarch, pl.goarch) {
			return true
		}
	}
	return false
}

// allows is govulncheck's matchesPlatformComponent: an empty value or an
// empty list matches.
func allows(list []string, v string) bool {
	return v == "" || len(list) == 0 || slices.Contains(list, v)
}

type eventKind uint8

const (
	evIntroduced eventKind = iota
	evLastAffected
	evFixed
)

type event struct {
	kind eventKind
	zero bool // introduced "0"
	v    ecosystem.Version
}

type vrange struct {
	events []event // sorted by version, introduced "0" first
	limits []ecosystem.Version
}

// Len is the number of advisories in the index.
func (ix *Index) Len() int { return len(ix.advisories) }

// Advisory returns the record with the given id, if the index holds it
// (merged from several records of that id, see Build). The record is
// shared with the index: callers must not modify it.
func (ix *Index) Advisory(id string) (*osv.Vulnerability, bool) {
	a, ok := ix.advisories[id]
	if !ok {
		return nil, false
	}
	return a.v, true
}

// Keys returns the (base ecosystem, normalized name) keys of the packages
// an advisory names, sorted; nil for an id the index does not hold. A
// stored inventory can be affected by the advisory only if KeyOf one of
// its packages is among them.
func (ix *Index) Keys(advisoryID string) []PackageKey {
	a, ok := ix.advisories[advisoryID]
	if !ok {
		return nil
	}
	return slices.Clone(a.keys)
}

// sourceKeyed are the ecosystems whose advisories name source packages.
func sourceKeyed(base string) bool {
	return base == inventory.Debian || base == inventory.Ubuntu || base == inventory.Alpine
}

// KeyOf returns the key an installed package is looked up by, and the
// version it is matched at: for Debian, Ubuntu and Alpine packages with a
// SourceName, the source package (and SourceVersion when set); names are
// normalized per ecosystem (PyPI: PEP 503). ok is false for a package of
// an unknown ecosystem.
func KeyOf(p inventory.Package) (key PackageKey, version string, ok bool) {
	rules, err := ecosystem.For(p.Ecosystem)
	if err != nil {
		return PackageKey{}, "", false
	}
	key, version = keyOf(rules, p)
	return key, version, true
}

func keyOf(rules *ecosystem.Rules, p inventory.Package) (PackageKey, string) {
	name, version := p.Name, p.Version
	if sourceKeyed(p.Ecosystem) && p.SourceName != "" {
		name = p.SourceName
		if p.SourceVersion != "" {
			version = p.SourceVersion
		}
	}
	return PackageKey{Ecosystem: p.Ecosystem, Name: rules.NormalizeName(name)}, version
}

// distroRelease is an image's distribution release, resolved once.
type distroRelease struct {
	base, key string
	ok        bool
}

func resolveDistro(d *inventory.Distro) distroRelease {
	base, key, ok := ecosystem.DistroRelease(d)
	return distroRelease{base: base, key: key, ok: ok}
}

// Match returns the findings for every package of inv, sorted by severity
// (level, then score, highest first), then advisory id, then package
// ecosystem, name and version. An advisory that matches the same package
// (ecosystem, name, version) found more than once gives one finding whose
// Package lists the locations of all of them (and has no Platform when
// theirs differ: Go binaries of two platforms). Findings share their
// Aliases and References slices with the index: callers must not modify
// them.
func (ix *Index) Match(inv *inventory.Inventory) []Finding {
	if inv == nil {
		return nil
	}
	dr := resolveDistro(inv.Distro)
	out := make([]Finding, 0, len(inv.Packages))
	for _, p := range inv.Packages {
		out = ix.matchPackage(out, dr, p)
	}
	sortFindings(out)
	// Duplicates are now adjacent: same advisory and package means same
	// rating.
	w := 0
	for i := range out {
		if w > 0 && sameFinding(&out[w-1], &out[i]) {
			prev := &out[w-1].Package
			locs := slices.Clone(prev.Locations)
			for _, l := range out[i].Package.Locations {
				if !slices.Contains(locs, l) {
					locs = append(locs, l)
				}
			}
			prev.Locations = locs
			if prev.Platform != out[i].Package.Platform {
				prev.Platform = ""
			}
			continue
		}
		out[w] = out[i]
		w++
	}
	clear(out[w:])
	return out[:w]
}

func sameFinding(a, b *Finding) bool {
	return a.AdvisoryID == b.AdvisoryID && a.Package.Ecosystem == b.Package.Ecosystem &&
		a.Package.Name == b.Package.Name && a.Package.Version == b.Package.Version
}

// MatchPackage returns the findings for one package installed on an image
// of distribution d (nil when unknown: then release-scoped advisories do
// not match), sorted as Match sorts them.
func (ix *Index) MatchPackage(d *inventory.Distro, p inventory.Package) []Finding {
	out := ix.matchPackage(nil, resolveDistro(d), p)
	sortFindings(out)
	return out
}

// matchPackage appends the findings for p to dst; entries that do not
// affect p's platform are left out (see the package doc).
func (ix *Index) matchPackage(dst []Finding, dr distroRelease, p inventory.Package) []Finding {
	rules, ok := ix.rules[p.Ecosystem]
	if !ok {
		return dst // no advisory of this ecosystem in the index
	}
	key, version := keyOf(rules, p)
	ki := ix.byKey[key]
	if ki == nil || version == "" {
		return dst
	}
	all := ki.all
	var scoped []*group
	if dr.ok && dr.base == key.Ecosystem {
		scoped = ki.byRelease[dr.key]
	}
	if len(all) == 0 && len(scoped) == 0 {
		return dst
	}
	if len(all) > 0 && len(scoped) > 0 {
		// Rare: an advisory with both kinds of entries for one package
		// must still give one finding; join its groups.
		all, scoped = joinGroups(scoped, all), nil
	}
	listed, err := rules.NormalizeInstalled(key.Name, version)
	if err != nil {
		listed = version
	}
	installed, perr := rules.ParseInstalled(key.Name, version)
	parsed := perr == nil
	pl := platformOf(p.Platform)
	for _, list := range [2][]*group{all, scoped} {
		for _, g := range list {
			dst = g.match(dst, p, listed, installed, parsed, pl)
		}
	}
	return dst
}

// match appends the finding of g's advisory for package p, if any of its
// entries that affect platform pl affects the installed version.
func (g *group) match(dst []Finding, p inventory.Package, listed string, installed ecosystem.Version, parsed bool, pl platform) []Finding {
	entries := onPlatform(g.entries, pl)
	var hit, wont bool
	var rating severity.Rating
	for _, e := range entries {
		if !e.affects(listed, installed, parsed) {
			continue
		}
		if !hit || higher(e.rating, rating) {
			rating = e.rating
		}
		hit = true
		wont = wont || e.wontFix
	}
	if !hit {
		return dst
	}
	f := Finding{
		AdvisoryID: g.adv.v.ID,
		Aliases:    g.adv.aliases,
		Summary:    g.adv.summary,
		Severity:   rating,
		Package:    p,
		References: g.adv.v.References,
	}
	if parsed {
		f.Fixed = fixedAbove(entries, installed)
	}
	switch {
	case len(f.Fixed) > 0:
		f.Status = StatusFixed
	case wont:
		f.Status = StatusWontFix
	default:
		f.Status = StatusNoFix
	}
	return append(dst, f)
}

// onPlatform returns the entries that affect platform pl: entries itself
// when all of them do (no copy), else a new slice.
func onPlatform(entries []*entry, pl platform) []*entry {
	for i, e := range entries {
		if e.onPlatform(pl) {
			continue
		}
		out := slices.Clone(entries[:i])
		for _, e := range entries[i+1:] {
			if e.onPlatform(pl) {
				out = append(out, e)
			}
		}
		return out
	}
	return entries
}

// fixedAbove returns the fixed versions of entries above installed,
// lowest first, without duplicates.
func fixedAbove(entries []*entry, installed ecosystem.Version) []string {
	if len(entries) == 1 {
		// One entry's list is sorted and distinct: take its tail.
		fixed := entries[0].fixed
		i := len(fixed)
		for i > 0 && fixed[i-1].Compare(installed) > 0 {
			i--
		}
		if i == len(fixed) {
			return nil
		}
		out := make([]string, 0, len(fixed)-i)
		for _, fx := range fixed[i:] {
			out = append(out, fx.String())
		}
		return out
	}
	var vs []ecosystem.Version
	for _, e := range entries {
		for _, fx := range e.fixed {
			if fx.Compare(installed) > 0 {
				vs = append(vs, fx)
			}
		}
	}
	slices.SortStableFunc(vs, ecosystem.Version.Compare)
	var out []string
	for _, fx := range vs {
		if !slices.Contains(out, fx.String()) {
			out = append(out, fx.String())
		}
	}
	return out
}

// joinGroups merges two group lists so that each advisory has one group.
func joinGroups(a, b []*group) []*group {
	out := make([]*group, 0, len(a)+len(b))
	at := make(map[*advisory]int, len(a)+len(b))
	for _, list := range [2][]*group{a, b} {
		for _, g := range list {
			if i, ok := at[g.adv]; ok {
				out[i] = &group{adv: g.adv, entries: append(slices.Clone(out[i].entries), g.entries...)}
				continue
			}
			at[g.adv] = len(out)
			out = append(out, g)
		}
	}
	return out
}

// affects reports whether the entry's versions include the installed
// version (listed: as advisories write it; installed: parsed, when parsed).
func (e *entry) affects(listed string, installed ecosystem.Version, parsed bool) bool {
	if e.all {
		return true
	}
	if _, ok := e.versions[listed]; ok {
		return true
	}
	if !parsed {
		return false
	}
	for i := range e.ranges {
		if e.ranges[i].contains(installed) {
			return true
		}
	}
	return false
}

func higher(a, b severity.Rating) bool {
	if a.Level != b.Level {
		return a.Level > b.Level
	}
	return a.Score > b.Score
}

// sortFindings sorts fs in the order Match documents. It sorts indexes
// and moves each (large) Finding once.
func sortFindings(fs []Finding) {
	if len(fs) < 2 {
		return
	}
	idx := make([]int, len(fs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(i, j int) int { return compareFindings(&fs[i], &fs[j]) })
	sorted := make([]Finding, len(fs))
	for k, i := range idx {
		sorted[k] = fs[i]
	}
	copy(fs, sorted)
}

func compareFindings(a, b *Finding) int {
	if a.Severity.Level != b.Severity.Level {
		return int(b.Severity.Level) - int(a.Severity.Level)
	}
	if a.Severity.Score != b.Severity.Score {
		if a.Severity.Score > b.Severity.Score {
			return -1
		}
		return 1
	}
	if c := strings.Compare(a.AdvisoryID, b.AdvisoryID); c != 0 {
		return c
	}
	if c := strings.Compare(a.Package.Ecosystem, b.Package.Ecosystem); c != 0 {
		return c
	}
	if c := strings.Compare(a.Package.Name, b.Package.Name); c != 0 {
		return c
	}
	return strings.Compare(a.Package.Version, b.Package.Version)
}
