package registry

import (
	"fmt"
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/apperr"
)

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		start int64
		end   int64
		ok    bool
	}{
		{"spec form", "0-1023", 0, 1023, true},
		{"single byte", "5-5", 5, 5, true},
		{"large", "1099511627776-1099511628799", 1 << 40, 1<<40 + 1023, true},
		{"bytes prefix", "bytes 10-19", 10, 19, true},
		{"bytes equals prefix", "bytes=10-19", 10, 19, true},
		{"total suffix", "bytes 10-19/100", 10, 19, true},
		{"unknown total", "10-19/*", 10, 19, true},
		{"end before start", "10-9", 0, 0, false},
		{"missing end", "10-", 0, 0, false},
		{"missing start", "-10", 0, 0, false},
		{"negative", "-1-5", 0, 0, false},
		{"letters", "a-b", 0, 0, false},
		{"empty", "", 0, 0, false},
		{"plus sign", "+1-5", 0, 0, false},
		{"overflow", "0-99999999999999999999", 0, 0, false},
		{"bad total", "0-5/x", 0, 0, false},
		{"bytesx prefix", "bytesx0-5", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseContentRange(tt.in)
			if !tt.ok {
				if err == nil {
					t.Fatalf("parseContentRange(%q) = %+v, want error", tt.in, got)
				}
				if apperr.Detail(err) != codeBlobUploadInvalid {
					t.Errorf("detail = %q", apperr.Detail(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Start != tt.start || got.End != tt.end {
				t.Errorf("got %+v, want %d-%d", got, tt.start, tt.end)
			}
		})
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"0-0", "0-1023", "bytes 1-2/3", "bytes=5-9", "10-9", "", "-", "1-2-3", "9223372036854775807-9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseContentRange(s)
		if err != nil {
			return
		}
		if r.Start < 0 || r.End < r.Start || r.Len() <= 0 {
			t.Fatalf("parseContentRange(%q) = %+v", s, r)
		}
		again, err := parseContentRange(fmt.Sprintf("%d-%d", r.Start, r.End))
		if err != nil || again != r {
			t.Fatalf("round trip of %q: %+v, %v", s, again, err)
		}
	})
}

func TestSessionToken(t *testing.T) {
	h := &handler{secret: []byte(strings.Repeat("k", MinUploadSecret))}
	other := &handler{secret: []byte(strings.Repeat("x", MinUploadSecret))}
	tok := h.sessionToken("p/a", "0123abcd")
	tests := []struct {
		name  string
		h     *handler
		repo  string
		token string
		ok    bool
	}{
		{"own repository", h, "p/a", tok, true},
		{"other repository", h, "p/b", tok, false},
		{"other secret", other, "p/a", tok, false},
		{"no mac", h, "p/a", "0123abcd", false},
		{"empty id", h, "p/a", tok[strings.IndexByte(tok, '.'):], false},
		{"tampered id", h, "p/a", "0123abce" + tok[strings.IndexByte(tok, '.'):], false},
		{"mac not base64", h, "p/a", "0123abcd.!!!", false},
		{"truncated mac", h, "p/a", tok[:len(tok)-2], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := tt.h.sessionID(tt.repo, tt.token)
			if !tt.ok {
				if apperr.Detail(err) != codeBlobUploadUnknown {
					t.Fatalf("sessionID = %q, %v; want BLOB_UPLOAD_UNKNOWN", id, err)
				}
				return
			}
			if err != nil || id != "0123abcd" {
				t.Fatalf("sessionID = %q, %v", id, err)
			}
		})
	}
}

func TestRangeHeader(t *testing.T) {
	for size, want := range map[int64]string{0: "0-0", 1: "0-0", 2: "0-1", 1024: "0-1023"} {
		if got := rangeHeader(size); got != want {
			t.Errorf("rangeHeader(%d) = %q, want %q", size, got, want)
		}
	}
}
