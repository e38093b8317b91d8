package api

import (
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
)

func TestParseExpires(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 500, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"", time.Time{}, true},
		{"30d", time.Date(2026, 5, 31, 12, 0, 0, 0, time.UTC), true},
		{"0d", time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), true},
		{"12h", time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC), true},
		{"2s", time.Date(2026, 5, 1, 12, 0, 2, 0, time.UTC), true},
		{"2027-01-31", time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC), true},
		{"2027-01-31T10:00:00+02:00", time.Date(2027, 1, 31, 8, 0, 0, 0, time.UTC), true},
		{"30 days", time.Time{}, false},
		{"d", time.Time{}, false},
		{"-5d", time.Time{}, false},
		{"123456d", time.Time{}, false},
		{"soon", time.Time{}, false},
		{"-1h", time.Time{}, false},
	} {
		got, err := parseExpires(tc.in, now)
		switch {
		case !tc.ok:
			if apperr.Code(err) != apperr.EINVALID {
				t.Errorf("parseExpires(%q) = %v, %v; want EINVALID", tc.in, got, err)
			}
		case err != nil:
			t.Errorf("parseExpires(%q): %v", tc.in, err)
		case tc.in == "" && got != nil:
			t.Errorf("parseExpires(\"\") = %v, want nil (never)", got)
		case tc.in != "" && (got == nil || !got.Equal(tc.want)):
			t.Errorf("parseExpires(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func FuzzParseExpires(f *testing.F) {
	for _, s := range []string{"30d", "12h", "2026-01-31", "2026-01-31T12:00:00Z", "", "99999d", "-1h", "1e9h"} {
		f.Add(s)
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseExpires(s, now)
		if err != nil {
			if apperr.Code(err) != apperr.EINVALID {
				t.Fatalf("parseExpires(%q): %v is not EINVALID", s, err)
			}
			return
		}
		if (got == nil) != (s == "") {
			t.Fatalf("parseExpires(%q) = %v", s, got)
		}
		if got != nil && (got.Location() != time.UTC || got.Nanosecond() != 0) {
			t.Fatalf("parseExpires(%q) = %v, not whole UTC seconds", s, got)
		}
	})
}
