package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// allowEntry is an allowlist entry with its repository glob compiled and
// the name of the list it is in ("policy X", "project kuard allowlist",
// "system allowlist").
type allowEntry struct {
	e    *AllowlistEntry
	repo *namePattern
	from string
}

func compileEntry(a *AllowlistEntry, from string) (allowEntry, error) {
	if err := checkAdvisoryID(a.ID); err != nil {
		return allowEntry{}, fmt.Errorf("id: %v", err)
	}
	ae := allowEntry{e: a, from: from}
	if a.Repository != "" {
		np, err := compileNamePattern(a.Repository)
		if err != nil {
			return allowEntry{}, fmt.Errorf("repository: %v", err)
		}
		ae.repo = np
	}
	return ae, nil
}

// appliesTo reports whether the entry names the finding (ignoring expiry).
func (a *allowEntry) appliesTo(f *Finding, st *evalState) bool {
	if !idMatches(a.e.ID, f) {
		return false
	}
	if a.e.Package != "" && a.e.Package != f.Package && a.e.Package != f.SourcePackage {
		return false
	}
	if a.e.Repository != "" {
		if a.repo == nil {
			np, err := compileNamePattern(a.e.Repository)
			if err != nil {
				return false // a bad external entry allows nothing
			}
			a.repo = np
		}
		if !a.repo.match(&st.subj) {
			return false
		}
	}
	return true
}

func idMatches(id string, f *Finding) bool {
	if strings.EqualFold(id, f.ID) {
		return true
	}
	for _, al := range f.Aliases {
		if strings.EqualFold(id, al) {
			return true
		}
	}
	return false
}

// describe is how a note names the entry: "FROM entry ID (package P,
// repository R, added by A, reason "…")".
func (a *allowEntry) describe() string {
	var b strings.Builder
	b.Grow(len(a.from) + len(a.e.ID) + len(a.e.Package) + len(a.e.Repository) + len(a.e.AddedBy) + len(a.e.Reason) + 64)
	b.WriteString(a.from)
	b.WriteString(" entry ")
	b.WriteString(a.e.ID)
	sep := " ("
	part := func(label, v string) {
		if v == "" {
			return
		}
		b.WriteString(sep)
		b.WriteString(label)
		b.WriteString(v)
		sep = ", "
	}
	part("package ", a.e.Package)
	part("repository ", a.e.Repository)
	part("added by ", a.e.AddedBy)
	if a.e.Reason != "" {
		part("reason ", strconv.Quote(a.e.Reason))
	}
	if sep == ", " {
		b.WriteString(")")
	}
	return b.String()
}

// displayID is the id shown for a finding: its id when it is a CVE id,
// else its first CVE alias, else its id.
func displayID(f *Finding) string {
	if strings.HasPrefix(f.ID, "CVE-") {
		return f.ID
	}
	for _, a := range f.Aliases {
		if strings.HasPrefix(a, "CVE-") {
			return a
		}
	}
	return f.ID
}

