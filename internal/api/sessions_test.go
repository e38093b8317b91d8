package api_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/auth"
)

// TestSessionsEnd: a user's login sessions (the cookie the OIDC login sets,
// issued here by the real auth service) end when they log out everywhere,
// when an administrator does it for them, when their password changes and
// when they are disabled (and stay ended once enabled again); a user
// cannot end another's (403); each end is audited.
func TestSessionsEnd(t *testing.T) {
	e := newAPIEnv(t, nil)
	ctx := context.Background()
	e.user(t, "bob", "bob-password-1", 0)
	carol := e.user(t, "carol", "carol-password-1", 0)
	session := func() string {
		t.Helper()
		u, err := e.db.User(ctx, "bob")
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := e.svc.IssueSession(u, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	do := func(method, path, cookie string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, e.url+path, nil)
		req.AddCookie(&http.Cookie{Name: auth.SessionCookie, Value: cookie})
		req.Header.Set(auth.CSRFHeader, "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	works := func(what, cookie string) {
		t.Helper()
		if code, body := do("GET", "/api/v1/users/me", cookie); code != 200 || !strings.Contains(body, `"name": "bob"`) {
			t.Fatalf("%s: the session is refused: %d %s", what, code, body)
		}
	}
	ended := func(what, cookie string) {
		t.Helper()
		if code, body := do("GET", "/api/v1/users/me", cookie); code != http.StatusUnauthorized || !strings.Contains(body, "log in again") {
			t.Fatalf("%s: the session still works: %d %s", what, code, body)
		}
	}

	// bob logs himself out everywhere, with two sessions (and through one).
	laptop, phone := session(), session()
	works("before", laptop)
	works("before", phone)
	if code, body := do("DELETE", "/api/v1/users/me/sessions", laptop); code != http.StatusNoContent {
		t.Fatalf("DELETE /users/me/sessions: %d %s", code, body)
	}
	ended("bob logged out everywhere (laptop)", laptop)
	ended("bob logged out everywhere (phone)", phone)

	// carol may not end bob's sessions; an administrator may.
	s := session()
	err := carol.EndUserSessions(ctx, "bob")
	wantCode(t, "carol ending bob's sessions", err, apperr.EDENIED)
	works("after carol's refused attempt", s)
	if err := e.admin.EndUserSessions(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	ended("the administrator ended bob's sessions", s)

	// A password change ends them.
	s = session()
	if err := e.as("bob", "bob-password-1").ChangePassword(ctx, "bob", "bob-password-1", "bob-password-2"); err != nil {
		t.Fatal(err)
	}
	ended("after bob's password change", s)

	// Disabling ends them; enabling does not bring them back.
	s = session()
	yes, no := true, false
	if _, err := e.admin.UpdateUser(ctx, "bob", api.UpdateUserRequest{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	ended("bob disabled", s)
	if _, err := e.admin.UpdateUser(ctx, "bob", api.UpdateUserRequest{Disabled: &no}); err != nil {
		t.Fatal(err)
	}
	ended("bob enabled again, old session", s)
	works("bob enabled again, new session", session())

	// Robots have no sessions.
	wantCode(t, "an unknown robot", e.as("robot$nobody", "x").EndUserSessions(ctx, ""), apperr.EUNAUTHORIZED)

	evs := e.rec.find(auth.ActionSessionsRevoke)
	type ev struct{ actor, outcome, reason string }
	var got []ev
	for _, x := range evs {
		if x.Resource != "user:bob" {
			t.Errorf("event on %s", x.Resource)
		}
		got = append(got, ev{x.Actor, string(x.Outcome), x.Reason})
	}
	want := []ev{
		{"bob", string(audit.Success), ""},
		{"carol", string(audit.Denied), "only system administrators may do this"},
		{"admin", string(audit.Success), ""},
		{"bob", string(audit.Success), "password changed"},
		{"admin", string(audit.Success), "account disabled"},
		{"admin", string(audit.Success), "account enabled"},
	}
	if len(got) != len(want) {
		t.Fatalf("user.sessions.revoke events = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
