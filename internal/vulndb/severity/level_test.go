package severity

import (
	"encoding/json"
	"testing"
)

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in   string
		want Level
	}{
		{"unknown", Unknown}, {"UNTRIAGED", Unknown}, {"none", None}, {"Low", Low}, {"negligible", Low},
		{"MEDIUM", Medium}, {"moderate", Medium}, {"Moderate", Medium}, {"high", High}, {"Important", High},
		{" critical ", Critical},
	}
	for _, tc := range tests {
		got, err := ParseLevel(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "severe", "4", "lowest"} {
		if l, err := ParseLevel(bad); err == nil {
			t.Errorf("ParseLevel(%q) = %v, want an error", bad, l)
		}
	}
}

func TestLevelOrderAndText(t *testing.T) {
	order := []Level{Unknown, None, Low, Medium, High, Critical}
	names := []string{"unknown", "none", "low", "medium", "high", "critical"}
	for i, l := range order {
		if l.String() != names[i] {
			t.Errorf("%d.String() = %q, want %q", l, l.String(), names[i])
		}
		if i > 0 && !(order[i-1] < l) {
			t.Errorf("%v is not above %v", l, order[i-1])
		}
		if l.Known() != (l != Unknown) {
			t.Errorf("%v.Known() = %v", l, l.Known())
		}
		b, err := json.Marshal(l)
		if err != nil || string(b) != `"`+names[i]+`"` {
			t.Errorf("json.Marshal(%v) = %s, %v", l, b, err)
		}
		var back Level
		if err := json.Unmarshal(b, &back); err != nil || back != l {
			t.Errorf("round trip of %v = %v, %v", l, back, err)
		}
	}
	// Unknown is never low.
	if Unknown == Low || Unknown.Known() {
		t.Error("Unknown is treated as a known level")
	}
	if _, err := Level(42).MarshalText(); err == nil {
		t.Error("MarshalText of an invalid level succeeded")
	}
	var l Level
	if err := json.Unmarshal([]byte(`"bogus"`), &l); err == nil {
		t.Error(`Unmarshal("bogus") succeeded`)
	}
}
