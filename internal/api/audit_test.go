package api

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/store"
)

var now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func TestParseWhen(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		err  bool
	}{
		{in: "", want: time.Time{}},
		{in: "2026-03-01T15:04:05Z", want: time.Date(2026, 3, 1, 15, 4, 5, 0, time.UTC)},
		{in: "2026-03-01T15:04:05.5+01:00", want: time.Date(2026, 3, 1, 14, 4, 5, 5e8, time.UTC)},
		{in: "2026-03-01", want: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		{in: "90m", want: now.Add(-90 * time.Minute)},
		{in: " 24h ", want: now.Add(-24 * time.Hour)},
		{in: "7d", want: now.Add(-7 * 24 * time.Hour)},
		{in: "1.5d", want: now.Add(-36 * time.Hour)},
		{in: "0s", err: true},
		{in: "-1h", err: true},
		{in: "NaNd", err: true},
		{in: "1e300d", err: true},
		{in: "101y", err: true},
		{in: "36600d", err: true},
		{in: "yesterday", err: true},
		{in: "2026-13-01", err: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseWhen(tc.in, now)
			if tc.err {
				if err == nil || !apperr.Is(err, apperr.EINVALID) {
					t.Errorf("ParseWhen(%q) = %v, %v; want EINVALID", tc.in, got, err)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Errorf("ParseWhen(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestAuditFilter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		query string
		want  store.AuditFilter
		err   string
	}{
		{name: "defaults", query: "", want: store.AuditFilter{N: defaultAuditPage}},
		{name: "everything", query: "actor=alice&action=artifact&project=p&outcome=denied&resource=app&since=1h&until=2026-03-10&n=10&last=42",
			want: store.AuditFilter{Actor: "alice", Action: "artifact", Project: "p", Outcome: audit.Denied, Resource: "app",
				Since: now.Add(-time.Hour), Until: time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC), N: 10, Before: 42}},
		{name: "bad outcome", query: "outcome=maybe", err: "outcome"},
		{name: "bad since", query: "since=soon", err: "since"},
		{name: "bad until", query: "until=later", err: "until"},
		{name: "n zero", query: "n=0", err: "n must"},
		{name: "n too large", query: "n=1001", err: "n must"},
		{name: "n not a number", query: "n=ten", err: "n must"},
		{name: "last not a number", query: "last=x", err: "last must"},
		{name: "last zero", query: "last=0", err: "last must"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := auditFilter(q, now)
			if tc.err != "" {
				if !apperr.Is(err, apperr.EINVALID) || !strings.Contains(apperr.Message(err), tc.err) {
					t.Errorf("auditFilter(%q) error %v, want EINVALID mentioning %q", tc.query, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Since.Equal(tc.want.Since) || !got.Until.Equal(tc.want.Until) {
				t.Errorf("times %v..%v, want %v..%v", got.Since, got.Until, tc.want.Since, tc.want.Until)
			}
			got.Since, got.Until, tc.want.Since, tc.want.Until = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			if got != tc.want {
				t.Errorf("auditFilter(%q) = %+v, want %+v", tc.query, got, tc.want)
			}
		})
	}
}

// FuzzParseWhen: any input either fails with EINVALID or yields a time no
// later than now for ages (a purge cutoff in the future would purge
// everything).
func FuzzParseWhen(f *testing.F) {
	for _, s := range []string{"", "7d", "24h", "2026-03-01", "2026-03-01T00:00:00Z", "-1d", "1e309d", "NaNd", "9223372036854775807ns"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseWhen(s, now)
		if err != nil {
			if !apperr.Is(err, apperr.EINVALID) {
				t.Fatalf("ParseWhen(%q) error %v is not EINVALID", s, err)
			}
			return
		}
		if age, aerr := parseAge(strings.TrimSpace(s)); aerr == nil {
			if age <= 0 || !got.Before(now) {
				t.Fatalf("ParseWhen(%q) = %v (age %v): an age must lie in the past", s, got, age)
			}
		}
	})
}
