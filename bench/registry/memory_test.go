package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseMemoryMode(t *testing.T) {
	for _, ok := range []string{"reused", "settled", "as-is"} {
		m, err := parseMemoryMode(ok)
		if err != nil || string(m) != ok {
			t.Errorf("parseMemoryMode(%q) = %q, %v", ok, m, err)
		}
		if m.describe() == "" {
			t.Errorf("%q has no description", ok)
		}
	}
	if _, err := parseMemoryMode("warm"); err == nil || !strings.Contains(err.Error(), "reused, settled or as-is") {
		t.Errorf("parseMemoryMode(warm) error %v, want the choices named", err)
	}
}

func TestWaitReportingIdle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reported_kib")
	if err := os.WriteFile(path, []byte("100\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const quiet, poll = 150 * time.Millisecond, 10 * time.Millisecond

	// The counter moves three times, 40 ms apart: idle only from the last.
	lastChange := make(chan time.Time, 1)
	go func() {
		for i := range 3 {
			time.Sleep(40 * time.Millisecond)
			if err := os.WriteFile(path, []byte(strings.Repeat("9", i+4)+"\n"), 0o644); err != nil {
				t.Error(err)
			}
		}
		lastChange <- time.Now()
	}()
	waitReportingIdle(path, quiet, 10*time.Second, poll)
	done := time.Now()
	if idle := done.Sub(<-lastChange); idle < quiet-poll {
		t.Errorf("returned %v after the last change, want at least %v", idle, quiet)
	}

	// No reporting on the machine: at once.
	start := time.Now()
	waitReportingIdle(filepath.Join(t.TempDir(), "absent"), quiet, 10*time.Second, poll)
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("absent counter: waited %v", d)
	}

	// A counter that never settles: bounded by the limit.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				_ = os.WriteFile(path, []byte(strings.Repeat("1", i%50+1)), 0o644)
			}
		}
	}()
	start = time.Now()
	waitReportingIdle(path, quiet, 300*time.Millisecond, poll)
	if d := time.Since(start); d < 300*time.Millisecond || d > 2*time.Second {
		t.Errorf("busy counter: returned after %v, want the 300ms limit", d)
	}
}

func TestRunPrepared(t *testing.T) {
	var order []string
	r, err := runPrepared(context.Background(), 3, func() error {
		order = append(order, "prepare")
		time.Sleep(30 * time.Millisecond) // untimed
		return nil
	}, func(ctx context.Context, w, i int) (int64, error) {
		order = append(order, "op")
		time.Sleep(5 * time.Millisecond)
		return 10, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, ","); got != "prepare,op,prepare,op,prepare,op" {
		t.Errorf("calls %s", got)
	}
	if r.ops != 3 || r.bytes != 30 || len(r.lat) != 3 {
		t.Errorf("result %+v", r)
	}
	var sum time.Duration
	for _, l := range r.lat {
		sum += l
	}
	if r.wall != sum || r.wall >= 90*time.Millisecond {
		t.Errorf("wall %v: want the operations' own time %v, without the preparation", r.wall, sum)
	}

	boom := errors.New("boom")
	if _, err := runPrepared(context.Background(), 2, func() error { return boom }, nil); !errors.Is(err, boom) {
		t.Errorf("failing preparation: %v", err)
	}
}

func TestMemoryPrepReused(t *testing.T) {
	dir := t.TempDir()
	m, err := newMemoryPrep(memoryReused, dir, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.prepare(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("scratch file left behind: %v", left)
	}
	var none *memoryPrep
	if err := none.prepare(); err != nil {
		t.Errorf("nil preparation: %v", err)
	}
}

func TestReceiveBare(t *testing.T) {
	const size = 5<<20 + 123 // not a multiple of the buffers
	f, err := os.Create(filepath.Join(t.TempDir(), "bare"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, sum, err := receiveBare(newStream(7, size), f)
	if err != nil || n != size {
		t.Fatalf("receiveBare: %d bytes, %v", n, err)
	}
	want := sha256.New()
	if _, err := io.Copy(want, newStream(7, size)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sum, want.Sum(nil)) {
		t.Error("digest differs from the content's")
	}
	written, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	content, _ := io.ReadAll(newStream(7, size))
	if !bytes.Equal(written, content) {
		t.Error("file differs from the content")
	}
}

func TestMeasureBarePush(t *testing.T) {
	prepared := 0
	rate, err := measureBarePush(t.TempDir(), 8<<20, func() error { prepared++; return nil })
	if err != nil || rate <= 0 || prepared != 1 {
		t.Errorf("measureBarePush: %.0f MB/s, %v, prepared %d times", rate, err, prepared)
	}
}

func TestMemoryFlag(t *testing.T) {
	o, err := parseFlags([]string{"-memory", "warm", "-customs", os.Args[0]}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := buildPlan(o, io.Discard); err == nil || !strings.Contains(err.Error(), `-memory "warm"`) {
		t.Errorf("buildPlan with -memory warm: %v", err)
	}
}
