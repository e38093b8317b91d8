package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/sqlite"
	"github.com/customs-dev/customs/internal/store/storetest"
)

// openShared opens a store in a new file, a raw connection to the file and
// a function opening more stores on it.
func openShared(t testing.TB, now func() time.Time) (store.Store, *sql.DB, func(testing.TB) store.Store) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "customs.db")
	reopen := func(t testing.TB) store.Store {
		t.Helper()
		db, err := sqlite.Open(context.Background(), path, discard(), sqlite.WithClock(now))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	s := reopen(t)
	raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return s, raw, reopen
}

func TestAuditTamper(t *testing.T) { storetest.RunAuditTamper(t, openShared) }

func BenchmarkAuditAppend(b *testing.B) { storetest.BenchAuditAppend(b, open) }
func BenchmarkAuditQuery(b *testing.B)  { storetest.BenchAuditQuery(b, open) }

// cancelAfter is a context cancelled once Err has been asked n times: a
// cancellation landing in the middle of an audit batch, deterministically.
type cancelAfter struct {
	context.Context
	mu   sync.Mutex
	n    int
	done chan struct{}
}

func newCancelAfter(n int) *cancelAfter {
	return &cancelAfter{Context: context.Background(), n: n, done: make(chan struct{})}
}

func (c *cancelAfter) Done() <-chan struct{} { return c.done }

func (c *cancelAfter) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n > 0 {
		c.n--
		if c.n == 0 {
			close(c.done)
		}
		return nil
	}
	return context.Canceled
}

// On SQLite the audit blocks are inserted with a context the driver does
// not watch (it would start a goroutine per statement) and the context is
// checked between statements instead: a cancellation in the middle of a
// batch (here after its first block) must still fail the
// append, store none of it and leave the chain as it was.
func TestAuditAppendCancelledMidBatch(t *testing.T) {
	s := open(t, time.Now)
	ctx := context.Background()
	ev := func() audit.Event {
		return audit.Event{ActorKind: audit.ActorUser, Actor: "alice", Action: "artifact.pull", Outcome: audit.Success,
			Resource: "repository:proj/app", Details: map[string]string{"tag": "v1"}}
	}
	if err := s.AppendAudit(ctx, []audit.Event{ev()}); err != nil {
		t.Fatal(err)
	}
	batch := make([]audit.Event, 2500) // several blocks
	for i := range batch {
		batch[i] = ev()
	}
	// Each block's insert checks the context before the block's row and
	// before its keys' row.
	cctx := newCancelAfter(3)
	if err := s.AppendAudit(cctx, batch); err == nil {
		t.Fatal("AppendAudit with a context cancelled mid-batch succeeded")
	}
	if cctx.n != 0 {
		t.Fatalf("the context was asked %d times fewer than expected: the cancellation did not land mid-batch", cctx.n)
	}
	got, err := s.AuditEvents(ctx, store.AuditFilter{N: 1000})
	if err != nil || len(got) != 1 {
		t.Fatalf("after the cancelled batch %d events are stored (%v), want the 1 before it", len(got), err)
	}
	if err := s.AppendAudit(ctx, batch[:2]); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyStore(ctx, s)
	if err != nil || !rep.OK || rep.Events != 3 {
		t.Fatalf("VerifyStore = %+v, %v; want an intact chain of 3", rep, err)
	}
}
