// Package osv holds the Open Source Vulnerability (OSV) record format
// (https://ossf.github.io/osv-schema/), the parts of it customs reads, and
// the parsing and validation of records from outside.
//
// Parse accepts JSON and YAML; unknown fields are ignored, as the schema
// asks, so records from newer schema versions still load. Validate checks
// what matching relies on and names the record and field at fault.
package osv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Range types.
const (
	RangeSemver    = "SEMVER"
	RangeEcosystem = "ECOSYSTEM"
	RangeGit       = "GIT"
)

// Severity types.
const (
	SeverityCVSSv2 = "CVSS_V2"
	SeverityCVSSv3 = "CVSS_V3"
	SeverityCVSSv4 = "CVSS_V4"
	SeverityUbuntu = "Ubuntu"
)

// Vulnerability is one OSV record.
type Vulnerability struct {
	SchemaVersion    string          `json:"schema_version,omitempty" yaml:"schema_version,omitempty"`
	ID               string          `json:"id" yaml:"id"`
	Modified         time.Time       `json:"modified" yaml:"modified"`
	Published        *time.Time      `json:"published,omitempty" yaml:"published,omitempty"`
	Withdrawn        *time.Time      `json:"withdrawn,omitempty" yaml:"withdrawn,omitempty"`
	Aliases          []string        `json:"aliases,omitempty" yaml:"aliases,omitempty"`
	Upstream         []string        `json:"upstream,omitempty" yaml:"upstream,omitempty"`
	Related          []string        `json:"related,omitempty" yaml:"related,omitempty"`
	Summary          string          `json:"summary,omitempty" yaml:"summary,omitempty"`
	Details          string          `json:"details,omitempty" yaml:"details,omitempty"`
	Severity         []Severity      `json:"severity,omitempty" yaml:"severity,omitempty"`
	Affected         []Affected      `json:"affected,omitempty" yaml:"affected,omitempty"`
	References       []Reference     `json:"references,omitempty" yaml:"references,omitempty"`
	DatabaseSpecific json.RawMessage `json:"database_specific,omitempty" yaml:"-"`
}

// Severity is a scored severity: Type is one of the Severity* constants and
// Score a vector string (CVSS) or a word (Ubuntu).
type Severity struct {
	Type  string `json:"type" yaml:"type"`
	Score string `json:"score" yaml:"score"`
}

// Package names the affected package.
type Package struct {
	Ecosystem string `json:"ecosystem" yaml:"ecosystem"`
	Name      string `json:"name" yaml:"name"`
	PURL      string `json:"purl,omitempty" yaml:"purl,omitempty"`
}

// Affected is one package (in one ecosystem, possibly release-scoped such
// as "Alpine:v3.9") and the versions of it that are affected.
type Affected struct {
	Package           Package         `json:"package" yaml:"package"`
	Severity          []Severity      `json:"severity,omitempty" yaml:"severity,omitempty"`
	Ranges            []Range         `json:"ranges,omitempty" yaml:"ranges,omitempty"`
	Versions          []string        `json:"versions,omitempty" yaml:"versions,omitempty"`
	EcosystemSpecific json.RawMessage `json:"ecosystem_specific,omitempty" yaml:"-"`
	DatabaseSpecific  json.RawMessage `json:"database_specific,omitempty" yaml:"-"`
}

// Range is a sequence of events over one version ordering.
type Range struct {
	Type   string  `json:"type" yaml:"type"`
	Repo   string  `json:"repo,omitempty" yaml:"repo,omitempty"`
	Events []Event `json:"events" yaml:"events"`
}

// Event is one point of a Range; exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty" yaml:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty" yaml:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty" yaml:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty" yaml:"limit,omitempty"`
}

// Reference is a link about the vulnerability.
type Reference struct {
	Type string `json:"type" yaml:"type"`
	URL  string `json:"url" yaml:"url"`
}

// Parse decodes one record. name (a file name or URL) decides the format:
// ".yaml" and ".yml" are YAML, anything else JSON. Errors name the record.
func Parse(name string, data []byte) (*Vulnerability, error) {
	var v Vulnerability
	lower := strings.ToLower(name)
	if strings.HasSuffix(lower, ".yaml") || strings.HasSuffix(lower, ".yml") {
		// YAML goes through a generic tree and back to JSON so that the
		// raw-message fields and time formats behave exactly as for JSON.
		var tree any
		if err := yaml.Unmarshal(data, &tree); err != nil {
			return nil, fmt.Errorf("%s: not a YAML OSV record: %w", name, err)
		}
		js, err := json.Marshal(normalizeYAML(tree))
		if err != nil {
			return nil, fmt.Errorf("%s: not a YAML OSV record: %w", name, err)
		}
		data = js
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%s: not an OSV record: %w", name, err)
	}
	return &v, nil
}

// normalizeYAML turns yaml.v3's map[string]any / []any tree into values
// encoding/json can marshal (time.Time values become RFC 3339 strings).
func normalizeYAML(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = normalizeYAML(e)
		}
		return t
	case []any:
		for i, e := range t {
			t[i] = normalizeYAML(e)
		}
		return t
	case time.Time:
		return t.UTC().Format(time.RFC3339Nano)
	default:
		return v
	}
}

// Validate checks the fields matching relies on: an id, a modified time,
// and for every affected package an ecosystem, a name, known range types,
// and well-formed event sequences (at least one event, each event setting
// exactly one field, a range with fixed/last_affected/limit events having an
// introduced event). It does not check version syntax, which depends on the
// ecosystem (package vulndb does that).
func (v *Vulnerability) Validate() error {
	if v.ID == "" {
		return fmt.Errorf("record has no id")
	}
	if v.Modified.IsZero() && v.Published == nil {
		// The Go database sets modified to the zero time: accept it when
		// published is present.
		return fmt.Errorf("%s: modified is missing", v.ID)
	}
	for i, a := range v.Affected {
		if a.Package.Ecosystem == "" {
			return fmt.Errorf("%s: affected[%d].package.ecosystem is missing", v.ID, i)
		}
		if a.Package.Name == "" {
			return fmt.Errorf("%s: affected[%d].package.name is missing", v.ID, i)
		}
		for j, r := range a.Ranges {
			where := fmt.Sprintf("%s: affected[%d].ranges[%d]", v.ID, i, j)
			switch r.Type {
			case RangeSemver, RangeEcosystem, RangeGit:
			default:
				return fmt.Errorf("%s.type %q is not SEMVER, ECOSYSTEM or GIT", where, r.Type)
			}
			if len(r.Events) == 0 {
				return fmt.Errorf("%s has no events", where)
			}
			introduced := false
			for k, e := range r.Events {
				n := 0
				for _, s := range []string{e.Introduced, e.Fixed, e.LastAffected, e.Limit} {
					if s != "" {
						n++
					}
				}
				if n != 1 {
					return fmt.Errorf("%s.events[%d] must set exactly one of introduced, fixed, last_affected, limit", where, k)
				}
				if e.Introduced != "" {
					introduced = true
				}
			}
			if !introduced {
				return fmt.Errorf("%s has no introduced event", where)
			}
		}
	}
	return nil
}

// IsWithdrawn reports whether the record has been withdrawn.
func (v *Vulnerability) IsWithdrawn() bool { return v.Withdrawn != nil }
