package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// result is what one server did in one row.
type result struct {
	ops     int             // operations completed
	bytes   int64           // payload bytes moved; 0 for request-rate rows
	wall    time.Duration   // from the first operation's start to the last one's end
	lat     []time.Duration // per-operation latencies, sorted
	peakRSS int64           // server's peak resident set during the row, bytes (0: unknown)
	cpu     time.Duration   // server's CPU time (user + system) during the row
}

// rate returns MB/s (10^6 bytes) for byte rows and requests/s otherwise.
func (r result) rate() float64 {
	if r.wall <= 0 {
		return 0
	}
	if r.bytes > 0 {
		return float64(r.bytes) / 1e6 / r.wall.Seconds()
	}
	return float64(r.ops) / r.wall.Seconds()
}

// percentile returns the nearest-rank q-quantile (0<q<=1) of the latencies.
func (r result) percentile(q float64) time.Duration {
	return percentile(r.lat, q)
}

// percentile returns the nearest-rank q-quantile of sorted durations; 0 for none.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// opFunc performs operation i on behalf of worker w and returns its payload size.
type opFunc func(ctx context.Context, w, i int) (int64, error)

// runOps runs n operations on conc workers that each take the next index as
// soon as they are free, and times each operation and the whole row. The
// first error cancels the rest and is returned.
func runOps(ctx context.Context, conc, n int, op opFunc) (result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lat := make([]time.Duration, n)
	sizes := make([]int64, n)
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for w := range min(conc, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				sz, err := op(ctx, w, i)
				lat[i] = time.Since(t0)
				sizes[i] = sz
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("operation %d: %w", i, err); cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if firstErr != nil {
		return result{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	r := result{ops: n, wall: wall, lat: lat}
	for _, s := range sizes {
		r.bytes += s
	}
	slices.Sort(r.lat)
	return r, nil
}

// runPrepared runs n operations one after the other, calling prepare
// (untimed) before each: the row's wall time is the sum of the operations'
// own times. The first error stops the rest and is returned.
func runPrepared(ctx context.Context, n int, prepare func() error, op opFunc) (result, error) {
	r := result{ops: n, lat: make([]time.Duration, n)}
	for i := range n {
		if err := ctx.Err(); err != nil {
			return result{}, err
		}
		if err := prepare(); err != nil {
			return result{}, fmt.Errorf("before operation %d: %w", i, err)
		}
		t0 := time.Now()
		sz, err := op(ctx, 0, i)
		r.lat[i] = time.Since(t0)
		if err != nil {
			return result{}, fmt.Errorf("operation %d: %w", i, err)
		}
		r.wall += r.lat[i]
		r.bytes += sz
	}
	slices.Sort(r.lat)
	return r, nil
}

// summary is one server's figures for a row over all its rounds: the median
// of each metric across rounds, and the largest peak RSS.
type summary struct {
	rate     float64
	p50, p99 time.Duration
	peakRSS  int64
	cpu      time.Duration
	rounds   int
}

// summarize combines the rounds of one server in one row; ok is false when
// there are none.
func summarize(rounds []result) (s summary, ok bool) {
	if len(rounds) == 0 {
		return summary{}, false
	}
	rates := make([]float64, len(rounds))
	p50s := make([]float64, len(rounds))
	p99s := make([]float64, len(rounds))
	cpus := make([]float64, len(rounds))
	for i, r := range rounds {
		cpus[i] = float64(r.cpu)
		rates[i] = r.rate()
		p50s[i] = float64(r.percentile(0.50))
		p99s[i] = float64(r.percentile(0.99))
		s.peakRSS = max(s.peakRSS, r.peakRSS)
	}
	s.rate = median(rates)
	s.p50 = time.Duration(median(p50s))
	s.p99 = time.Duration(median(p99s))
	s.cpu = time.Duration(median(cpus))
	s.rounds = len(rounds)
	return s, true
}

// median returns the median of v (the mean of the middle two for even
// lengths); 0 for none. v is reordered.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	m := len(v) / 2
	if len(v)%2 == 0 {
		return (v[m-1] + v[m]) / 2
	}
	return v[m]
}
