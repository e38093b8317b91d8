package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunEndToEnd runs the whole benchmark, small, against the fake customs
// (the test binary itself) and, when it is installed, distribution.
func TestRunEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	registryBin := filepath.Join(defaultCacheDir(), "bin", "registry")
	tests := []struct {
		name    string
		servers string
		labels  []string
		needs   string
	}{
		{"customs twice", "customs,customs", []string{"customs-1", "customs-2"}, ""},
		{"customs vs distribution", "customs,distribution", []string{"customs", "distribution"}, registryBin},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needs != "" {
				if _, err := os.Stat(tc.needs); err != nil {
					t.Skipf("%s not installed (bench/registry/run.sh installs it)", tc.needs)
				}
			}
			t.Setenv(fakeCustomsEnv, "1")
			out := filepath.Join(t.TempDir(), "results.md")
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{
				"-servers", tc.servers, "-customs", os.Args[0], "-registry", registryBin,
				"-sizes", "4KiB,64KiB", "-concurrency", "1,3", "-ops", "5", "-manifest-requests", "20",
				"-rounds", "2", "-workdir", t.TempDir(), "-cache-dir", "", "-out", out, "-disk", "never",
			}, &stdout, &stderr)
			if err != nil {
				t.Fatalf("run: %v\n%s", err, stderr.String())
			}
			file, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(file, stdout.Bytes()) {
				t.Error("-out differs from stdout")
			}
			report := stdout.String()
			for _, want := range []string{
				"rate " + tc.labels[0] + "/" + tc.labels[1],
				"| HEAD manifest ×1 | 20 (2) |", "| GET manifest ×3 | 20 (2) |",
				"| push 4 KiB ×1 | 5 (2) |", "| push 64 KiB ×3 | 5 (2) |", "| pull 64 KiB ×3 | 5 (2) |",
				"### Targets",
			} {
				if !strings.Contains(report, want) {
					t.Errorf("report lacks %q:\n%s", want, report)
				}
			}
			// Rates, latencies and their ratios are always measured (the
			// CPU columns may be 0 for such small rows).
			for _, line := range strings.Split(report, "\n") {
				cells := strings.Split(line, " | ")
				if len(cells) < 11 || strings.HasPrefix(line, "| row") || strings.HasPrefix(line, "|---") {
					continue
				}
				for i, c := range cells[2:11] {
					if c == "–" {
						t.Errorf("empty cell %d in %q", i+2, line)
					}
				}
			}
		})
	}
}

func TestBuildPlanRejects(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown server", []string{"-servers", "zot"}, "unknown server"},
		{"three servers", []string{"-servers", "customs,customs,customs"}, "one or two"},
		{"bad size", []string{"-customs", os.Args[0], "-servers", "customs", "-sizes", "big"}, "-sizes"},
		{"bad concurrency", []string{"-customs", os.Args[0], "-servers", "customs", "-concurrency", "0"}, "-concurrency"},
		{"bad disk", []string{"-customs", os.Args[0], "-servers", "customs", "-disk", "sometimes"}, "-disk"},
		{"missing binary", []string{"-customs", "/nonexistent/customs", "-servers", "customs"}, "customs binary"},
		{"nothing", []string{"-customs", os.Args[0], "-servers", "customs", "-blobs=false", "-manifests=false"}, "nothing to run"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args, &bytes.Buffer{})
			if err == nil {
				_, err = buildPlan(o, &bytes.Buffer{})
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestOpsAndRounds(t *testing.T) {
	p := &plan{maxRowBytes: 32 << 30, rounds: 3, roundBytes: 24 << 30}
	tests := []struct {
		size             int64
		conc             int
		wantN, wantRound int
	}{
		{1 << 20, 1, 256, 3},
		{1 << 20, 32, 512, 3},
		{64 << 20, 8, 16, 3},
		{64 << 20, 32, 64, 3},
		{1 << 30, 1, 2, 3},
		{1 << 30, 8, 8, 3},
		{1 << 30, 32, 32, 1},
	}
	for _, tc := range tests {
		n := p.opsFor(tc.size, tc.conc)
		if n != tc.wantN {
			t.Errorf("opsFor(%s, %d) = %d, want %d", formatSize(tc.size), tc.conc, n, tc.wantN)
		}
		if r := p.roundsFor(tc.size, n); r != tc.wantRound {
			t.Errorf("roundsFor(%s, %d) = %d, want %d", formatSize(tc.size), n, r, tc.wantRound)
		}
	}
	p.maxRowBytes = 8 << 30
	if n := p.opsFor(1<<30, 32); n != 8 {
		t.Errorf("capped opsFor = %d, want 8", n)
	}
}
