package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// memFlatSlack is how much more a server may hold while serving the largest
// blobs than while serving the smallest, at the same concurrency, and still
// count as streaming: buffering a single 1 GiB blob would exceed it 16 times.
const memFlatSlack = 64 << 20

// diskTarget is the share of the disk's sequential fsync'd write rate a
// single 1 GiB push must reach.
const diskTarget = 0.90

// diskTargetSize is the blob size of the push row compared with the disk.
const diskTargetSize = 1 << 30

// report is a finished run, ready to print.
type report struct {
	labels    []string // servers; labels[0] is the subject, labels[1] the baseline
	rows      []*row
	disk      *diskResult // nil when not measured
	memory    memoryMode  // how memory was prepared for the disk baseline and the disk-target row
	tolerance float64     // allowed shortfall before a row counts as slower
	header    []string    // environment and method lines, printed as a list
	notes     []string    // printed after the table
}

// target is one checked goal and whether the run met it.
type target struct {
	name   string
	met    bool
	detail string
}

// formatSize prints bytes as B, KiB, MiB or GiB, e.g. "64 MiB".
func formatSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f := float64(n)
	u := 0
	for f >= 1024 && u < len(units)-1 {
		f /= 1024
		u++
	}
	if f == float64(int64(f)) {
		return fmt.Sprintf("%d %s", int64(f), units[u])
	}
	return fmt.Sprintf("%.1f %s", f, units[u])
}

// parseSize reads a size such as "64MiB", "1 GiB", "4KiB" or "512" (bytes).
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"TIB", 1 << 40}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("size %q: want a positive number of bytes, optionally with KiB, MiB or GiB", s)
	}
	return n * mult, nil
}

// formatDur prints a latency with three significant digits in ms or s.
func formatDur(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case d <= 0:
		return "–"
	case ms >= 10000:
		return fmt.Sprintf("%.1f s", ms/1000)
	case ms >= 1000:
		return fmt.Sprintf("%.2f s", ms/1000)
	case ms >= 100:
		return fmt.Sprintf("%.0f ms", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1f ms", ms)
	case ms >= 1:
		return fmt.Sprintf("%.2f ms", ms)
	default:
		return fmt.Sprintf("%.3f ms", ms)
	}
}

