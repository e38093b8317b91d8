package policy

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestDecisionJSON pins the JSON shape doors serve (API, CLI --format
// json, audit): testdata/decision.golden.json; -update rewrites it.
func TestDecisionJSON(t *testing.T) {
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	s := DefaultProjectSettings("kuard")
	s.PreventVulnerable, s.Severity = true, High
	exp := now.Add(-time.Hour)
	s.Allowlist = []AllowlistEntry{{ID: "CVE-2019-14697", Expires: &exp, AddedBy: "alice", Reason: "demo"}}
	p := projectPolicy(t, s)
	p.Revision = 3
	e := compile(t, Config{Now: func() time.Time { return now }}, p)
	d := eval(t, e, &Input{
		Image: mustImage(t, "registry.tools.aws.crdant.io/kuard/kuar-demo/kuard-amd64:blue"), Project: "kuard",
		Scan: done(
			Finding{ID: "ALPINE-CVE-2019-14697", Aliases: []string{"CVE-2019-14697"}, Package: "musl", Installed: "1.1.20-r4", Fixed: []string{"1.1.20-r5"}, Severity: High},
			Finding{ID: "CVE-2024-9", Package: "busybox", Installed: "1.29", Severity: Unknown},
		),
	})
	got, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	const golden = "testdata/decision.golden.json"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("decision JSON changed (run with -update if on purpose):\n%s", got)
	}
	if r := d.Reasons(); len(r) != 1 || r[0] != d.Violations[0].Message {
		t.Errorf("reasons %q", r)
	}
}
