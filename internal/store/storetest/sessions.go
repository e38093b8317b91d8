package storetest

import (
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

var sessionTests = []test{
	{"revoke one session", func(t *testing.T, e *env) {
		ok(t, e.s.CreateUser(e.ctx, &store.User{Name: "alice", PasswordHash: "h"}))
		u, revoked, err := e.s.UserSession(e.ctx, "alice", "jti-1")
		ok(t, err)
		if revoked || u.Name != "alice" || u.PasswordHash != "h" || u.SessionGeneration != 0 {
			t.Fatalf("UserSession before logout = %+v, revoked %v", u, revoked)
		}
		ok(t, e.s.RevokeSession(e.ctx, "jti-1", "alice", e.clk.Now().Add(time.Hour)))
		ok(t, e.s.RevokeSession(e.ctx, "jti-1", "alice", e.clk.Now().Add(time.Hour))) // again: no error
		if _, revoked, err := e.s.UserSession(e.ctx, "alice", "jti-1"); err != nil || !revoked {
			t.Fatalf("UserSession of the logged-out session: revoked %v, %v", revoked, err)
		}
		if _, revoked, err := e.s.UserSession(e.ctx, "alice", "jti-2"); err != nil || revoked {
			t.Fatalf("UserSession of another session: revoked %v, %v", revoked, err)
		}
		_, _, err = e.s.UserSession(e.ctx, "ghost", "jti-1")
		wantCode(t, err, apperr.ENOTFOUND, "", "ghost")
		wantCode(t, e.s.RevokeSession(e.ctx, "", "alice", e.clk.Now()), apperr.EINVALID, "", "token ID")
	}},
	{"expired revocations are purged", func(t *testing.T, e *env) {
		ok(t, e.s.CreateUser(e.ctx, &store.User{Name: "alice"}))
		ok(t, e.s.RevokeSession(e.ctx, "old", "alice", e.clk.Now().Add(time.Minute)))
		ok(t, e.s.RevokeSession(e.ctx, "long", "alice", e.clk.Now().Add(time.Hour)))
		e.clk.Advance(2 * time.Minute)
		ok(t, e.s.RevokeSession(e.ctx, "new", "alice", e.clk.Now().Add(time.Minute)))
		for jti, want := range map[string]bool{"old": false, "long": true, "new": true} {
			if _, revoked, err := e.s.UserSession(e.ctx, "alice", jti); err != nil || revoked != want {
				t.Errorf("revoked(%s) = %v, %v; want %v", jti, revoked, err, want)
			}
		}
	}},
	{"end every session", func(t *testing.T, e *env) {
		u := &store.User{Name: "bob", PasswordHash: "h"}
		ok(t, e.s.CreateUser(e.ctx, u))
		ok(t, e.s.CreateUser(e.ctx, &store.User{Name: "carol"}))
		for want := int64(1); want <= 2; want++ {
			gen, err := e.s.EndUserSessions(e.ctx, "bob")
			ok(t, err)
			if gen != want {
				t.Fatalf("EndUserSessions = %d, want %d", gen, want)
			}
		}
		got, err := e.s.User(e.ctx, "bob")
		ok(t, err)
		if got.SessionGeneration != 2 {
			t.Fatalf("User.SessionGeneration = %d, want 2", got.SessionGeneration)
		}
		// UpdateUser leaves it alone, even from a copy read before.
		u.Disabled = true
		ok(t, e.s.UpdateUser(e.ctx, u))
		if got, _, err := e.s.UserSession(e.ctx, "bob", "x"); err != nil || got.SessionGeneration != 2 || !got.Disabled {
			t.Fatalf("after UpdateUser: %+v, %v", got, err)
		}
		if c, err := e.s.User(e.ctx, "carol"); err != nil || c.SessionGeneration != 0 {
			t.Fatalf("carol's generation changed: %+v, %v", c, err)
		}
		users, err := e.s.Users(e.ctx, store.Page{N: 10})
		ok(t, err)
		if len(users) != 2 || users[0].SessionGeneration != 2 {
			t.Fatalf("Users = %+v", users)
		}
		_, err = e.s.EndUserSessions(e.ctx, "ghost")
		wantCode(t, err, apperr.ENOTFOUND, "", "ghost")
	}},
}