// evalVulnerabilities applies c's vulnerabilities rule; nil when it passes.
func (e *Engine) evalVulnerabilities(st *evalState, c *compiled) *Violation {
	r := c.vuln
	scan := st.in.Scan
	where := func() string {
		if of := c.p.Metadata.Annotations[AnnotationThresholdOf]; of != "" {
			return "of " + of
		}
		if c.project {
			return "in project setting"
		}
		return "in " + c.ref.String()
	}
	if scan == nil || scan.Status != ScanDone {
		state := "has not been scanned yet (scan pending)"
		if scan != nil {
			switch scan.Status {
			case ScanQueued, ScanRunning:
				state = fmt.Sprintf("has not been scanned yet (scan pending: %s)", scan.Status)
			case ScanFailed:
				state = "could not be scanned (scan failed: " + cmp.Or(scan.Reason, "no reason given") + ")"
			case ScanUnsupported:
				state = "cannot be scanned (" + cmp.Or(scan.Reason, "unsupported") + ")"
			}
		}
		if !r.ScanRequired() {
			st.note("%s %s; %s does not require a scan.", st.img.Name(), state, c.ref.String())
			return nil
		}
		if scan != nil && scan.Status == ScanUnsupported && r.AllowUnscannable {
			st.note("%s %s; %s lets artifacts that cannot be scanned through.", st.img.Name(), state, c.ref.String())
			return nil
		}
		msg := fmt.Sprintf("The image %s, and a scan is required %s", state, where())
		if r.MaxSeverity != nil {
			msg += fmt.Sprintf(" (threshold: %q)", r.MaxSeverity.String())
		}
		msg += "."
		remedy := "wait for the scan to finish"
		if scan != nil && (scan.Status == ScanFailed || scan.Status == ScanUnsupported) {
			remedy = "scan the image again once the cause is fixed (customs scan), or set requireScan: false in " + c.ref.String()
		}
		msg += " To allow, " + remedy + "."
		pending := scan == nil || scan.Status == ScanQueued || scan.Status == ScanRunning
		return &Violation{Policy: c.ref, Mode: c.modes[RuleVulnerabilities], Rule: RuleVulnerabilities, Message: msg, Remedy: remedy,
			ScanPending: pending, Failed: !pending, Threshold: r.MaxSeverity}
	}
	if r.MaxSeverity == nil {
		return nil
	}
	threshold := *r.MaxSeverity
	unknownLevel, countUnknown := r.UnknownLevel()
	var lists [][]allowEntry // built when a finding first reaches the threshold
	var blocking []BlockingFinding
	var highest Severity
	for i := range scan.Findings {
		f := &scan.Findings[i]
		if r.IgnoreUnfixed && f.EffectiveStatus() != Fixed {
			continue
		}
		sev := f.Severity
		if sev == Unknown {
			if !countUnknown {
				continue
			}
			sev = unknownLevel
		}
		if sev < threshold {
			continue
		}
		if lists == nil {
			lists = append(lists, c.inline)
			if r.SystemAllowlistApplies() {
				lists = append(lists, externalEntries(st.in.SystemAllowlist.Entries, "system allowlist"))
			}
		}
		if allowed := e.allowedBy(st, f, lists); allowed {
			continue
		}
		b := BlockingFinding{ID: displayID(f), Package: f.Package, Installed: f.Installed, Fixed: f.Fixed, Severity: f.Severity}
		if b.ID != f.ID {
			b.AdvisoryID = f.ID
		}
		if sev != f.Severity {
			s := sev
			b.CountedAs = &s
		}
		blocking = append(blocking, b)
		highest = max(highest, sev)
	}
	if len(blocking) == 0 {
		return nil
	}
	slices.SortFunc(blocking, func(a, b BlockingFinding) int {
		return cmp.Or(cmp.Compare(countedAs(b), countedAs(a)), cmp.Compare(a.ID, b.ID), cmp.Compare(a.Package, b.Package), cmp.Compare(a.Installed, b.Installed))
	})
	v := &Violation{Policy: c.ref, Mode: c.modes[RuleVulnerabilities], Rule: RuleVulnerabilities, Threshold: r.MaxSeverity, Highest: &highest, Findings: blocking}
	v.Remedy = e.allowRemedy(st, c, blocking)
	v.Message = vulnMessage(highest, threshold, where(), blocking, v.Remedy)
	return v
}

func countedAs(b BlockingFinding) Severity {
	if b.CountedAs != nil {
		return *b.CountedAs
	}
	return b.Severity
}

func externalEntries(list []AllowlistEntry, from string) []allowEntry {
	out := make([]allowEntry, len(list))
	for i := range list {
		out[i] = allowEntry{e: &list[i], from: from}
	}
	return out
}

