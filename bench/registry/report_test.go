package main

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"1MiB", 1 << 20, false},
		{"64MiB", 64 << 20, false},
		{"1GiB", 1 << 30, false},
		{" 4 KiB ", 4 << 10, false},
		{"2g", 2 << 30, false},
		{"512", 512, false},
		{"10B", 10, false},
		{"0", 0, true},
		{"-1MiB", 0, true},
		{"MiB", 0, true},
		{"1.5GiB", 0, true},
		{"9999999999GiB", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseSize(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1MiB", "64 mib", "1GiB", "7", "3K"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err == nil && (n <= 0 || n > 1<<50) {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
		if err == nil {
			if back, err := parseSize(strings.ReplaceAll(formatSize(n), " ", "")); err == nil && back != n && !strings.Contains(formatSize(n), ".") {
				t.Fatalf("%d -> %q -> %d", n, formatSize(n), back)
			}
		}
	})
}

func TestFormat(t *testing.T) {
	tests := []struct{ got, want string }{
		{formatSize(1 << 20), "1 MiB"},
		{formatSize(64 << 20), "64 MiB"},
		{formatSize(1 << 30), "1 GiB"},
		{formatSize(1536), "1.5 KiB"},
		{formatSize(100), "100 B"},
		{formatDur(412 * time.Microsecond), "0.412 ms"},
		{formatDur(12345 * time.Microsecond), "12.3 ms"},
		{formatDur(3210 * time.Millisecond), "3.21 s"},
		{formatDur(0), "–"},
		{formatRate(512.4, true), "512 MB/s"},
		{formatRate(12.34, false), "12.3 req/s"},
		{formatRatio(ratio(1, 3)), "0.33"},
		{formatRatio(ratio(1, 0)), "–"},
		{formatRSS(0), "–"},
		{formatRSS(96 << 20), "96 MiB"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// res builds a one-round result with the given MB/s, p50 and peak RSS.
func res(mbps float64, p50 time.Duration, rss int64) []result {
	return []result{{ops: 1, bytes: 1e8, wall: time.Duration(1e8 / mbps / 1e6 * float64(time.Second)), lat: []time.Duration{p50}, peakRSS: rss}}
}

// tailed builds a one-round result of 100 operations at mbps whose two
// slowest take slow and the rest typical.
func tailed(mbps float64, typical, slow time.Duration) []result {
	r := res(mbps, typical, 0)
	r[0].ops = 100
	r[0].lat = make([]time.Duration, 100)
	for i := range r[0].lat {
		r[0].lat[i] = typical
	}
	r[0].lat[98], r[0].lat[99] = slow, slow
	return r
}

func TestTargets(t *testing.T) {
	mkRow := func(kind rowKind, size int64, conc int, a, b []result) *row {
		r := newRow(kind, size, conc, 1)
		r.results["customs"], r.results["distribution"] = a, b
		return r
	}
	ms := time.Millisecond
	tests := []struct {
		name string
		rows []*row
		disk *diskResult
		want map[string]bool // target name prefix -> met
	}{
		{
			name: "all met",
			rows: []*row{
				mkRow(rowPush, 1<<20, 1, res(100, ms, 50<<20), res(90, 2*ms, 50<<20)),
				mkRow(rowPull, 1<<20, 8, res(500, ms, 60<<20), res(400, ms, 60<<20)),
				mkRow(rowPull, 1<<30, 8, res(900, ms, 70<<20), res(800, ms, 900<<20)),
				mkRow(rowPush, 1<<30, 1, res(460, ms, 80<<20), res(250, ms, 80<<20)),
			},
			disk: &diskResult{size: 1 << 30, runs: []float64{500, 480, 520}},
			want: map[string]bool{"customs at least matches": true, "customs's tail latency": true, "customs streams pulls": true, "customs pushes one": true},
		},
		{
			name: "slower within tolerance still matches",
			rows: []*row{mkRow(rowPush, 1<<20, 1, res(96, ms, 0), res(100, ms, 0))},
			want: map[string]bool{"customs at least matches": true, "customs's tail latency": true},
		},
		{
			name: "same median, longer tail",
			rows: []*row{mkRow(rowPush, 1<<20, 32, tailed(100, ms, 50*ms), tailed(100, ms, 5*ms))},
			want: map[string]bool{"customs at least matches": true, "customs's tail latency": false},
		},
		{
			name: "slower, buffering, below disk",
			rows: []*row{
				mkRow(rowPush, 1<<30, 1, res(300, ms, 0), res(400, ms, 0)),
				mkRow(rowGet, 0, 32, res(1000, 3*ms, 0), res(1000, ms, 0)),
				mkRow(rowPull, 1<<20, 32, res(500, ms, 60<<20), res(400, ms, 60<<20)),
				mkRow(rowPull, 1<<30, 32, res(900, ms, 1200<<20), res(800, ms, 70<<20)),
			},
			disk: &diskResult{size: 1 << 30, runs: []float64{500}},
			want: map[string]bool{"customs at least matches": false, "customs's tail latency": false, "customs streams pulls": false, "customs pushes one": false},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &report{labels: []string{"customs", "distribution"}, rows: tc.rows, disk: tc.disk, tolerance: 0.05}
			got := r.targets()
			if len(got) != len(tc.want) {
				t.Fatalf("got %d targets (%+v), want %d", len(got), got, len(tc.want))
			}
			for _, tg := range got {
				found := false
				for prefix, met := range tc.want {
					if strings.HasPrefix(tg.name, prefix) {
						found = true
						if tg.met != met {
							t.Errorf("%s: met = %v, want %v (%s)", tg.name, tg.met, met, tg.detail)
						}
					}
				}
				if !found {
					t.Errorf("unexpected target %q", tg.name)
				}
			}
		})
	}
}

func TestMarkdown(t *testing.T) {
	r := newRow(rowPush, 64<<20, 8, 16)
	r.results["customs"] = res(400, 20*time.Millisecond, 90<<20)
	r.results["distribution"] = res(200, 40*time.Millisecond, 80<<20)
	r.results["customs"][0].cpu = 2 * time.Second
	r.results["distribution"][0].cpu = time.Second
	rep := &report{labels: []string{"customs", "distribution"}, rows: []*row{r}, tolerance: 0.05, header: []string{"machine: test"}, notes: []string{"a note"}}
	var buf bytes.Buffer
	rep.markdown(&buf)
	out := buf.String()
	for _, want := range []string{
		"## Registry benchmark: customs vs distribution",
		"- machine: test",
		"| row | n (rounds) | rate customs | rate distribution | rate customs/distribution |",
		"| push 64 MiB ×8 | 16 (1) | 400 MB/s | 200 MB/s | 2.00 | 20.0 ms | 40.0 ms | 0.50 |",
		"| 90 MiB | 80 MiB | 2.00 s | 1.00 s | 2.00 |",
		"**MET**: customs at least matches distribution",
		"- a note",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestMarkdownDisk(t *testing.T) {
	push := newRow(rowPush, 1<<30, 1, 3)
	push.results["customs"] = res(700, 1500*time.Millisecond, 100<<20)
	rep := &report{labels: []string{"customs"}, rows: []*row{push}, memory: memoryReused,
		disk: &diskResult{size: 1 << 30, runs: []float64{900, 1000, 1100}, direct: []float64{600}, bare: []float64{500, 560}}}
	var buf bytes.Buffer
	rep.markdown(&buf)
	out := buf.String()
	for _, want := range []string{
		"median 1000 MB/s (runs: 900, 1000, 1100 MB/s)",
		"- memory reused: each timed write",
		"O_DIRECT", "median 600 MB/s (runs: 600 MB/s)",
		"a bare push pipeline", "median 530 MB/s = 53% of the baseline (runs: 500, 560 MB/s)",
		"**NOT MET**: customs pushes one 1 GiB blob at ≥ 90% of the disk's sequential fsync'd write (1000 MB/s, memory reused) — customs 700 MB/s = 70%",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestMeasureDisk(t *testing.T) {
	prepared := 0
	d, err := measureDisk(t.TempDir(), 8<<20, 2, func() error { prepared++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if prepared != 2 {
		t.Errorf("prepare ran %d times for 2 runs", prepared)
	}
	if len(d.runs) != 2 || d.median() <= 0 || d.size != 8<<20 {
		t.Fatalf("got %+v", d)
	}
	// O_DIRECT references: one per run, or none where the filesystem
	// refuses O_DIRECT (tmpfs).
	if len(d.direct) != 0 && len(d.direct) != 2 || slices.ContainsFunc(d.direct, func(v float64) bool { return v <= 0 }) {
		t.Fatalf("O_DIRECT references %v", d.direct)
	}
}

func TestWarmDiskLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	if err := warmDisk(dir, 4<<20); err != nil {
		t.Fatal(err)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Fatalf("after the warm-up %s holds %v (%v)", dir, entries, err)
	}
}
