package ecosystem

import (
	"testing"

	"github.com/customs-dev/customs/internal/inventory"
)

func TestGoVersion(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "go1.21.3", want: "1.21.3"},
		{in: "go1.21", want: "1.21.0"},
		{in: "go1.21rc1", want: "1.21.0-rc.1"},
		{in: "1.21rc1", want: "1.21.0-rc.1"},
		{in: "go1.19beta1", want: "1.19.0-beta.1"},
		{in: "go1.9.2rc2", want: "1.9.2-rc.2"},
		{in: "go1", want: "1.0.0"},
		{in: "go1.20.1 X:boringcrypto", want: "1.20.1"},
		{in: "1.22.0", want: "1.22.0"},
		{in: "v1.22.0", want: "1.22.0"},
		{in: "1.24.0-rc.2", want: "1.24.0-rc.2"},
		{in: "devel +abcdef", bad: true},
		{in: "go1.21.x", bad: true},
		{in: "", bad: true},
		{in: "gox", bad: true},
	}
	for _, tc := range tests {
		got, err := GoVersion(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("GoVersion(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("GoVersion(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestGoInstalled checks the comparisons the Go database relies on: the
// stdlib at a Go release tag against the database's semantic versions
// ("1.16.0-0" introduces a release line before its first pre-release).
func TestGoInstalled(t *testing.T) {
	r, err := For(inventory.Go)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, installed, advisory string
		want                      int
	}{
		{GoStdlib, "go1.21rc1", "1.21.0-0", 1},
		{GoStdlib, "go1.21rc1", "1.21.0", -1},
		{GoStdlib, "go1.21rc2", "1.21.0-rc.1", 1},
		{GoStdlib, "go1.21", "1.21.0", 0},
		{GoStdlib, "go1.20.10", "1.20.9", 1},
		{GoStdlib, "go1.19beta1", "1.19.0-rc.1", -1},
		{GoToolchain, "go1.22.1", "1.22.2", -1},
		{"golang.org/x/text", "v0.3.5", "0.3.7", -1},
		{"golang.org/x/text", "v0.3.7", "0.3.7", 0},
		{"github.com/foo/bar", "v2.1.0+incompatible", "2.0.0", 1},
	}
	for _, tc := range tests {
		iv, err := r.ParseInstalled(tc.name, tc.installed)
		if err != nil {
			t.Fatalf("ParseInstalled(%q, %q): %v", tc.name, tc.installed, err)
		}
		if iv.String() != tc.installed {
			t.Errorf("String() = %q, want the version as given %q", iv.String(), tc.installed)
		}
		av, err := r.Parse(tc.advisory)
		if err != nil {
			t.Fatal(err)
		}
		if got := iv.Compare(av); got != tc.want {
			t.Errorf("%s %s vs %s: Compare = %d, want %d", tc.name, tc.installed, tc.advisory, got, tc.want)
		}
	}
	if _, err := r.ParseInstalled(GoStdlib, "devel go1.22-abcdef"); err == nil {
		t.Error("ParseInstalled(stdlib, devel) succeeded, want an error")
	}
	if _, err := r.ParseInstalled("example.com/m", "(devel)"); err == nil {
		t.Error(`ParseInstalled(module, "(devel)") succeeded, want an error`)
	}
}
