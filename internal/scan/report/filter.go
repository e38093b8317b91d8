package report

import (
	"fmt"
	"slices"

	"github.com/customs-dev/customs/internal/vulndb/severity"
)

// WithoutUnfixed returns a copy of r without the findings that have no
// fixed version (status no-fix or wont-fix), with Counts recounted. r is
// not changed; the copy shares everything but the findings slice.
func WithoutUnfixed(r *Report) *Report {
	out := *r
	out.Findings = slices.DeleteFunc(slices.Clone(r.Findings), func(f Finding) bool {
		return len(f.FixedVersions) == 0
	})
	out.Counts = CountFindings(out.Findings)
	return &out
}

// Threshold is a severity a CI gate fails on (customs scan --fail-on).
//
// A threshold of a level on the scale (none, low, medium, high, critical)
// is met by a finding rated at or above it; a finding whose severity is
// unknown does not meet it, because nothing says how severe it is. The
// threshold "unknown" is the bottom of the order: every finding meets it,
// rated or not, so `--fail-on unknown` fails on any finding at all.
type Threshold struct{ level severity.Level }

// ParseThreshold reads a threshold: a severity level name (see
// severity.ParseLevel, synonyms included). Errors name the word.
func ParseThreshold(s string) (Threshold, error) {
	l, err := severity.ParseLevel(s)
	if err != nil {
		return Threshold{}, fmt.Errorf("fail-on: %w (want critical, high, medium, low, none or unknown)", err)
	}
	return Threshold{level: l}, nil
}

// Level is the threshold's level.
func (t Threshold) Level() severity.Level { return t.level }

// String is the threshold's level name.
func (t Threshold) String() string { return t.level.String() }

// Met reports whether a finding of severity level l meets t.
func (t Threshold) Met(l severity.Level) bool {
	if t.level == severity.Unknown {
		return true
	}
	return l.Known() && l >= t.level
}

// Exceeding returns the findings of r that meet t, in r's order.
func (t Threshold) Exceeding(r *Report) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if t.Met(f.Severity.Level) {
			out = append(out, f)
		}
	}
	return out
}
