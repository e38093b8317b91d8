package policy

import (
	"fmt"
	"strings"
)

// Severity is a vulnerability severity. None < Low < Medium < High <
// Critical; Unknown (the zero value) is below None only for sorting: the
// vulnerabilities rule decides what it counts as (VulnerabilitiesRule.UnknownAs).
// The numbering matches the scanner's levels, so doors can convert by name
// or by number.
type Severity int8

// Severities.
const (
	Unknown Severity = iota
	None
	Low
	Medium
	High
	Critical
)

var severityNames = [...]string{"unknown", "none", "low", "medium", "high", "critical"}

// thresholdWords lists the severities a threshold may be.
const thresholdWords = "none, low, medium, high, critical"

// String returns the lower-case name ("unknown", "none", ... "critical").
func (s Severity) String() string {
	if s < Unknown || s > Critical {
		return fmt.Sprintf("Severity(%d)", int8(s))
	}
	return severityNames[s]
}

// ParseSeverity reads a lower-case severity name, including "unknown".
// Anything else is an error naming the word.
func ParseSeverity(w string) (Severity, error) {
	for i, n := range severityNames {
		if w == n {
			return Severity(i), nil
		}
	}
	return Unknown, fmt.Errorf("%q is not one of unknown, %s", w, thresholdWords)
}

// MarshalText writes the name.
func (s Severity) MarshalText() ([]byte, error) {
	if s < Unknown || s > Critical {
		return nil, fmt.Errorf("invalid severity %d", int8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads a name as ParseSeverity does, ignoring case (scanner
// outputs say "High").
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(strings.ToLower(string(b)))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Ptr returns a pointer to s, for VulnerabilitiesRule.MaxSeverity.
func (s Severity) Ptr() *Severity { return &s }
