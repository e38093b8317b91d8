package main

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", ms(7), 0.99, 7 * time.Millisecond},
		{"median odd", ms(1, 2, 3), 0.5, 2 * time.Millisecond},
		{"median even is lower", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"p99 of 100", ms(hundred...), 0.99, 99 * time.Millisecond},
		{"p50 of 100", ms(hundred...), 0.5, 50 * time.Millisecond},
		{"p99 of few is max", ms(1, 2, 30), 0.99, 30 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.q); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRunOps(t *testing.T) {
	tests := []struct {
		name       string
		conc, n    int
		wantInFlow int // the most operations that must overlap
	}{
		{"serial", 1, 5, 1},
		{"parallel", 4, 16, 4},
		{"more workers than ops", 8, 3, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var inFlight, peak, calls atomic.Int64
			seen := make([]atomic.Bool, tc.n)
			r, err := runOps(context.Background(), tc.conc, tc.n, func(ctx context.Context, w, i int) (int64, error) {
				calls.Add(1)
				if w < 0 || w >= tc.conc {
					t.Errorf("worker %d out of range", w)
				}
				if seen[i].Swap(true) {
					t.Errorf("op %d ran twice", i)
				}
				cur := inFlight.Add(1)
				for p := peak.Load(); cur > p && !peak.CompareAndSwap(p, cur); p = peak.Load() {
				}
				time.Sleep(20 * time.Millisecond)
				inFlight.Add(-1)
				return 10, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if calls.Load() != int64(tc.n) || r.ops != tc.n || len(r.lat) != tc.n {
				t.Fatalf("calls %d, ops %d, latencies %d; want %d", calls.Load(), r.ops, len(r.lat), tc.n)
			}
			if r.bytes != int64(10*tc.n) {
				t.Errorf("bytes %d, want %d", r.bytes, 10*tc.n)
			}
			if peak.Load() != int64(tc.wantInFlow) {
				t.Errorf("peak concurrency %d, want %d", peak.Load(), tc.wantInFlow)
			}
			if r.percentile(0.5) < 20*time.Millisecond || r.wall < 20*time.Millisecond {
				t.Errorf("p50 %v, wall %v: shorter than the operations", r.percentile(0.5), r.wall)
			}
		})
	}
}

func TestRunOpsStopsOnError(t *testing.T) {
	boom := errors.New("boom")
	var calls atomic.Int64
	_, err := runOps(context.Background(), 2, 1000, func(ctx context.Context, w, i int) (int64, error) {
		calls.Add(1)
		if i == 3 {
			return 0, boom
		}
		time.Sleep(time.Millisecond)
		return 1, ctx.Err()
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if calls.Load() > 10 {
		t.Errorf("%d operations ran after the error", calls.Load())
	}
}

func TestSummarize(t *testing.T) {
	mk := func(rate float64, p50 time.Duration, rss int64) result {
		// 1e6 bytes in 1/rate seconds gives rate MB/s.
		return result{ops: 1, bytes: 1e6, wall: time.Duration(float64(time.Second) / rate), lat: []time.Duration{p50}, peakRSS: rss}
	}
	tests := []struct {
		name     string
		rounds   []result
		wantRate float64
		wantP50  time.Duration
		wantRSS  int64
	}{
		{"one", []result{mk(100, time.Second, 5)}, 100, time.Second, 5},
		{"median of three ignores an outlier", []result{mk(100, 3*time.Second, 5), mk(10, time.Second, 9), mk(120, 2*time.Second, 7)}, 100, 2 * time.Second, 9},
		{"even count averages the middle", []result{mk(100, time.Second, 1), mk(200, 3*time.Second, 1)}, 150, 2 * time.Second, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := summarize(tc.rounds)
			if !ok {
				t.Fatal("not ok")
			}
			if d := s.rate - tc.wantRate; d > 0.01 || d < -0.01 {
				t.Errorf("rate %v, want %v", s.rate, tc.wantRate)
			}
			if s.p50 != tc.wantP50 || s.peakRSS != tc.wantRSS || s.rounds != len(tc.rounds) {
				t.Errorf("got %+v", s)
			}
		})
	}
	if _, ok := summarize(nil); ok {
		t.Error("summary of no rounds is ok")
	}
}
