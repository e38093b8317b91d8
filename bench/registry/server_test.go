package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseAddrFile(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"host port", "127.0.0.1:5000", "127.0.0.1:5000", false},
		{"newline", "127.0.0.1:41234\n", "127.0.0.1:41234", false},
		{"url", "http://127.0.0.1:8080/", "127.0.0.1:8080", false},
		{"ipv6", "[::1]:5000", "[::1]:5000", false},
		{"wildcard", "0.0.0.0:5000", "127.0.0.1:5000", false},
		{"empty host", ":5000", "127.0.0.1:5000", false},
		{"no port", "127.0.0.1", "", true},
		{"path", "127.0.0.1:5000/v2", "", true},
		{"two lines", "127.0.0.1:1\n127.0.0.1:2", "", true},
		{"empty", "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseAddrFile([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func FuzzParseAddrFile(f *testing.F) {
	for _, s := range []string{"127.0.0.1:5000", "http://[::1]:1/", ":0", "a:b:c"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		addr, err := parseAddrFile(b)
		if err != nil {
			return
		}
		if strings.ContainsAny(addr, "/ \t\r\n") {
			t.Fatalf("parseAddrFile(%q) = %q", b, addr)
		}
		if again, err := parseAddrFile([]byte(addr)); err != nil || again != addr {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", b, addr, again, err)
		}
	})
}

func TestParseProcStatus(t *testing.T) {
	in := "Name:\tregistry\nVmHWM:\t  123456 kB\nVmRSS:\t   2048 kB\nThreads:\t12\nVmBad:\t-5 kB\nVmHuge:\t99999999999999 kB\n"
	got := parseProcStatus([]byte(in))
	want := map[string]int64{"VmHWM": 123456 * 1024, "VmRSS": 2048 * 1024}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
}

func FuzzParseProcStatus(f *testing.F) {
	f.Add([]byte("VmHWM:\t  123456 kB\nVmRSS:\t 1 kB\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for k, v := range parseProcStatus(b) {
			if v < 0 || v > 1<<50 {
				t.Fatalf("%s = %d", k, v)
			}
		}
	})
}

func TestRSSSamplerSeesOwnProcess(t *testing.T) {
	r := startRSS(os.Getpid(), time.Millisecond)
	hold := make([]byte, 64<<20)
	for i := range hold {
		hold[i] = byte(i)
	}
	// Spin for CPU time the sampler must see (the kernel counts in 10 ms ticks).
	x := 0
	for start := time.Now(); time.Since(start) < 100*time.Millisecond; x++ {
	}
	peak, cpu := r.finish()
	if peak < 64<<20 {
		t.Fatalf("peak RSS %d bytes while holding 64 MiB", peak)
	}
	if cpu < 20*time.Millisecond || cpu > time.Minute {
		t.Errorf("CPU %v after spinning 100 ms (%d loops)", cpu, x)
	}
	_ = hold[len(hold)-1]
}

func TestParseProcStat(t *testing.T) {
	tail := " S 1 2 3 4 5 6 7 8 9 10 250 130 0 0 20 0 12 0 100 2000000 500 0 0"
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"plain", "42 (registry)" + tail, 3800 * time.Millisecond, false},
		{"name with spaces and parens", "42 (a b) (c))" + tail, 3800 * time.Millisecond, false},
		{"no name", "42 registry" + tail, 0, true},
		{"short", "42 (x) S 1 2 3", 0, true},
		{"negative", "42 (x) S 1 2 3 4 5 6 7 8 9 10 -1 130 0", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("42 (registry) S 1 2 3 4 5 6 7 8 9 10 250 130 0 0 20 0 12 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := parseProcStat(b); err == nil && (d < 0 || d > time.Duration(1<<37)*(time.Second/userHZ)) {
			t.Fatalf("parseProcStat(%q) = %v", b, d)
		}
	})
}
