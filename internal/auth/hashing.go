package auth

import (
	"context"
	"runtime"

	"golang.org/x/sync/singleflight"

	"github.com/customs-dev/customs/internal/apperr"
)

// hashGate bounds password hashing: identical checks in flight (a CI job's
// 32 workers logging in with the same credentials at once) share one
// argon2id computation, and at most a few computations (each holds ~19 MiB)
// run at the same time, so a burst of logins cannot balloon memory.
type hashGate struct {
	flight singleflight.Group
	slots  chan struct{}
}

func newHashGate() *hashGate {
	return &hashGate{slots: make(chan struct{}, 2*runtime.GOMAXPROCS(0))}
}

type verdict struct{ ok, rehash bool }

// verify checks password against encoded, sharing the work with identical
// concurrent calls (same key). It waits for a hashing slot, or fails with
// EUNAVAILABLE when ctx ends first.
func (g *hashGate) verify(ctx context.Context, key [32]byte, encoded, password string, want PasswordParams) (ok, rehash bool, err error) {
	v, err, _ := g.flight.Do(string(key[:]), func() (any, error) {
		if err := g.acquire(ctx); err != nil {
			return nil, err
		}
		defer g.release()
		ok, rehash, err := VerifyPassword(encoded, password, want)
		return verdict{ok, rehash}, err
	})
	if err != nil {
		return false, false, err
	}
	r := v.(verdict)
	return r.ok, r.rehash, nil
}

// burn spends one bounded hashing slot on fn (for constant-time misses).
func (g *hashGate) burn(ctx context.Context, fn func()) {
	if g.acquire(ctx) != nil {
		return
	}
	defer g.release()
	fn()
}

func (g *hashGate) acquire(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return apperr.Wrap(ctx.Err(), apperr.EUNAVAILABLE, "too many logins at once; try again")
	}
}

func (g *hashGate) release() { <-g.slots }
