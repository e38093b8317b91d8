package severity

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/customs-dev/customs/internal/vulndb/osv"
)

// Source says where a rating came from.
type Source string

// Sources, from the highest precedence to the lowest (see Resolve).
const (
	// SourceOverride is an operator's override.
	SourceOverride Source = "override"
	// SourceCVSSv4, SourceCVSSv3 and SourceCVSSv2 are a CVSS vector in the
	// advisory itself.
	SourceCVSSv4 Source = "advisory-cvss-v4"
	SourceCVSSv3 Source = "advisory-cvss-v3"
	SourceCVSSv2 Source = "advisory-cvss-v2"
	// SourceDatabaseSpecific is a severity word of the advisory's database
	// (GHSA's database_specific.severity, an ecosystem_specific.severity,
	// Ubuntu's priority).
	SourceDatabaseSpecific Source = "advisory-database-specific"
	// SourceCVEFeed is a CVE severity feed (NVD, CVE JSON 5) reached
	// through the advisory's id, aliases or upstream ids.
	SourceCVEFeed Source = "cve-feed"
	// SourceUnknown means nothing rated the vulnerability.
	SourceUnknown Source = "unknown"
)

// Rating is the severity of a vulnerability and where it came from.
type Rating struct {
	Level Level `json:"level"`
	// Score is the CVSS base score (0 when the rating is not from CVSS).
	Score float64 `json:"score,omitempty"`
	// Vector is the CVSS vector the score was computed from, if any.
	Vector string `json:"vector,omitempty"`
	Source Source `json:"source"`
	// Detail says more about the source, for display: which field, which
	// feed record, or which CVSS vectors were ignored as invalid.
	Detail string `json:"detail,omitempty"`
}

// UnknownRating is the rating of a vulnerability nothing rated.
func UnknownRating() Rating { return Rating{Level: Unknown, Source: SourceUnknown} }

// FromCVSS rates a CVSS vector of an advisory (source advisory-cvss-vN).
func FromCVSS(vector string) (Rating, error) {
	c, err := ParseCVSS(vector)
	if err != nil {
		return Rating{}, err
	}
	src := SourceCVSSv2
	switch c.Version {
	case CVSS40:
		src = SourceCVSSv4
	case CVSS30, CVSS31:
		src = SourceCVSSv3
	}
	return Rating{Level: c.Level, Score: c.Score, Vector: c.Vector, Source: src}, nil
}

// Resolve picks the rating of a finding for the affected entry a (nil for
// the advisory as a whole) of advisory v. The precedence, highest first:
//
//  1. an operator override, from override(): by advisory id or any alias;
//  2. a CVSS vector of the advisory: in a.severity, then in the
//     record's top-level severity; within each, CVSS v4 over v3 over v2,
//     and the first valid vector of a version; invalid vectors are skipped
//     and named in Detail;
//  3. a severity word of the advisory's database: a's "Ubuntu" severity,
//     a.ecosystem_specific.severity, a.database_specific.severity, the
//     record's "Ubuntu" severity, the record's database_specific.severity
//     (GHSA: LOW, MODERATE, HIGH, CRITICAL);
//  4. a CVE severity feed, from feed(): through the advisory's id, aliases
//     and upstream ids;
//  5. unknown.
//
// override and feed may be nil; each is called at most once, and only when
// everything above it gave nothing.
func Resolve(v *osv.Vulnerability, a *osv.Affected, override, feed func() (Rating, bool)) Rating {
	if override != nil {
		if r, ok := override(); ok {
			r.Source = SourceOverride
			return r
		}
	}
	var ignored []string
	var lists [][]osv.Severity
	if a != nil {
		lists = append(lists, a.Severity)
	}
	lists = append(lists, v.Severity)
	for i, list := range lists {
		where := "severity"
		if a != nil && i == 0 {
			where = "affected[].severity"
		}
		r, ok, bad := bestCVSS(list)
		ignored = append(ignored, bad...)
		if ok {
			r.Detail = join(fmt.Sprintf("%s %s", where, r.Vector), ignored)
			return r
		}
	}
	if r, ok := fromWords(v, a); ok {
		r.Detail = join(r.Detail, ignored)
		return r
	}
	if feed != nil {
		if r, ok := feed(); ok {
			r.Source = SourceCVEFeed
			r.Detail = join(r.Detail, ignored)
			return r
		}
	}
	r := UnknownRating()
	r.Detail = join("", ignored)
	return r
}

func join(detail string, ignored []string) string {
	if len(ignored) == 0 {
		return detail
	}
	msg := "ignored invalid " + strings.Join(ignored, "; ")
	if detail == "" {
		return msg
	}
	return detail + " (" + msg + ")"
}

// bestCVSS returns the rating of the newest CVSS version in list, and
// descriptions of the invalid vectors it skipped.
func bestCVSS(list []osv.Severity) (best Rating, ok bool, ignored []string) {
	rank := map[Source]int{SourceCVSSv2: 1, SourceCVSSv3: 2, SourceCVSSv4: 3}
	for _, s := range list {
		switch s.Type {
		case osv.SeverityCVSSv2, osv.SeverityCVSSv3, osv.SeverityCVSSv4:
		default:
			continue
		}
		r, err := FromCVSS(s.Score)
		if err != nil {
			ignored = append(ignored, fmt.Sprintf("%s %q", s.Type, s.Score))
			continue
		}
		if !ok || rank[r.Source] > rank[best.Source] {
			best, ok = r, true
		}
	}
	return best, ok, ignored
}

// fromWords applies step 3 of Resolve.
func fromWords(v *osv.Vulnerability, a *osv.Affected) (Rating, bool) {
	type cand struct {
		where string
		word  string
	}
	var cands []cand
	if a != nil {
		cands = append(cands, cand{"affected[].severity Ubuntu", ubuntuWord(a.Severity)})
		cands = append(cands, cand{"affected[].ecosystem_specific.severity", specificWord(a.EcosystemSpecific)})
		cands = append(cands, cand{"affected[].database_specific.severity", specificWord(a.DatabaseSpecific)})
	}
	cands = append(cands, cand{"severity Ubuntu", ubuntuWord(v.Severity)})
	cands = append(cands, cand{"database_specific.severity", specificWord(v.DatabaseSpecific)})
	for _, c := range cands {
		if c.word == "" {
			continue
		}
		l, err := ParseLevel(c.word)
		if err != nil || !l.Known() {
			continue
		}
		return Rating{Level: l, Source: SourceDatabaseSpecific, Detail: fmt.Sprintf("%s %q", c.where, c.word)}, true
	}
	return Rating{}, false
}

func ubuntuWord(list []osv.Severity) string {
	for _, s := range list {
		if s.Type == osv.SeverityUbuntu {
			return s.Score
		}
	}
	return ""
}

// specificWord reads a string "severity" field of a database_specific or
// ecosystem_specific object; anything else gives "".
func specificWord(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var obj struct {
		Severity json.RawMessage `json:"severity"`
	}
	if json.Unmarshal(raw, &obj) != nil || len(obj.Severity) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(obj.Severity, &s) != nil {
		return ""
	}
	return s
}
