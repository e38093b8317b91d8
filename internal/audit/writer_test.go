package audit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/sqlite"
)

// memStore is an Appender keeping events in memory. fail, if set, decides
// whether a call fails; delay slows every call.
type memStore struct {
	mu      sync.Mutex
	events  []audit.Event
	batches []int
	calls   int
	fail    func(call int, batch []audit.Event) error
	delay   time.Duration
}

func (m *memStore) AppendAudit(ctx context.Context, batch []audit.Event) error {
	if m.delay > 0 {
		select {
		case <-time.After(m.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.fail != nil {
		if err := m.fail(m.calls, batch); err != nil {
			return err
		}
	}
	for _, e := range batch {
		e.ID = int64(len(m.events) + 1)
		m.events = append(m.events, e)
	}
	m.batches = append(m.batches, len(batch))
	return nil
}

func (m *memStore) stored() []audit.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]audit.Event(nil), m.events...)
}

// metric returns the value of the counter or gauge name in reg.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// logBuf collects log output.
type logBuf struct {
	mu sync.Mutex
	sb strings.Builder
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.Write(p)
}

func (b *logBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.String()
}

// newWriter starts a writer over s with fast timings, closed when t ends.
func newWriter(t *testing.T, s audit.Appender, edit func(*audit.WriterOptions)) (*audit.Writer, *prometheus.Registry, *logBuf) {
	t.Helper()
	reg := prometheus.NewRegistry()
	logs := &logBuf{}
	o := audit.WriterOptions{
		Store: s, Registerer: reg, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		FlushInterval: 5 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
	}
	if edit != nil {
		edit(&o)
	}
	w := audit.NewWriter(o)
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w, reg, logs
}

func event(actor string, n int) audit.Event {
	return audit.Event{ActorKind: audit.ActorUser, Actor: actor, Action: "artifact.pull", Outcome: audit.Success,
		Resource: fmt.Sprintf("%s/%d", actor, n)}
}

func TestWriterCloseFlushesEverything(t *testing.T) {
	s := &memStore{delay: time.Millisecond}
	w, reg, _ := newWriter(t, s, func(o *audit.WriterOptions) { o.BatchSize = 100; o.FlushInterval = time.Hour })
	const n = 1234
	for i := range n {
		w.Record(context.Background(), event("a", i))
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := s.stored()
	if len(got) != n {
		t.Fatalf("stored %d events, want %d", len(got), n)
	}
	for i, e := range got {
		if e.Resource != fmt.Sprintf("a/%d", i) {
			t.Fatalf("event %d is %s: order not kept", i, e.Resource)
		}
	}
	for _, b := range s.batches {
		if b > 100 {
			t.Errorf("a batch of %d events exceeds BatchSize 100", b)
		}
	}
	if v := metric(t, reg, "customs_audit_events_written_total"); v != n {
		t.Errorf("written metric %v, want %d", v, n)
	}
	if v := metric(t, reg, "customs_audit_queue_length"); v != 0 {
		t.Errorf("queue length after Close %v, want 0", v)
	}
	if w.Pending() != 0 {
		t.Errorf("Pending after Close = %d", w.Pending())
	}
}

func TestWriterFlushesOnInterval(t *testing.T) {
	s := &memStore{}
	w, _, _ := newWriter(t, s, func(o *audit.WriterOptions) { o.FlushInterval = 10 * time.Millisecond })
	w.Record(context.Background(), event("a", 1))
	deadline := time.Now().Add(5 * time.Second)
	for len(s.stored()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a lone event was not stored within 5 s of a 10 ms flush interval")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWriterFlushIntervalAdapts: while each flush stores at least
// BatchSize/8 events the wait before the next doubles (bigger batches, fewer
// commits under load), up to MaxFlushInterval; a small flush brings it back
// to FlushInterval, so an idle writer stores a lone event promptly.
func TestWriterFlushIntervalAdapts(t *testing.T) {
	s := &memStore{}
	w, _, _ := newWriter(t, s, func(o *audit.WriterOptions) {
		o.BatchSize = 80 // busy from 10 events a flush
		o.FlushInterval = 20 * time.Millisecond
		o.MaxFlushInterval = 10 * time.Second
	})
	ctx := context.Background()
	// storedAfter records n events and returns how long until they are stored.
	storedAfter := func(n int) time.Duration {
		t.Helper()
		want := len(s.stored()) + n
		start := time.Now()
		for i := range n {
			w.Record(ctx, event("a", i))
		}
		for len(s.stored()) < want {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("%d events not stored within 10 s", n)
			}
			time.Sleep(time.Millisecond)
		}
		return time.Since(start)
	}
	// Busy flushes of 20 events: waits of 20, 40, 80, 160, 320, 640 ms
	// (each measured from a moment after the previous flush, so at most
	// that). With a fixed interval every wait would be at most 20 ms.
	var waits []time.Duration
	for range 6 {
		waits = append(waits, storedAfter(20))
	}
	if waits[5] < 300*time.Millisecond {
		t.Errorf("waits for busy flushes %v: the sixth is under 300 ms, the interval did not grow", waits)
	}
	// One event (a small flush; the wait before it was 1.28 s), then the
	// next lone event is stored after about FlushInterval again.
	storedAfter(1)
	if d := storedAfter(1); d > 500*time.Millisecond {
		t.Errorf("a lone event after a small flush waited %v, want about the 20 ms FlushInterval", d)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(s.stored()); got != 6*20+2 {
		t.Errorf("stored %d events, want %d", got, 6*20+2)
	}
}

// TestWriterConcurrentProducers: 20 producers against a small queue and a
// slow store: Record blocks (and counts it), nothing is lost or doubled,
// and each producer's events keep their order.
func TestWriterConcurrentProducers(t *testing.T) {
	s := &memStore{delay: 2 * time.Millisecond}
	w, reg, _ := newWriter(t, s, func(o *audit.WriterOptions) { o.QueueSize = 50; o.BatchSize = 20 })
	const producers, each = 20, 300
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				w.Record(context.Background(), event(fmt.Sprintf("p%02d", p), i))
			}
		}()
	}
	wg.Wait()
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := s.stored()
	if len(got) != producers*each {
		t.Fatalf("stored %d events, want %d", len(got), producers*each)
	}
	next := map[string]int{}
	for _, e := range got {
		actor, n, _ := strings.Cut(e.Resource, "/")
		if want := fmt.Sprint(next[actor]); n != want {
			t.Fatalf("%s's event %s stored when %s was due", actor, n, want)
		}
		next[actor]++
	}
	if v := metric(t, reg, "customs_audit_record_blocked_total"); v == 0 {
		t.Error("no Record blocked although the queue (50) is far smaller than the load")
	}
}

