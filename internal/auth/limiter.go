package auth

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
)

// LimiterOptions configures a MemoryLoginLimiter.
type LimiterOptions struct {
	// MaxFailures is how many failed logins as one user from one address
	// within Window lock that pair out; default 5.
	MaxFailures int
	// MaxFailuresPerAddress is how many failed logins from one address,
	// whatever the user names, within Window lock the address out (password
	// spraying); default 20.
	MaxFailuresPerAddress int
	// Window is how long failures are remembered; default 15 minutes.
	Window time.Duration
	// Lockout is how long a locked-out pair or address is refused; default
	// 1 minute. Each further failure while the window still counts enough
	// failures locks it out again.
	Lockout time.Duration
	// MaxEntries bounds the memory used: at most this many users+address
	// pairs and addresses are tracked (least recently failed ones are
	// forgotten first); default 100000.
	MaxEntries int
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
}

// MemoryLoginLimiter is a LoginLimiter that counts failed logins per user
// and client address, and per address alone, in this process's memory.
// After too many failures within a window, further attempts are refused
// with EUNAVAILABLE/TOOMANYREQUESTS (HTTP 429) and a RetryAfter, without
// checking the password. A successful login clears its user+address count
// (but not the address's). Each replica counts on its own, so N replicas
// allow up to N times the configured attempts.
type MemoryLoginLimiter struct {
	o  LimiterOptions
	mu sync.Mutex
	// entries maps "u\x00user\x00addr" and "a\x00addr" to their counters.
	entries *lru[string, *limitEntry]
}

type limitEntry struct {
	failures    int
	windowStart time.Time
	lockedUntil time.Time
}

// NewLoginLimiter returns a MemoryLoginLimiter configured by o (zero
// fields take their defaults).
func NewLoginLimiter(o LimiterOptions) *MemoryLoginLimiter {
	if o.MaxFailures <= 0 {
		o.MaxFailures = 5
	}
	if o.MaxFailuresPerAddress <= 0 {
		o.MaxFailuresPerAddress = 20
	}
	if o.Window <= 0 {
		o.Window = 15 * time.Minute
	}
	if o.Lockout <= 0 {
		o.Lockout = time.Minute
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 100000
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return &MemoryLoginLimiter{o: o, entries: newLRU[string, *limitEntry](o.MaxEntries)}
}

func pairKey(user, remote string) string { return "u\x00" + user + "\x00" + remote }
func addrKey(remote string) string       { return "a\x00" + remote }

// Allow implements LoginLimiter.
func (l *MemoryLoginLimiter) Allow(_ context.Context, user, remote string) error {
	now := l.o.Clock()
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range []string{pairKey(user, remote), addrKey(remote)} {
		if e, ok := l.entries.get(k, now); ok && now.Before(e.lockedUntil) {
			wait = max(wait, e.lockedUntil.Sub(now))
		}
	}
	if wait > 0 {
		secs := int64((wait + time.Second - 1) / time.Second)
		return &apperr.Error{Code: apperr.EUNAVAILABLE, Detail: "TOOMANYREQUESTS", RetryAfter: wait,
			Message: fmt.Sprintf("too many failed logins; try again in %d seconds", secs)}
	}
	return nil
}

// Done implements LoginLimiter.
func (l *MemoryLoginLimiter) Done(_ context.Context, user, remote string, ok bool) {
	now := l.o.Clock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if ok {
		l.entries.put(pairKey(user, remote), &limitEntry{}, now) // expired at once: forgotten
		return
	}
	l.fail(pairKey(user, remote), l.o.MaxFailures, now)
	l.fail(addrKey(remote), l.o.MaxFailuresPerAddress, now)
}

// fail counts a failure under k and locks k out when it reaches max.
func (l *MemoryLoginLimiter) fail(k string, max int, now time.Time) {
	e, ok := l.entries.get(k, now)
	if !ok || now.Sub(e.windowStart) >= l.o.Window {
		e = &limitEntry{windowStart: now}
	}
	e.failures++
	if e.failures >= max {
		e.lockedUntil = now.Add(l.o.Lockout)
	}
	l.entries.put(k, e, later(e.windowStart.Add(l.o.Window), e.lockedUntil))
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
