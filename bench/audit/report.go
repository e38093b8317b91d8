package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// stat is the median over rs of f.
func stat(rs []result, f func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	return median(v)
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// report prints the Markdown tables: medians over rounds, the ratios
// audited / not audited, and every round.
func report(w io.Writer, o options, arms []*arm, lost map[string]string) {
	aud, plain := arms[0], arms[1]
	fmt.Fprintf(w, "`%s`\n\n", strings.Join(os.Args, " "))
	fmt.Fprintf(w, "Store: %s. Open loop: %d pulls/s offered for %s per round; saturated: %d clients for %s per round; %d rounds, servers alternating. Medians over rounds.\n\n",
		o.store, o.rate, o.duration, o.satConc, o.satDur, o.rounds)
	fmt.Fprintln(w, "| | achieved pulls/s | p50 | p99 | server CPU per pull | audit drain after round (max) | errors |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	row := func(kind string, a *arm, rs []result) {
		var errs int64
		var drain time.Duration
		for _, r := range rs {
			errs += r.errs
			drain = max(drain, r.drain)
		}
		fmt.Fprintf(w, "| %s, %s | %.0f | %.2f ms | %.2f ms | %.1f µs | %s | %d |\n", kind, a.label,
			stat(rs, result.rate), stat(rs, func(r result) float64 { return ms(r.pct(0.5)) }),
			stat(rs, func(r result) float64 { return ms(r.pct(0.99)) }),
			stat(rs, func(r result) float64 { return float64(r.cpuPerPull().Nanoseconds()) / 1e3 }),
			drain.Round(time.Millisecond), errs)
	}
	row(fmt.Sprintf("%d/s", o.rate), aud, aud.open)
	row(fmt.Sprintf("%d/s", o.rate), plain, plain.open)
	row("saturated", aud, aud.sat)
	row("saturated", plain, plain.sat)
	fmt.Fprintln(w)
	ratio := func(f func(result) float64, a, b []result) float64 { return stat(a, f) / stat(b, f) }
	p99 := func(r result) float64 { return ms(r.pct(0.99)) }
	p50 := func(r result) float64 { return ms(r.pct(0.5)) }
	cpu := func(r result) float64 { return float64(r.cpuPerPull().Nanoseconds()) }
	fmt.Fprintf(w, "Audited / not audited: at %d/s achieved rate %.3f, p50 %.2f, p99 %.2f, CPU per pull %.2f; saturated pulls/s %.3f, CPU per pull %.2f.\n\n",
		o.rate, ratio(result.rate, aud.open, plain.open), ratio(p50, aud.open, plain.open), ratio(p99, aud.open, plain.open),
		ratio(cpu, aud.open, plain.open), ratio(result.rate, aud.sat, plain.sat), ratio(cpu, aud.sat, plain.sat))
	fmt.Fprintln(w, "Every round (load = 1-minute load average):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| round | server | kind | pulls/s | p50 | p99 | CPU/pull | drain | load |")
	fmt.Fprintln(w, "|---:|---|---|---:|---:|---:|---:|---:|---:|")
	for i := range o.rounds {
		for _, a := range arms {
			for _, k := range []struct {
				kind string
				rs   []result
			}{{"open", a.open}, {"saturated", a.sat}} {
				r := k.rs[i]
				fmt.Fprintf(w, "| %d | %s | %s | %.0f | %.2f ms | %.2f ms | %.1f µs | %s | %.1f |\n", i+1, a.label, k.kind,
					r.rate(), ms(r.pct(0.5)), ms(r.pct(0.99)), float64(r.cpuPerPull().Nanoseconds())/1e3, r.drain.Round(time.Millisecond), r.load)
			}
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Events after a graceful stop (SIGTERM):")
	fmt.Fprintln(w)
	for _, a := range arms {
		fmt.Fprintf(w, "- %s: %s\n", a.label, lost[a.label])
	}
}
