package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// result is one round against one server.
type result struct {
	ok, errs int64
	firstErr error
	elapsed  time.Duration   // first scheduled request to last answer
	lat      []time.Duration // sorted
	cpu      time.Duration   // server CPU over the round and its audit drain
	drain    time.Duration   // wait for the audit queue to empty after the round
	load     float64         // 1-minute load average (mean of start and end)
}

func (r result) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

func (r result) pct(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(q*float64(len(r.lat))+0.5) - 1
	return r.lat[min(max(i, 0), len(r.lat)-1)]
}

// cpuPerPull is the server's CPU time per answered pull.
func (r result) cpuPerPull() time.Duration {
	if r.ok == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.ok)
}

func (r result) String() string {
	s := fmt.Sprintf("%8.0f pulls/s  p50 %7s  p99 %7s  cpu/pull %5.1f µs  drain %s  load %.1f",
		r.rate(), r.pct(0.50).Round(time.Microsecond), r.pct(0.99).Round(time.Microsecond),
		float64(r.cpuPerPull().Nanoseconds())/1e3, r.drain.Round(time.Millisecond), r.load)
	if r.errs > 0 {
		s += fmt.Sprintf("  %d errors (first: %v)", r.errs, r.firstErr)
	}
	return s
}

// collector gathers latencies and errors from workers.
type collector struct {
	mu       sync.Mutex
	lat      []time.Duration
	ok, errs int64
	firstErr error
	last     time.Time
}

// tally is one worker's share of a collector, merged once it stops.
type tally struct {
	lat      []time.Duration
	ok, errs int64
	firstErr error
	last     time.Time
}

// pull runs one pull counted from from (its scheduled or its start time).
func (t *tally) pull(ctx context.Context, hc *http.Client, base string, from time.Time) {
	err := pull(ctx, hc, base)
	now := time.Now()
	if err != nil {
		t.errs++
		if t.firstErr == nil {
			t.firstErr = err
		}
		return
	}
	t.ok++
	t.lat = append(t.lat, now.Sub(from))
	t.last = now
}

// add merges a worker's tally.
func (c *collector) add(t *tally) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lat = append(c.lat, t.lat...)
	c.ok += t.ok
	c.errs += t.errs
	if c.firstErr == nil {
		c.firstErr = t.firstErr
	}
	if t.last.After(c.last) {
		c.last = t.last
	}
}

func (c *collector) result(start time.Time) result {
	slices.Sort(c.lat)
	return result{ok: c.ok, errs: c.errs, firstErr: c.firstErr, elapsed: c.last.Sub(start), lat: c.lat}
}

// openLoop sends pulls at rate per second for d, each at its scheduled time
// whether or not earlier ones have been answered (a free worker of
// workers takes it; if none is free it waits, and the wait counts in its
// latency, which runs from the scheduled time to the answer).
func openLoop(ctx context.Context, a *arm, rate int, d time.Duration, workers int) (result, error) {
	n := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	due := make(chan time.Time, n)
	var c collector
	var wg sync.WaitGroup
	base := a.srv.base()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var t tally
			for at := range due {
				t.pull(ctx, a.hc, base, at)
			}
			c.add(&t)
		}()
	}
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 500*time.Microsecond {
			time.Sleep(wait)
		}
		if ctx.Err() != nil {
			break
		}
		due <- at
	}
	close(due)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	return c.result(start), nil
}

// closedLoop runs conc workers pulling back to back for d.
func closedLoop(ctx context.Context, a *arm, conc int, d time.Duration) (result, error) {
	var c collector
	var wg sync.WaitGroup
	base := a.srv.base()
	start := time.Now()
	end := start.Add(d)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var t tally
			for time.Now().Before(end) && ctx.Err() == nil {
				t.pull(ctx, a.hc, base, time.Now())
			}
			c.add(&t)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	return c.result(start), nil
}
