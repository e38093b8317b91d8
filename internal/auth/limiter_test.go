package auth

import (
	"context"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
)

func TestMemoryLoginLimiter(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	l := NewLoginLimiter(LimiterOptions{MaxFailures: 3, MaxFailuresPerAddress: 5, Window: 10 * time.Minute,
		Lockout: time.Minute, Clock: clock.Now})
	failN := func(user, addr string, n int) {
		for range n {
			if err := l.Allow(ctx, user, addr); err != nil {
				t.Fatalf("attempt refused early: %v", err)
			}
			l.Done(ctx, user, addr, false)
		}
	}
	refused := func(user, addr string) time.Duration {
		t.Helper()
		err := l.Allow(ctx, user, addr)
		if err == nil {
			return 0
		}
		if apperr.Code(err) != apperr.EUNAVAILABLE || apperr.Detail(err) != "TOOMANYREQUESTS" {
			t.Fatalf("refusal %v, want EUNAVAILABLE/TOOMANYREQUESTS", err)
		}
		return apperr.RetryAfter(err)
	}

	t.Run("locks a user and address pair", func(t *testing.T) {
		failN("alice", "10.0.0.1", 3)
		if d := refused("alice", "10.0.0.1"); d != time.Minute {
			t.Fatalf("after 3 failures: retry after %v, want 1m", d)
		}
		if d := refused("alice", "10.0.0.2"); d != 0 {
			t.Fatal("another address is locked out of alice")
		}
		if d := refused("bob", "10.0.0.1"); d != 0 {
			t.Fatal("another user from the address is locked out")
		}
		clock.Advance(40 * time.Second)
		if d := refused("alice", "10.0.0.1"); d != 20*time.Second {
			t.Fatalf("retry after %v, want 20s", d)
		}
		clock.Advance(20 * time.Second)
		if d := refused("alice", "10.0.0.1"); d != 0 {
			t.Fatal("still locked after the lockout")
		}
		// The window still counts 3 failures: one more locks again at once.
		failN("alice", "10.0.0.1", 1)
		if d := refused("alice", "10.0.0.1"); d != time.Minute {
			t.Fatalf("a failure after the lockout: retry after %v", d)
		}
	})
	t.Run("success clears the pair", func(t *testing.T) {
		failN("carol", "10.0.1.1", 2)
		l.Done(ctx, "carol", "10.0.1.1", true)
		failN("carol", "10.0.1.1", 2)
		if d := refused("carol", "10.0.1.1"); d != 0 {
			t.Fatal("failures before a success still counted")
		}
	})
	t.Run("window forgets", func(t *testing.T) {
		failN("dave", "10.0.2.1", 2)
		clock.Advance(11 * time.Minute)
		failN("dave", "10.0.2.1", 2)
		if d := refused("dave", "10.0.2.1"); d != 0 {
			t.Fatal("failures older than the window still counted")
		}
	})
	t.Run("spraying from one address", func(t *testing.T) {
		for i := range 5 {
			failN("user"+strconv.Itoa(i), "10.0.3.1", 1)
		}
		if d := refused("someone-else", "10.0.3.1"); d != time.Minute {
			t.Fatalf("after 5 users failed from one address: retry after %v", d)
		}
		if d := refused("someone-else", "10.0.3.2"); d != 0 {
			t.Fatal("another address is locked out")
		}
	})
	t.Run("bounded memory", func(t *testing.T) {
		small := NewLoginLimiter(LimiterOptions{MaxEntries: 10, Clock: clock.Now})
		for i := range 1000 {
			small.Done(ctx, "u"+strconv.Itoa(i), "10.1.0.1", false)
		}
		if n := small.entries.len(); n > 10 {
			t.Fatalf("%d entries, want at most 10", n)
		}
	})
}

// TestLoginBruteForce drives password guessing through the token endpoint:
// after the limit, attempts are answered 429 with Retry-After without
// checking the password (the right one is refused too), and every attempt
// is audited.
func TestLoginBruteForce(t *testing.T) {
	rec := &recorder{}
	var f *fixture
	f = newFixture(t, func(o *Options) {
		o.Recorder = rec
		o.Limiter = NewLoginLimiter(LimiterOptions{MaxFailures: 5, Lockout: 2 * time.Minute, Clock: o.Clock})
	})
	guess := func(pw string) (int, tokenReply, string) {
		r := postForm(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {pw}})
		r.RemoteAddr = "203.0.113.9:5555"
		w, reply := doToken(t, f, r)
		return w.Code, reply, w.Header().Get("Retry-After")
	}
	for i := range 5 {
		if code, _, _ := guess("guess-" + strconv.Itoa(i)); code != 401 {
			t.Fatalf("guess %d: status %d, want 401", i, code)
		}
	}
	code, reply, retry := guess(alicePW)
	if code != 429 || retry != "120" || len(reply.Errors) != 1 || reply.Errors[0].Code != "TOOMANYREQUESTS" {
		t.Fatalf("after 5 failures the right password got %d, Retry-After %q, %+v", code, retry, reply)
	}
	// The registry path (Basic auth) is limited the same way.
	r := newRequest("GET", "/v2/", basic("alice", alicePW))
	r.RemoteAddr = "203.0.113.9:6666"
	if _, err := f.svc.Authenticate(r); apperr.Detail(err) != "TOOMANYREQUESTS" || apperr.RetryAfter(err) != 2*time.Minute {
		t.Fatalf("Basic auth while locked out: %v", err)
	}
	ev := rec.take()
	if len(ev) != 7 {
		t.Fatalf("%d events, want 7 (5 failures, 2 refusals): %+v", len(ev), ev)
	}
	for i, e := range ev {
		want := audit.Failure
		if i >= 5 {
			want = audit.Denied
		}
		if e.Action != ActionLogin || e.Outcome != want || e.Actor != "alice" || e.ClientIP != "203.0.113.9" {
			t.Errorf("event %d: %+v", i, e)
		}
	}
	f.clock.Advance(2 * time.Minute)
	if code, _, _ := guess(alicePW); code != 200 {
		t.Fatalf("after the lockout the right password got %d", code)
	}
}