func TestWriterRetriesFailedBatches(t *testing.T) {
	s := &memStore{fail: func(call int, _ []audit.Event) error {
		if call <= 3 {
			return apperr.Errorf(apperr.EUNAVAILABLE, "database down")
		}
		return nil
	}}
	w, reg, logs := newWriter(t, s, nil)
	for i := range 10 {
		w.Record(context.Background(), event("a", i))
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(s.stored()); got != 10 {
		t.Errorf("stored %d events after the database came back, want 10", got)
	}
	if v := metric(t, reg, "customs_audit_flush_errors_total"); v != 3 {
		t.Errorf("flush errors %v, want 3", v)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "database down") {
		t.Errorf("failures were not logged loudly:\n%s", logs)
	}
}

func TestWriterCloseDeadline(t *testing.T) {
	s := &memStore{fail: func(int, []audit.Event) error { return errors.New("database gone") }}
	w, reg, logs := newWriter(t, s, nil)
	for i := range 7 {
		w.Record(context.Background(), event("a", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := w.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "7 events") {
		t.Fatalf("Close = %v, want an error counting 7 lost events", err)
	}
	if v := metric(t, reg, "customs_audit_events_lost_total"); v != 7 {
		t.Errorf("lost metric %v, want 7", v)
	}
	if !strings.Contains(logs.String(), "lost") {
		t.Errorf("the loss was not logged:\n%s", logs)
	}
}

func TestWriterRejectsInvalidEvents(t *testing.T) {
	s := &memStore{}
	w, reg, logs := newWriter(t, s, nil)
	w.Record(context.Background(), audit.Event{ActorKind: audit.ActorUser, Outcome: audit.Success})
	w.Record(context.Background(), event("a", 1))
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.stored(); len(got) != 1 || got[0].Actor != "a" {
		t.Errorf("stored %+v, want only the valid event", got)
	}
	if v := metric(t, reg, "customs_audit_events_rejected_total"); v != 1 {
		t.Errorf("rejected metric %v, want 1", v)
	}
	if !strings.Contains(logs.String(), "invalid event") {
		t.Errorf("the rejection was not logged:\n%s", logs)
	}
}

// TestWriterIsolatesARefusedEvent: when the store refuses a batch as
// invalid, the writer stores its events one by one so the others survive.
func TestWriterIsolatesARefusedEvent(t *testing.T) {
	s := &memStore{fail: func(_ int, batch []audit.Event) error {
		for _, e := range batch {
			if e.Actor == "poison" {
				return apperr.Errorf(apperr.EINVALID, "refused")
			}
		}
		return nil
	}}
	w, reg, _ := newWriter(t, s, func(o *audit.WriterOptions) { o.FlushInterval = time.Hour })
	for i := range 5 {
		actor := "a"
		if i == 2 {
			actor = "poison"
		}
		w.Record(context.Background(), event(actor, i))
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range s.stored() {
		got = append(got, e.Resource)
	}
	if strings.Join(got, " ") != "a/0 a/1 a/3 a/4" {
		t.Errorf("stored %v, want every event but the refused one, in order", got)
	}
	if v := metric(t, reg, "customs_audit_events_rejected_total"); v != 1 {
		t.Errorf("rejected metric %v, want 1", v)
	}
}

func TestWriterFillsTimeAndClient(t *testing.T) {
	s := &memStore{}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6789, time.UTC)
	w, _, _ := newWriter(t, s, func(o *audit.WriterOptions) { o.Now = func() time.Time { return at } })
	ctx := audit.WithClient(context.Background(), "192.0.2.7", "crane/0.20")
	w.Record(ctx, event("a", 1))
	own := event("b", 2)
	own.ClientIP, own.Time = "198.51.100.1", at.Add(-time.Hour)
	w.Record(ctx, own)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := s.stored()
	if len(got) != 2 {
		t.Fatalf("stored %d events", len(got))
	}
	if got[0].ClientIP != "192.0.2.7" || got[0].UserAgent != "crane/0.20" || !got[0].Time.Equal(at.Truncate(time.Microsecond)) {
		t.Errorf("first event %+v: want client from the context and the writer's time", got[0])
	}
	if got[1].ClientIP != "198.51.100.1" || got[1].UserAgent != "crane/0.20" || !got[1].Time.Equal(at.Add(-time.Hour).Truncate(time.Microsecond)) {
		t.Errorf("second event %+v: want its own IP and time kept", got[1])
	}
}

func TestWriterRecordAfterClose(t *testing.T) {
	s := &memStore{}
	w, _, _ := newWriter(t, s, nil)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.Record(context.Background(), event("late", 1))
	if got := s.stored(); len(got) != 1 || got[0].Actor != "late" {
		t.Errorf("an event recorded after Close was not stored: %+v", got)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestWriterOverSQLite runs 20 producers through a writer into a real store:
// every event is stored once and the chain verifies.
func TestWriterOverSQLite(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "customs.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w, _, _ := newWriter(t, db, func(o *audit.WriterOptions) { o.QueueSize = 200; o.BatchSize = 64 })
	const producers, each = 20, 100
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				w.Record(context.Background(), event(fmt.Sprintf("p%d", p), i))
			}
		}()
	}
	wg.Wait()
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyStore(context.Background(), db)
	if err != nil || !rep.OK || rep.Events != producers*each {
		t.Fatalf("VerifyStore = %+v, %v; want %d events, intact", rep, err, producers*each)
	}
	for p := range producers {
		got, err := db.AuditEvents(context.Background(), store.AuditFilter{Actor: fmt.Sprintf("p%d", p)})
		if err != nil || len(got) != each {
			t.Errorf("producer %d: %d events stored (%v), want %d", p, len(got), err, each)
		}
	}
}

// nopStore stores nothing, instantly.
type nopStore struct{}

func (nopStore) AppendAudit(context.Context, []audit.Event) error { return nil }

// BenchmarkRecord measures what auditing adds to a request's own path:
// Record (normalize, validate, queue) with a store that costs nothing.
func BenchmarkRecord(b *testing.B) {
	w := audit.NewWriter(audit.WriterOptions{Store: nopStore{}})
	defer w.Close(context.Background())
	ctx := audit.WithClient(context.Background(), "192.0.2.10", "containers/5.29.2 (github.com/containers/image)")
	e := audit.Event{ActorKind: audit.ActorUser, Actor: "developer", Action: "artifact.pull", Outcome: audit.Success,
		Resource: "repository:library/debian@sha256:" + strings.Repeat("ab", 32), Project: "library",
		Details: map[string]string{"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": "1234"}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Record(ctx, e)
		}
	})
}

