package auth

import (
	"context"
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
)

func TestHashGateSharesAndBounds(t *testing.T) {
	params := PasswordParams{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	encoded, err := HashPassword("right", params)
	if err != nil {
		t.Fatal(err)
	}
	g := newHashGate()
	ctx := context.Background()

	// Many identical concurrent checks all get the right answer.
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, _, err := g.verify(ctx, sha256.Sum256([]byte("same")), encoded, "right", params)
			if err != nil || !ok {
				t.Errorf("verify = %v, %v", ok, err)
			}
		}()
	}
	wg.Wait()
	// A wrong password sharing nothing with them is refused.
	if ok, _, err := g.verify(ctx, sha256.Sum256([]byte("other")), encoded, "wrong", params); err != nil || ok {
		t.Fatalf("wrong password: %v, %v", ok, err)
	}

	// With every slot taken, a check waits and gives up with its context.
	for i := 0; i < cap(g.slots); i++ {
		g.slots <- struct{}{}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, _, err = g.verify(short, sha256.Sum256([]byte("late")), encoded, "right", params)
	if !apperr.Is(err, apperr.EUNAVAILABLE) {
		t.Fatalf("verify with no free slot: %v, want EUNAVAILABLE", err)
	}
}
