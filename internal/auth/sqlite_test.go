package auth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/sqlite"
)

// sqliteService is a Service over a real SQLite store, through the package's
// public API only, as the server wires it.
func sqliteService(t testing.TB, params auth.PasswordParams, mod ...func(*auth.Options)) (*auth.Service, *sqlite.DB) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	keys, err := auth.OpenKeyDir(filepath.Join(dir, "keys"), auth.KeyDirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	opts := auth.Options{Users: db, Projects: db, Members: db, Robots: db, RobotPepper: []byte("0123456789abcdef0123456789abcdef"),
		Keys: keys, PasswordParams: params}
	for _, f := range mod {
		f(&opts)
	}
	svc, err := auth.NewService(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []store.Project{{Name: "pub", Public: true}, {Name: "priv"}} {
		if err := db.CreateProject(ctx, &p); err != nil {
			t.Fatal(err)
		}
	}
	return svc, db
}

func getToken(t testing.TB, svc *auth.Service, query, user, pass string) (int, string) {
	t.Helper()
	r := httptest.NewRequest("GET", "/service/token?"+query, nil)
	if user != "" {
		r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	}
	w := httptest.NewRecorder()
	svc.TokenHandler().ServeHTTP(w, r)
	var reply struct {
		Token string `json:"token"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &reply)
	return w.Code, reply.Token
}

func bearer(t *testing.T, svc *auth.Service, token string) auth.Principal {
	t.Helper()
	r := httptest.NewRequest("GET", "/v2/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	p, err := svc.Authenticate(r)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSQLiteAdminBootstrapAndLogin(t *testing.T) {
	ctx := context.Background()
	svc, db := sqliteService(t, auth.PasswordParams{})
	pw, err := auth.EnsureAdmin(ctx, db, "", nil)
	if err != nil || pw == "" {
		t.Fatalf("EnsureAdmin = %q, %v", pw, err)
	}
	if again, err := auth.EnsureAdmin(ctx, db, "other", nil); err != nil || again != "" {
		t.Fatalf("second EnsureAdmin = %q, %v; want a no-op", again, err)
	}

	push := auth.Access{Type: auth.TypeRepository, Name: "priv/app", Actions: []string{auth.ActionPull, auth.ActionPush}}
	code, tok := getToken(t, svc, "service=customs&scope=repository:priv/app:pull,push", "admin", pw)
	if code != http.StatusOK {
		t.Fatalf("admin token: status %d", code)
	}
	p := bearer(t, svc, tok)
	if err := svc.Authorize(ctx, p, push); err != nil {
		t.Fatalf("admin token cannot push: %v", err)
	}
	if code, _ := getToken(t, svc, "service=customs", "admin", "other"); code != http.StatusUnauthorized {
		t.Fatalf("wrong admin password: status %d, want 401", code)
	}

	// Anonymous: public pull only, decided from the SQLite project table.
	_, tok = getToken(t, svc, "scope=repository:pub/app:pull,push&scope=repository:priv/app:pull&scope=repository:none/app:pull", "", "")
	p = bearer(t, svc, tok)
	if len(p.Granted) != 1 || p.Granted[0].String() != "repository:pub/app:pull" {
		t.Fatalf("anonymous granted %v, want only repository:pub/app:pull", p.Granted)
	}
}

func TestSQLiteUserLifecycle(t *testing.T) {
	ctx := context.Background()
	weak := auth.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	strong := auth.PasswordParams{Memory: 256, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
	svc, db := sqliteService(t, strong)
	h, _ := auth.HashPassword("pw1", weak)
	if err := db.CreateUser(ctx, &store.User{Name: "carol", PasswordHash: h}); err != nil {
		t.Fatal(err)
	}
	login := func(pw string) error {
		r := httptest.NewRequest("GET", "/v2/", nil)
		r.SetBasicAuth("carol", pw)
		_, err := svc.Authenticate(r)
		return err
	}

	// The first login upgrades the hash in the database.
	if err := login("pw1"); err != nil {
		t.Fatal(err)
	}
	u, _ := db.User(ctx, "carol")
	if ok, rehash, _ := auth.VerifyPassword(u.PasswordHash, "pw1", strong); !ok || rehash {
		t.Fatalf("stored hash not upgraded: %s", u.PasswordHash)
	}

	// A password change is seen at once, although pw1 is in the cache.
	u.PasswordHash, _ = auth.HashPassword("pw2", strong)
	if err := db.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := login("pw1"); apperr.Code(err) != apperr.EUNAUTHORIZED {
		t.Fatalf("old password after change: %v", err)
	}
	if err := login("pw2"); err != nil {
		t.Fatalf("new password: %v", err)
	}

	// So is disabling.
	u.Disabled = true
	if err := db.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := login("pw2"); apperr.Code(err) != apperr.EUNAUTHORIZED {
		t.Fatalf("disabled user: %v", err)
	}
}

// TestSQLiteEndUserSessionsEndsRefreshTokens: "log out everywhere" ends the
// refresh tokens (customs login, docker's identity token) issued before,
// not the password: a new login gets a refresh token that works.
func TestSQLiteEndUserSessionsEndsRefreshTokens(t *testing.T) {
	ctx := context.Background()
	params := auth.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	svc, db := sqliteService(t, params)
	h, err := auth.HashPassword("alice-password", params)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateUser(ctx, &store.User{Name: "alice", PasswordHash: h}); err != nil {
		t.Fatal(err)
	}
	login := func() string {
		t.Helper()
		r := httptest.NewRequest("GET", "/service/token?service=customs&offline_token=true", nil)
		r.SetBasicAuth("alice", "alice-password")
		w := httptest.NewRecorder()
		svc.TokenHandler().ServeHTTP(w, r)
		var reply struct {
			RefreshToken string `json:"refresh_token"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &reply); err != nil || w.Code != 200 || reply.RefreshToken == "" {
			t.Fatalf("login: %d %s", w.Code, w.Body)
		}
		return reply.RefreshToken
	}
	redeem := func(tok string) (int, string) {
		r := httptest.NewRequest("POST", "/service/token", strings.NewReader(url.Values{"grant_type": {"refresh_token"},
			"refresh_token": {tok}, "service": {"customs"}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		svc.TokenHandler().ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	before := login()
	if code, body := redeem(before); code != 200 {
		t.Fatalf("refresh before: %d %s", code, body)
	}
	for i := 0; i < 2; i++ { // twice: the generation goes past 1
		r := httptest.NewRequest("DELETE", "/api/v1/users/alice/sessions", nil)
		if err := svc.EndUserSessions(ctx, r, auth.Principal{Kind: auth.KindUser, Name: "alice"}, "alice", ""); err != nil {
			t.Fatal(err)
		}
		if code, body := redeem(before); code != http.StatusUnauthorized || !strings.Contains(body, "log in again") {
			t.Fatalf("refresh token issued before ending the sessions: %d %s", code, body)
		}
		after := login()
		if code, body := redeem(after); code != 200 {
			t.Fatalf("refresh token issued after: %d %s", code, body)
		}
		before = after
	}
}
