// Package severity rates vulnerabilities: severity levels, CVSS base scores
// (v2, v3.0, v3.1, v4.0) computed from vectors, the ratings an advisory
// carries, ratings from CVE severity feeds (NVD CVE API 2.0 and CVE JSON 5),
// and the precedence that picks one rating for a finding (see Resolve).
//
// Unknown is a real level: a vulnerability nobody has rated is reported as
// unknown, never silently as low.
package severity

import (
	"fmt"
	"strings"
)

// Level is a qualitative severity. Levels from None to Critical are
// ordered (None < Low < Medium < High < Critical); Unknown is outside that
// scale and sorts below None only so that lists have a stable order:
// callers that compare levels (policies: "deny High and above") must test
// for Unknown themselves and decide what it means.
type Level int8

// Levels.
const (
	Unknown Level = iota
	None
	Low
	Medium
	High
	Critical
)

var levelNames = [...]string{"unknown", "none", "low", "medium", "high", "critical"}

// String returns the lower-case name of l ("unknown", "none", "low",
// "medium", "high", "critical").
func (l Level) String() string {
	if l < Unknown || l > Critical {
		return fmt.Sprintf("Level(%d)", int8(l))
	}
	return levelNames[l]
}

// Known reports whether l is on the scale (not Unknown).
func (l Level) Known() bool { return l > Unknown && l <= Critical }

// ParseLevel reads a severity word, case-insensitively: the level names,
// and the synonyms feeds use ("moderate" -> Medium as GitHub advisories say
// it, "important" -> High as Red Hat says it, "negligible" -> Low and
// "untriaged" -> Unknown as Ubuntu says them). Anything else is an error
// that names the word.
func ParseLevel(s string) (Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "unknown", "untriaged":
		return Unknown, nil
	case "none":
		return None, nil
	case "low", "negligible":
		return Low, nil
	case "medium", "moderate":
		return Medium, nil
	case "high", "important":
		return High, nil
	case "critical":
		return Critical, nil
	}
	return Unknown, fmt.Errorf("unknown severity level %q", s)
}

// MarshalText writes the name of l.
func (l Level) MarshalText() ([]byte, error) {
	if l < Unknown || l > Critical {
		return nil, fmt.Errorf("invalid severity level %d", int8(l))
	}
	return []byte(l.String()), nil
}

// UnmarshalText reads a level as ParseLevel does.
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}
