package report

import (
	"testing"

	"github.com/customs-dev/customs/internal/inventory"
	"github.com/customs-dev/customs/internal/vulndb/match"
	"github.com/customs-dev/customs/internal/vulndb/severity"
)

func TestFromMatchFixText(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    match.Finding
		want string
	}{
		{
			name: "fixed",
			m: match.Finding{AdvisoryID: "ALPINE-CVE-2019-14697", Status: match.StatusFixed, Fixed: []string{"1.1.20-r5", "1.1.22-r3"},
				Package: inventory.Package{Ecosystem: inventory.Alpine, Name: "musl", Version: "1.1.20-r4", Layer: "sha256:aa"}},
			want: "upgrade musl from 1.1.20-r4 to 1.1.20-r5 or later",
		},
		{
			name: "no fix",
			m:    match.Finding{AdvisoryID: "X", Status: match.StatusNoFix, Package: inventory.Package{Ecosystem: "Debian", Name: "bash", Version: "5.2.15-2+b2"}},
			want: "no fix available yet",
		},
		{
			name: "wont fix",
			m:    match.Finding{AdvisoryID: "X", Status: match.StatusWontFix, Package: inventory.Package{Ecosystem: "Debian", Name: "bash", Version: "5.2.15-2+b2"}},
			want: "no fix: the distribution will not fix this in this release",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := FromMatch(tc.m)
			if f.Fix != tc.want {
				t.Errorf("Fix = %q, want %q", f.Fix, tc.want)
			}
			if f.InstalledVersion != tc.m.Package.Version || f.Layer != tc.m.Package.Layer {
				t.Errorf("installed %q layer %q, want %q %q", f.InstalledVersion, f.Layer, tc.m.Package.Version, tc.m.Package.Layer)
			}
			if len(tc.m.Fixed) > 0 {
				f.FixedVersions[0] = "changed"
				if tc.m.Fixed[0] == "changed" {
					t.Error("FromMatch shares Fixed with the match finding")
				}
			}
		})
	}
}

func TestCounts(t *testing.T) {
	fs := []Finding{
		{AdvisoryID: "b", Severity: severity.Rating{Level: severity.High, Score: 7.5}},
		{AdvisoryID: "a", Severity: severity.Rating{Level: severity.Critical}},
		{AdvisoryID: "c", Severity: severity.Rating{Level: severity.High, Score: 8.1}},
		{AdvisoryID: "d", Severity: severity.Rating{Level: severity.Unknown}},
		{AdvisoryID: "e", Severity: severity.Rating{Level: severity.Level(42)}},
	}
	c := CountFindings(fs)
	if want := (Counts{Critical: 1, High: 2, Unknown: 2}); c != want {
		t.Errorf("counts %+v, want %+v", c, want)
	}
	if c.Total() != 5 || c.Plus(c).High != 4 {
		t.Errorf("Total %d, Plus(c).High %d", c.Total(), c.Plus(c).High)
	}
	fs = fs[:4]
	SortFindings(fs)
	var got string
	for _, f := range fs {
		got += f.AdvisoryID
	}
	if got != "acbd" {
		t.Errorf("order %q, want critical, then high by score, then the rest", got)
	}
}

func TestStatusFinal(t *testing.T) {
	for s, want := range map[Status]bool{StatusQueued: false, StatusRunning: false, StatusDone: true, StatusFailed: true, StatusUnsupported: true} {
		if s.Final() != want {
			t.Errorf("%s.Final() = %v", s, !want)
		}
	}
}