// TestWriterSkip: successful events of a skipped action are counted and not
// stored; the same action denied or failed, and other actions, are stored
// and the chain verifies.
func TestWriterSkip(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "customs.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w, reg, _ := newWriter(t, db, func(o *audit.WriterOptions) { o.Skip = []string{"artifact.pull"} })
	ctx := context.Background()
	pull := event("a", 1)
	denied := event("a", 2)
	denied.Outcome, denied.Reason = audit.Denied, "not a member"
	failed := event("a", 3)
	failed.Outcome = audit.Failure
	push := event("a", 4)
	push.Action = "artifact.push"
	pullAll := event("a", 5)
	pullAll.Action = "artifact.pull.all" // exact names only
	for _, e := range []audit.Event{pull, denied, pull, failed, push, pullAll} {
		w.Record(ctx, e)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := db.AuditEvents(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var stored []string
	for _, e := range got {
		stored = append(stored, e.Resource)
	}
	if want := []string{"a/5", "a/4", "a/3", "a/2"}; strings.Join(stored, " ") != strings.Join(want, " ") {
		t.Fatalf("stored %v, want %v (newest first)", stored, want)
	}
	if v := metric(t, reg, "customs_audit_events_skipped_total"); v != 2 {
		t.Errorf("skipped metric %v, want 2", v)
	}
	if rep, err := audit.VerifyStore(ctx, db); err != nil || !rep.OK {
		t.Fatalf("VerifyStore = %+v, %v", rep, err)
	}
}