// allowedBy reports whether an unexpired entry allows f, noting the entry
// used (and expired entries that would have) and recording its expiry.
func (e *Engine) allowedBy(st *evalState, f *Finding, lists [][]allowEntry) bool {
	var expired []*allowEntry
	for _, l := range lists {
		for i := range l {
			a := &l[i]
			if !a.appliesTo(f, st) {
				continue
			}
			if a.e.Expires != nil && !st.now.Before(*a.e.Expires) {
				expired = append(expired, a)
				continue
			}
			var b strings.Builder
			b.Grow(160)
			b.WriteString(displayID(f))
			b.WriteString(" in ")
			b.WriteString(f.Package)
			b.WriteString(" ")
			b.WriteString(f.Installed)
			b.WriteString(" is allowed by the ")
			b.WriteString(a.describe())
			if a.e.Expires != nil {
				b.WriteString(", until ")
				b.WriteString(a.e.Expires.UTC().Format(time.RFC3339))
				st.relyOn(a.e.Expires)
			}
			b.WriteString(".")
			st.notes = append(st.notes, b.String())
			return true
		}
	}
	for _, a := range expired {
		st.note("The %s expired at %s; it no longer allows %s in %s %s.", a.describe(), a.e.Expires.UTC().Format(time.RFC3339), displayID(f), f.Package, f.Installed)
	}
	return false
}

// maxRemedyIDs is how many advisory ids a suggested allowlist command
// names; beyond it the remedy is to fix the image.
const maxRemedyIDs = 10

// allowRemedy is the exact command that would allow the image despite the
// blocking findings: an allowlist entry in the policy that blocked it,
// named "--project P" for a project's settings policy (ProjectPolicyName)
// and "--policy NAME" otherwise.
func (e *Engine) allowRemedy(st *evalState, c *compiled, blocking []BlockingFinding) string {
	ids := make([]string, 0, len(blocking))
	for _, b := range blocking {
		if !slices.Contains(ids, b.ID) {
			ids = append(ids, b.ID)
		}
	}
	if len(ids) > maxRemedyIDs {
		return fmt.Sprintf("fix the image: %d advisories are at or above the threshold (customs scan report lists them)", len(ids))
	}
	var b strings.Builder
	b.Grow(128 + 20*len(ids))
	b.WriteString("customs allowlist add")
	for _, id := range ids {
		b.WriteString(" ")
		b.WriteString(id)
	}
	if c.ref.Name == ProjectPolicyName(st.in.Project) {
		b.WriteString(" --project ")
		b.WriteString(st.in.Project)
	} else {
		b.WriteString(" --policy ")
		b.WriteString(c.ref.Name)
	}
	b.WriteString(" --expires ")
	b.WriteString(e.cfg.SuggestedExpiry)
	b.WriteString(` --reason "…"`)
	return b.String()
}

// vulnMessage writes the Harbor-compatible message: Harbor's sentence
// (where is "in project setting" for a project policy), the blocking
// advisories, and the remedy.
func vulnMessage(highest, threshold Severity, where string, blocking []BlockingFinding, remedy string) string {
	var b strings.Builder
	b.Grow(256 + len(remedy))
	b.WriteString("The severity of vulnerability of the image: ")
	b.WriteString(strconv.Quote(highest.String()))
	b.WriteString(" is equal or higher than the threshold ")
	b.WriteString(where)
	b.WriteString(": ")
	b.WriteString(strconv.Quote(threshold.String()))
	b.WriteString(". Blocked by ")
	const shown = 3
	for i, f := range blocking {
		if i == shown {
			fmt.Fprintf(&b, " and %d more", len(blocking)-shown)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f.ID)
		b.WriteString(" (")
		b.WriteString(f.Package)
		b.WriteString(" ")
		b.WriteString(f.Installed)
		if len(f.Fixed) > 0 {
			b.WriteString(", fixed in ")
			b.WriteString(f.Fixed[0])
		} else {
			b.WriteString(", no fix yet")
		}
		b.WriteString(")")
	}
	b.WriteString(".")
	if strings.HasPrefix(remedy, "customs ") {
		b.WriteString(" To allow, fix the image or run: " + remedy)
	} else {
		b.WriteString(" To allow, " + remedy + ".")
	}
	return b.String()
}