// formatRate prints a rate with its unit.
func formatRate(v float64, bytesRow bool) string {
	unit := "req/s"
	if bytesRow {
		unit = "MB/s"
	}
	if v >= 100 {
		return fmt.Sprintf("%.0f %s", v, unit)
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}

// formatRSS prints a peak RSS in MiB ("–" when unknown).
func formatRSS(n int64) string {
	if n <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}

// ratio returns a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// formatRatio prints a ratio with two decimals ("–" when undefined).
func formatRatio(r float64) string {
	if r == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", r)
}

// targets checks the run against the goals; with fewer than two
// servers only the disk target can be checked.
func (r *report) targets() []target {
	var out []target
	if len(r.labels) >= 2 {
		out = append(out, r.matchTargets(r.labels[0], r.labels[1])...)
	}
	out = append(out, r.memoryTargets()...)
	if t, ok := r.diskTarget(); ok {
		out = append(out, t)
	}
	return out
}

// matchTargets checks that subject a matches baseline b on every row: in
// throughput and median latency (the target), and separately in tail
// latency, which few operations per row make noisier.
func (r *report) matchTargets(a, b string) []target {
	var behind, tail []string
	checked := 0
	for _, row := range r.rows {
		ra, okA := row.summary(a)
		rb, okB := row.summary(b)
		if !okA || !okB {
			continue
		}
		checked++
		thr := ratio(ra.rate, rb.rate)
		p50 := ratio(float64(ra.p50), float64(rb.p50))
		p99 := ratio(float64(ra.p99), float64(rb.p99))
		if thr < 1-r.tolerance || p50 > 1+r.tolerance {
			behind = append(behind, fmt.Sprintf("%s (throughput %.2f, p50 %.2f)", row.name(), thr, p50))
		}
		if p99 > 1+r.tolerance {
			tail = append(tail, fmt.Sprintf("%s (p99 %.2f)", row.name(), p99))
		}
	}
	if checked == 0 {
		return nil
	}
	detail := func(list []string) string {
		if len(list) == 0 {
			return fmt.Sprintf("all %d rows within %.0f%%", checked, r.tolerance*100)
		}
		return fmt.Sprintf("%d of %d rows behind: %s", len(list), checked, strings.Join(list, "; "))
	}
	return []target{
		{
			name:   fmt.Sprintf("%s at least matches %s on every row (throughput ratio ≥ %.2f and p50 ratio ≤ %.2f)", a, b, 1-r.tolerance, 1+r.tolerance),
			met:    len(behind) == 0,
			detail: detail(behind),
		},
		{
			name:   fmt.Sprintf("%s's tail latency at least matches %s's on every row (p99 ratio ≤ %.2f)", a, b, 1+r.tolerance),
			met:    len(tail) == 0,
			detail: detail(tail),
		},
	}
}

// memoryTargets compares, per concurrency, each server's peak RSS while
// pulling the largest blobs with that while pulling the smallest ones.
func (r *report) memoryTargets() []target {
	small, large := map[int]*row{}, map[int]*row{}
	for _, row := range r.rows {
		if row.kind != rowPull {
			continue
		}
		if s, ok := small[row.conc]; !ok || row.size < s.size {
			small[row.conc] = row
		}
		if l, ok := large[row.conc]; !ok || row.size > l.size {
			large[row.conc] = row
		}
	}
	if len(r.labels) == 0 {
		return nil
	}
	subject := r.labels[0]
	var parts []string
	met, checked := true, 0
	for _, row := range r.rows {
		s, l := small[row.conc], large[row.conc]
		if row.kind != rowPull || row != l || s == l || l.size < 64<<20 {
			continue
		}
		for _, label := range r.labels {
			rs, okS := s.summary(label)
			rl, okL := l.summary(label)
			if !okS || !okL || rs.peakRSS == 0 || rl.peakRSS == 0 {
				continue
			}
			if label == subject {
				checked++
				met = met && rl.peakRSS-rs.peakRSS < memFlatSlack
			}
			parts = append(parts, fmt.Sprintf("%s ×%d: %s at %s vs %s at %s", label, row.conc,
				formatRSS(rl.peakRSS), formatSize(l.size), formatRSS(rs.peakRSS), formatSize(s.size)))
		}
	}
	if checked == 0 {
		return nil
	}
	return []target{{
		name:   fmt.Sprintf("%s streams pulls: peak RSS grows by less than %s from the smallest to the largest blobs at each concurrency", subject, formatSize(memFlatSlack)),
		met:    met,
		detail: strings.Join(parts, "; "),
	}}
}

// diskTarget compares the subject's single 1 GiB push with the disk baseline.
func (r *report) diskTarget() (target, bool) {
	if r.disk == nil || len(r.labels) == 0 || r.disk.median() == 0 {
		return target{}, false
	}
	var parts []string
	met, found := false, false
	for _, row := range r.rows {
		if row.kind != rowPush || row.size != diskTargetSize || row.conc != 1 {
			continue
		}
		for i, label := range r.labels {
			res, ok := row.summary(label)
			if !ok {
				continue
			}
			share := res.rate / r.disk.median()
			parts = append(parts, fmt.Sprintf("%s %s = %.0f%%", label, formatRate(res.rate, true), share*100))
			if i == 0 {
				found, met = true, share >= diskTarget
			}
		}
	}
	if !found {
		return target{}, false
	}
	return target{
		name: fmt.Sprintf("%s pushes one %s blob at ≥ %.0f%% of the disk's sequential fsync'd write (%s%s)",
			r.labels[0], formatSize(diskTargetSize), diskTarget*100, formatRate(r.disk.median(), true), memoryNote(r.memory)),
		met:    met,
		detail: strings.Join(parts, "; "),
	}, true
}

// joinRates formats MB/s figures for a list of runs.
func joinRates(v []float64) string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(out, ", ")
}

// memoryNote names the memory state of the disk comparison, if prepared.
func memoryNote(m memoryMode) string {
	if m == "" || m == memoryAsIs {
		return ""
	}
	return ", memory " + string(m)
}

