package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"
	_ "modernc.org/sqlite"

	"github.com/customs-dev/customs/internal/apperr"
)

var errDeadlock = errors.New("deadlock detected")

// testDB is a DB over an in-memory SQLite database whose dialect reports
// errDeadlock as retryable; it has no schema, so only inTx and wrap work.
func testDB(t *testing.T) *DB {
	t.Helper()
	raw, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	t.Cleanup(func() { raw.Close() })
	return &DB{read: raw, write: raw, now: time.Now,
		log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		d: Dialect{Name: "test", Classify: func(err error) ErrKind {
			if errors.Is(err, errDeadlock) {
				return ErrRetry
			}
			return ErrOther
		}}}
}

func TestInTxRetries(t *testing.T) {
	for _, tc := range []struct {
		name      string
		retry     bool
		failures  int   // times fn fails before succeeding
		failWith  error // what it fails with
		wantCalls int
		wantCode  string // "" for success
	}{
		{"deadlock retried", true, 2, errDeadlock, 3, ""},
		{"retries are bounded", true, 100, errDeadlock, maxRetries + 1, apperr.EUNAVAILABLE},
		{"no retry when asked not to", false, 1, errDeadlock, 1, apperr.EUNAVAILABLE},
		{"application errors are not retried", true, 1, apperr.Errorf(apperr.ENOTFOUND, "x"), 1, apperr.ENOTFOUND},
		{"other errors are not retried", true, 1, errors.New("disk I/O error"), 1, apperr.EINTERNAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := testDB(t)
			calls := 0
			err := db.inTx(context.Background(), tc.retry, func(tx *sql.Tx) error {
				calls++
				if calls <= tc.failures {
					return tc.failWith
				}
				return nil
			})
			if calls != tc.wantCalls {
				t.Errorf("fn ran %d times, want %d", calls, tc.wantCalls)
			}
			if apperr.Code(err) != tc.wantCode {
				t.Errorf("err = %v, want code %q", err, tc.wantCode)
			}
		})
	}
}

func TestWrap(t *testing.T) {
	db := testDB(t)
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"application error kept", apperr.Errorf(apperr.ECONFLICT, "x"), apperr.ECONFLICT},
		{"cancelled", context.Canceled, apperr.EUNAVAILABLE},
		{"retryable", errDeadlock, apperr.EUNAVAILABLE},
		{"other", errors.New("boom"), apperr.EINTERNAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := db.wrap(tc.err)
			if apperr.Code(err) != tc.want {
				t.Errorf("wrap(%v) = %v, want code %q", tc.err, err, tc.want)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("wrap(%v) lost the cause", tc.err)
			}
			if tc.want == apperr.EINTERNAL && apperr.Message(err) == tc.err.Error() {
				t.Errorf("internal detail %q leaks into the caller's message", tc.err)
			}
		})
	}
}

// serialWriterDB is testDB with the writer slots New sets up for
// WithWriters(1).
func serialWriterDB(t *testing.T) *DB {
	db := testDB(t)
	var o options
	WithWriters(1)(&o)
	if o.writers != 1 {
		t.Fatalf("WithWriters(1) set %d writers", o.writers)
	}
	db.writers = semaphore.NewWeighted(o.writers)
	return db
}

// TestWritersInArrivalOrder: with WithWriters(1), transactions waiting for
// the one writer start in the order they asked for it. database/sql alone
// hands a freed connection to a random waiter (12 waiters in order by
// chance: 1 in 479 million).
func TestWritersInArrivalOrder(t *testing.T) {
	db := serialWriterDB(t)
	ctx := context.Background()

	held, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- db.inTx(ctx, false, func(*sql.Tx) error { close(held); <-release; return nil })
	}()
	<-held

	const n = 12
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := db.inTx(ctx, false, func(*sql.Tx) error {
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
		}()
		// Let writer i queue up before writer i+1 asks.
		time.Sleep(30 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, got := range order {
		if got != i {
			t.Fatalf("writers started in the order %v, want 0..%d", order, n-1)
		}
	}
	if len(order) != n {
		t.Fatalf("%d of %d writers ran", len(order), n)
	}
}

// TestWritersCancelledWaiter: a transaction whose context ends while it
// waits for a writer slot fails as unavailable without running, and the
// slot goes to the next waiter.
func TestWritersCancelledWaiter(t *testing.T) {
	db := serialWriterDB(t)
	held, release := make(chan struct{}), make(chan struct{})
	go db.inTx(context.Background(), false, func(*sql.Tx) error { close(held); <-release; return nil })
	<-held
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	ran := false
	err := db.inTx(ctx, false, func(*sql.Tx) error { ran = true; return nil })
	if ran || apperr.Code(err) != apperr.EUNAVAILABLE {
		t.Fatalf("cancelled waiter: ran=%v err=%v, want not run and %s", ran, err, apperr.EUNAVAILABLE)
	}
	close(release)
	if err := db.inTx(context.Background(), false, func(*sql.Tx) error { return nil }); err != nil {
		t.Fatalf("next writer after a cancelled one: %v", err)
	}
}
