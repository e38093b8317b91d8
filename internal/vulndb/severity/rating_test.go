package severity

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/vulndb/osv"
)

const (
	v31Critical = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"                    // 9.8
	v31Medium   = "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"                    // 6.1
	v2High      = "AV:N/AC:L/Au:N/C:P/I:P/A:P"                                      // 7.5
	v40High     = "CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N" // 8.5
)

func found(r Rating) func() (Rating, bool) { return func() (Rating, bool) { return r, true } }
func missing() (Rating, bool)              { return Rating{}, false }

// TestResolvePrecedence walks the precedence of Resolve from the top: each
// case removes the source above and checks the next one wins.
func TestResolvePrecedence(t *testing.T) {
	ghsa := json.RawMessage(`{"severity":"MODERATE","cwe_ids":["CWE-79"]}`)
	override := found(Rating{Level: Low, Detail: "accepted risk, ticket SEC-12"})
	feed := found(Rating{Level: Critical, Score: 9.8, Vector: v31Critical, Source: SourceCVEFeed, Detail: "NVD CVE-2019-14697"})
	full := func() (*osv.Vulnerability, *osv.Affected) {
		v := &osv.Vulnerability{
			ID:               "GHSA-xxxx-yyyy-zzzz",
			Severity:         []osv.Severity{{Type: osv.SeverityCVSSv3, Score: v31Medium}},
			DatabaseSpecific: ghsa,
		}
		a := &osv.Affected{Severity: []osv.Severity{
			{Type: osv.SeverityCVSSv2, Score: v2High},
			{Type: osv.SeverityCVSSv4, Score: v40High},
			{Type: osv.SeverityCVSSv3, Score: v31Critical},
		}}
		return v, a
	}

	v, a := full()
	r := Resolve(v, a, override, feed)
	if r.Source != SourceOverride || r.Level != Low || r.Detail != "accepted risk, ticket SEC-12" {
		t.Errorf("with an override: %+v", r)
	}

	r = Resolve(v, a, missing, feed)
	if r.Source != SourceCVSSv4 || r.Level != High || r.Score != 8.5 || r.Vector != v40High {
		t.Errorf("affected CVSS v4 over v3 and v2: %+v", r)
	}
	if !strings.Contains(r.Detail, "affected[].severity") {
		t.Errorf("detail %q does not name the field", r.Detail)
	}

	a.Severity = a.Severity[:1] // only v2 left in affected: still above the record's v3
	r = Resolve(v, a, nil, feed)
	if r.Source != SourceCVSSv2 || r.Level != High || r.Score != 7.5 {
		t.Errorf("affected CVSS v2 over record-level v3: %+v", r)
	}

	a.Severity = nil
	r = Resolve(v, a, nil, feed)
	if r.Source != SourceCVSSv3 || r.Level != Medium || r.Score != 6.1 || r.Detail != "severity "+v31Medium {
		t.Errorf("record-level CVSS: %+v", r)
	}

	v.Severity = nil
	r = Resolve(v, a, nil, feed)
	if r.Source != SourceDatabaseSpecific || r.Level != Medium || !strings.Contains(r.Detail, "database_specific.severity") {
		t.Errorf("GHSA database_specific.severity: %+v", r)
	}

	a.EcosystemSpecific = json.RawMessage(`{"severity":"high"}`)
	r = Resolve(v, a, nil, feed)
	if r.Source != SourceDatabaseSpecific || r.Level != High || !strings.Contains(r.Detail, "ecosystem_specific") {
		t.Errorf("affected ecosystem_specific.severity over the record's: %+v", r)
	}
	a.EcosystemSpecific = nil

	a.Severity = []osv.Severity{{Type: osv.SeverityUbuntu, Score: "negligible"}}
	r = Resolve(v, a, nil, feed)
	if r.Source != SourceDatabaseSpecific || r.Level != Low {
		t.Errorf("Ubuntu priority: %+v", r)
	}
	a.Severity = nil

	v.DatabaseSpecific = json.RawMessage(`{"severity":"unrated-word","url":"x"}`)
	r = Resolve(v, a, nil, feed)
	if r.Source != SourceCVEFeed || r.Level != Critical || r.Detail != "NVD CVE-2019-14697" {
		t.Errorf("CVE feed: %+v", r)
	}

	r = Resolve(v, a, missing, missing)
	if r.Source != SourceUnknown || r.Level != Unknown {
		t.Errorf("nothing: %+v, want unknown", r)
	}
	r = Resolve(v, nil, nil, nil)
	if r.Source != SourceUnknown || r.Level != Unknown {
		t.Errorf("nil lookups, no affected: %+v, want unknown", r)
	}
}

func TestResolveCallsLookupsOnlyWhenNeeded(t *testing.T) {
	calls := 0
	feed := func() (Rating, bool) { calls++; return Rating{Level: High}, true }
	v := &osv.Vulnerability{ID: "X-1", Severity: []osv.Severity{{Type: osv.SeverityCVSSv3, Score: v31Critical}}}
	if r := Resolve(v, nil, nil, feed); r.Source != SourceCVSSv3 || calls != 0 {
		t.Errorf("feed consulted although the advisory has CVSS: %+v, %d calls", r, calls)
	}
}

func TestResolveSkipsInvalidVectors(t *testing.T) {
	v := &osv.Vulnerability{ID: "X-2", Severity: []osv.Severity{
		{Type: osv.SeverityCVSSv4, Score: "CVSS:4.0/AV:N/garbage"},
		{Type: osv.SeverityCVSSv3, Score: v31Medium},
	}}
	r := Resolve(v, nil, nil, nil)
	if r.Source != SourceCVSSv3 || r.Level != Medium {
		t.Fatalf("got %+v, want the valid v3 vector", r)
	}
	if !strings.Contains(r.Detail, "ignored invalid CVSS_V4") {
		t.Errorf("detail %q does not name the invalid vector", r.Detail)
	}
	v.Severity = v.Severity[:1]
	r = Resolve(v, nil, nil, nil)
	if r.Source != SourceUnknown || !strings.Contains(r.Detail, "CVSS:4.0/AV:N/garbage") {
		t.Errorf("only an invalid vector: %+v, want unknown naming it", r)
	}
}
