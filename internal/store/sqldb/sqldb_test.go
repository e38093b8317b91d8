package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

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
