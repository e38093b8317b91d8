package severity

import (
	"math"
	"testing"
)

func TestParseCVSS(t *testing.T) {
	tests := []struct {
		vector  string
		version string
		score   float64
		level   Level
	}{
		// CVE-2019-14697 as NVD scores it.
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", CVSS31, 9.8, Critical},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", CVSS31, 10.0, Critical},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", CVSS31, 6.1, Medium},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", CVSS31, 7.5, High},
		{"CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", CVSS31, 1.8, Low},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", CVSS31, 0, None},
		{"CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", CVSS30, 8.8, High},
		{"AV:N/AC:L/Au:N/C:P/I:P/A:P", CVSS20, 7.5, High},
		{"(AV:N/AC:M/Au:N/C:N/I:P/A:N)", CVSS20, 4.3, Medium},
		{"AV:L/AC:L/Au:N/C:P/I:N/A:N", CVSS20, 2.1, Low},
		// CVSS v2 has no None or Critical: 10.0 is High, 0.0 is Low.
		{"AV:N/AC:L/Au:N/C:C/I:C/A:C", CVSS20, 10.0, High},
		{"AV:N/AC:L/Au:N/C:N/I:N/A:N", CVSS20, 0, Low},
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", CVSS40, 9.3, Critical},
		{"CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", CVSS40, 8.5, High},
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N", CVSS40, 0, None},
	}
	for _, tc := range tests {
		c, err := ParseCVSS(tc.vector)
		if err != nil {
			t.Errorf("ParseCVSS(%q): %v", tc.vector, err)
			continue
		}
		if c.Version != tc.version || math.Abs(c.Score-tc.score) > 1e-9 || c.Level != tc.level {
			t.Errorf("ParseCVSS(%q) = %s %v %v, want %s %v %v", tc.vector, c.Version, c.Score, c.Level, tc.version, tc.score, tc.level)
		}
	}
	for _, bad := range []string{
		"", "CVSS:3.1/AV:N", "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:5.0/AV:N",
		"CVSS:4.0/AV:N/AC:L", "AV:N/AC:L/Au:N", "HIGH",
	} {
		if c, err := ParseCVSS(bad); err == nil {
			t.Errorf("ParseCVSS(%q) = %+v, want an error", bad, c)
		}
	}
}

func TestLevelForScore(t *testing.T) {
	tests := []struct {
		version string
		score   float64
		want    Level
	}{
		{CVSS31, 0, None}, {CVSS31, 0.1, Low}, {CVSS31, 3.9, Low}, {CVSS31, 4.0, Medium}, {CVSS31, 6.9, Medium},
		{CVSS31, 7.0, High}, {CVSS31, 8.9, High}, {CVSS31, 9.0, Critical}, {CVSS31, 10, Critical},
		{CVSS40, 9.0, Critical}, {CVSS30, 0.1, Low},
		{CVSS20, 0, Low}, {CVSS20, 3.9, Low}, {CVSS20, 4.0, Medium}, {CVSS20, 6.9, Medium}, {CVSS20, 7.0, High}, {CVSS20, 10, High},
	}
	for _, tc := range tests {
		got, err := LevelForScore(tc.version, tc.score)
		if err != nil || got != tc.want {
			t.Errorf("LevelForScore(%s, %v) = %v, %v; want %v", tc.version, tc.score, got, err, tc.want)
		}
	}
	for _, bad := range []struct {
		v string
		s float64
	}{{CVSS31, -0.1}, {CVSS31, 10.1}, {CVSS31, math.NaN()}, {"3.2", 5}} {
		if l, err := LevelForScore(bad.v, bad.s); err == nil {
			t.Errorf("LevelForScore(%s, %v) = %v, want an error", bad.v, bad.s, l)
		}
	}
}
