package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/config"
	"github.com/customs-dev/customs/internal/server"
)

const testAdminPassword = "admin-pw-for-cli-tests"

// startServer runs customs in-process and returns its URL.
func startServer(t *testing.T) string {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Addr = "127.0.0.1:0"
	cfg.GC.Interval = 0
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, server.Options{Logger: slog.New(slog.DiscardHandler), AdminPassword: testAdminPassword})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	return "http://" + ln.Addr().String()
}

// run executes the CLI with args and stdin, returning stdout and the error.
func run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.ExecuteContext(context.Background())
	t.Logf("$ customs %s -> %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	return out.String(), err
}

func must(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := run(t, stdin, args...)
	if err != nil {
		t.Fatalf("customs %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func TestLoginAndRBACCommands(t *testing.T) {
	url := startServer(t)
	home := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", home)
	for _, v := range []string{"CUSTOMS_SERVER", "CUSTOMS_USERNAME", "CUSTOMS_PASSWORD", "CUSTOMS_NEW_PASSWORD"} {
		t.Setenv(v, "")
	}

	if _, err := run(t, "wrong\n", "login", url, "-u", "admin", "--password-stdin"); apperr.Code(err) != apperr.EUNAUTHORIZED {
		t.Fatalf("login with a wrong password: %v", err)
	}
	out := must(t, testAdminPassword+"\n", "login", url, "-u", "admin", "--password-stdin")
	if !strings.Contains(out, "Logged in to "+url+" as admin (system administrator)") {
		t.Fatalf("login output %q", out)
	}
	cfgPath := filepath.Join(home, "customs", "config.json")
	st, err := os.Stat(cfgPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config file %v, mode %v; want 0600", err, st)
	}
	raw, _ := os.ReadFile(cfgPath)
	if bytes.Contains(raw, []byte(testAdminPassword)) {
		t.Fatal("the config file holds the password")
	}
	var cfg cliConfig
	if err := json.Unmarshal(raw, &cfg); err != nil || cfg.Current != url || cfg.Servers[url].RefreshToken == "" || cfg.Servers[url].Username != "admin" {
		t.Fatalf("config %s", raw)
	}

	// Later commands need neither --server nor --username.
	must(t, "", "project", "create", "testproject")
	must(t, "developer-pw\n", "user", "create", "developer", "--password-stdin")
	must(t, "guest-pw-1\n", "user", "create", "guest", "--password-stdin")
	if out := must(t, "", "user", "list"); !strings.Contains(out, "developer") || !strings.Contains(out, "guest") {
		t.Fatalf("user list: %s", out)
	}
	must(t, "", "project", "member", "add", "testproject", "developer", "--role", "developer")
	must(t, "", "project", "member", "add", "testproject", "guest", "--role", "Guest")
	must(t, "", "project", "member", "add", "testproject", "ops", "--group", "--role", "maintainer")
	if _, err := run(t, "", "project", "member", "add", "testproject", "guest", "--role", "owner"); apperr.Code(err) != apperr.EINVALID {
		t.Fatalf("unknown role: %v", err)
	}
	out = must(t, "", "project", "member", "list", "testproject")
	for _, want := range []string{"developer  user   developer", "guest      user   guest", "ops        group  maintainer"} {
		if !strings.Contains(out, want) {
			t.Fatalf("member list lacks %q:\n%s", want, out)
		}
	}
	must(t, "", "project", "member", "set", "testproject", "guest", "--role", "limited-guest")
	must(t, "", "project", "member", "remove", "testproject", "ops", "--group")
	out = must(t, "", "project", "member", "list", "testproject")
	if !strings.Contains(out, "limited-guest") || strings.Contains(out, "ops") {
		t.Fatalf("after set and remove:\n%s", out)
	}

	// Robots: the secret is printed once and works; rotation kills the old one.
	out = must(t, "", "robot", "create", "ci", "--project", "testproject", "--action", "push", "--expires", "30d")
	secret := regexp.MustCompile(`(?m)^    (\S{43})$`).FindStringSubmatch(out)
	if !strings.Contains(out, "robot$testproject+ci created") || secret == nil {
		t.Fatalf("robot create output:\n%s", out)
	}
	if out := must(t, "", "robot", "list", "--project", "testproject"); !strings.Contains(out, "testproject:read-project,pull,push") || strings.Contains(out, secret[1]) {
		t.Fatalf("robot list (push implies pull, all read-project, no secret):\n%s", out)
	}
	if out := must(t, "", "project", "list", "-u", "robot$testproject+ci", "--password", secret[1]); !strings.Contains(out, "testproject") {
		t.Fatalf("the robot cannot see its project:\n%s", out)
	}
	out = must(t, "", "robot", "rotate", "robot$testproject+ci", "--json")
	var rotated struct{ Secret string }
	if err := json.Unmarshal([]byte(out), &rotated); err != nil || len(rotated.Secret) < 32 || rotated.Secret == secret[1] {
		t.Fatalf("rotate --json: %s", out)
	}
	if _, err := run(t, "", "project", "list", "-u", "robot$testproject+ci", "--password", secret[1]); apperr.Code(err) != apperr.EUNAUTHORIZED {
		t.Fatalf("old secret after rotation: %v", err)
	}
	must(t, "", "robot", "disable", "robot$testproject+ci")
	if _, err := run(t, "", "project", "list", "-u", "robot$testproject+ci", "--password", rotated.Secret); apperr.Code(err) != apperr.EUNAUTHORIZED {
		t.Fatalf("disabled robot: %v", err)
	}
	out = must(t, "", "robot", "create", "scanner", "--permission", "*:pull,read-scan", "--json")
	if !strings.Contains(out, `"robot$scanner"`) || !strings.Contains(out, `"read-scan"`) {
		t.Fatalf("system robot: %s", out)
	}
	must(t, "", "robot", "delete", "robot$testproject+ci")
	if _, err := run(t, "", "robot", "get", "robot$testproject+ci"); apperr.Code(err) != apperr.ENOTFOUND {
		t.Fatalf("deleted robot: %v", err)
	}

	// A developer logs in and sees only what the role allows.
	must(t, "developer-pw\n", "login", url, "-u", "developer", "--password-stdin")
	if out := must(t, "", "user", "whoami"); !strings.HasPrefix(out, "developer (user, admin: no)") {
		t.Fatalf("whoami: %s", out)
	}
	if _, err := run(t, "", "project", "member", "add", "testproject", "guest", "--role", "developer"); apperr.Code(err) != apperr.EDENIED {
		t.Fatalf("developer managing members: %v", err)
	}
	if _, err := run(t, "", "user", "list"); apperr.Code(err) != apperr.EDENIED {
		t.Fatalf("developer listing users: %v", err)
	}
	must(t, "developer-pw\nnew-developer-pw\n", "user", "passwd", "--password-stdin")
	// The stored token was bound to the old password.
	if _, err := run(t, "", "user", "whoami"); apperr.Code(err) != apperr.EUNAUTHORIZED {
		t.Fatalf("after the password change the old login still works: %v", err)
	}
	must(t, "new-developer-pw\n", "login", url, "-u", "developer", "--password-stdin")

	// Logging out everywhere ends the stored login (a refresh token), not
	// the password.
	if out := must(t, "", "user", "revoke-sessions"); !strings.Contains(out, "your sessions and refresh tokens ended") {
		t.Fatalf("revoke-sessions: %s", out)
	}
	if _, err := run(t, "", "user", "whoami"); apperr.Code(err) != apperr.EUNAUTHORIZED {
		t.Fatalf("after revoke-sessions the stored login still works: %v", err)
	}
	must(t, "new-developer-pw\n", "login", url, "-u", "developer", "--password-stdin")
	if _, err := run(t, "", "user", "revoke-sessions", "admin"); apperr.Code(err) != apperr.EDENIED {
		t.Fatalf("developer ending the administrator's sessions: %v", err)
	}
	t.Setenv("CUSTOMS_USERNAME", "admin")
	t.Setenv("CUSTOMS_PASSWORD", testAdminPassword)
	must(t, "", "user", "revoke-sessions", "developer")
	t.Setenv("CUSTOMS_USERNAME", "")
	t.Setenv("CUSTOMS_PASSWORD", "")
	if _, err := run(t, "", "user", "whoami"); apperr.Code(err) != apperr.EUNAUTHORIZED {
		t.Fatalf("after the administrator ended them, the developer's stored login still works: %v", err)
	}
	must(t, "new-developer-pw\n", "login", url, "-u", "developer", "--password-stdin")

	// An administrator disables the developer: the stored login stops at once.
	t.Setenv("CUSTOMS_USERNAME", "admin")
	t.Setenv("CUSTOMS_PASSWORD", testAdminPassword)
	must(t, "", "user", "disable", "developer")
	t.Setenv("CUSTOMS_USERNAME", "")
	t.Setenv("CUSTOMS_PASSWORD", "")
	if _, err := run(t, "", "user", "whoami"); apperr.Code(err) != apperr.EUNAUTHORIZED {
		t.Fatalf("disabled user's stored login: %v", err)
	}

	must(t, "", "logout")
	if _, err := run(t, "", "logout"); apperr.Code(err) != apperr.ENOTFOUND {
		t.Fatalf("second logout: %v", err)
	}
	if out := must(t, "", "project", "list", "--server", url); strings.Contains(out, "testproject") {
		t.Fatalf("after logout the private project is listed:\n%s", out)
	}
}

func TestNormalizeServer(t *testing.T) {
	for in, want := range map[string]string{
		"localhost:5000":              "http://localhost:5000",
		"127.0.0.1:5000/":             "http://127.0.0.1:5000",
		"[::1]:5000":                  "http://[::1]:5000",
		"registry.example.com":        "https://registry.example.com",
		"registry.example.com:8443":   "https://registry.example.com:8443",
		"http://registry.example.com": "http://registry.example.com",
		" https://r.example.com/ ":    "https://r.example.com",
	} {
		if got := normalizeServer(in); got != want {
			t.Errorf("normalizeServer(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReadSecret(t *testing.T) {
	t.Setenv("CUSTOMS_TEST_SECRET", "from-env")
	if s, err := readSecret(strings.NewReader("from-stdin\nrest\n"), io.Discard, true, "CUSTOMS_TEST_SECRET", ""); err != nil || s != "from-stdin" {
		t.Fatalf("stdin: %q, %v", s, err)
	}
	if s, err := readSecret(strings.NewReader("no newline"), io.Discard, true, "", ""); err != nil || s != "no newline" {
		t.Fatalf("stdin without newline: %q, %v", s, err)
	}
	if _, err := readSecret(strings.NewReader(""), io.Discard, true, "", ""); apperr.Code(err) != apperr.EINVALID {
		t.Fatalf("empty stdin: %v", err)
	}
	if s, err := readSecret(strings.NewReader(""), io.Discard, false, "CUSTOMS_TEST_SECRET", ""); err != nil || s != "from-env" {
		t.Fatalf("env: %q, %v", s, err)
	}
	if _, err := readSecret(strings.NewReader(""), io.Discard, false, "CUSTOMS_TEST_UNSET", ""); apperr.Code(err) != apperr.EINVALID {
		t.Fatalf("no terminal, no env: %v", err)
	}
}