// markdown writes the report: environment, the results table, targets, notes.
func (r *report) markdown(w io.Writer) {
	fmt.Fprintf(w, "## Registry benchmark: %s\n\n", strings.Join(r.labels, " vs "))
	for _, h := range r.header {
		fmt.Fprintf(w, "- %s\n", h)
	}
	if r.disk != nil && len(r.disk.runs) > 0 {
		base := r.disk.median()
		fmt.Fprintf(w, "- disk baseline: sequential %s write + fsync (what dd bs=1M conv=fsync measures), same filesystem, after an untimed warm-up write, median %s (runs: %s MB/s)\n",
			formatSize(r.disk.size), formatRate(base, true), joinRates(r.disk.runs))
		if r.memory != "" {
			fmt.Fprintf(w, "- %s\n", r.memory.describe())
		}
		if len(r.disk.direct) > 0 {
			fmt.Fprintf(w, "- for reference, the same writes with O_DIRECT (the device without the page cache), each right after its baseline run: median %s (runs: %s MB/s)\n",
				formatRate(median(slices.Clone(r.disk.direct)), true), joinRates(r.disk.direct))
		}
		if len(r.disk.bare) > 0 && base > 0 {
			bare := median(slices.Clone(r.disk.bare))
			fmt.Fprintf(w, "- for reference, a bare push pipeline: the same size sent over loopback TCP by a goroutine in 64 KiB writes, received in 256 KiB buffers that one goroutine SHA-256 hashes while another writes them (writeback started every 8 MiB), then fsync; no HTTP, no registry: median %s = %.0f%% of the baseline (runs: %s MB/s)\n",
				formatRate(bare, true), bare/base*100, joinRates(r.disk.bare))
		}
	}
	fmt.Fprintln(w)
	r.table(w)
	if t := r.targets(); len(t) > 0 {
		fmt.Fprintf(w, "\n### Targets\n\n")
		for _, t := range t {
			mark := "MET"
			if !t.met {
				mark = "NOT MET"
			}
			fmt.Fprintf(w, "- **%s**: %s — %s\n", mark, t.name, t.detail)
		}
	}
	if len(r.notes) > 0 {
		fmt.Fprintf(w, "\n### Notes\n\n")
		for _, n := range r.notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
}

// table writes the results table; with two servers every metric gets a
// subject/baseline ratio column.
func (r *report) table(w io.Writer) {
	two := len(r.labels) >= 2
	cols := []string{"row", "n (rounds)"}
	metric := func(name string) {
		for _, l := range r.labels {
			cols = append(cols, name+" "+l)
		}
		if two {
			cols = append(cols, name+" "+r.labels[0]+"/"+r.labels[1])
		}
	}
	metric("rate")
	metric("p50")
	metric("p99")
	for _, l := range r.labels {
		cols = append(cols, "peak RSS "+l)
	}
	metric("CPU")
	fmt.Fprintf(w, "| %s |\n", strings.Join(cols, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(cols)))
	for _, row := range r.rows {
		rounds := 0
		for _, l := range r.labels {
			rounds = max(rounds, len(row.results[l]))
		}
		cells := []string{row.name(), fmt.Sprintf("%d (%d)", row.ops, rounds)}
		get := func(l string) summary { s, _ := row.summary(l); return s }
		add := func(val func(summary) float64, format func(float64) string) {
			for _, l := range r.labels {
				cells = append(cells, format(val(get(l))))
			}
			if two {
				cells = append(cells, formatRatio(ratio(val(get(r.labels[0])), val(get(r.labels[1])))))
			}
		}
		add(func(x summary) float64 { return x.rate }, func(v float64) string { return formatRate(v, row.size > 0) })
		add(func(x summary) float64 { return float64(x.p50) }, func(v float64) string { return formatDur(time.Duration(v)) })
		add(func(x summary) float64 { return float64(x.p99) }, func(v float64) string { return formatDur(time.Duration(v)) })
		for _, l := range r.labels {
			cells = append(cells, formatRSS(get(l).peakRSS))
		}
		add(func(x summary) float64 { return float64(x.cpu) }, func(v float64) string { return fmt.Sprintf("%.2f s", v/float64(time.Second)) })
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
}
