package e2e_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/customs-dev/customs/test/e2e/harness"
)

// TestSecretsNeverShown logs in to the real `customs serve`, logging at
// debug level, with every client that can run here, with a user's password
// and a robot's secret, rotates the robot's secret and guesses a wrong
// password; then it requires that none of those secrets (nor the
// administrator's password, nor a password hash, nor a bearer token) appear
// in the server's log, in the JSON API's answers about users, robots,
// members and the audit trail, in the audit export, in the CLI's listings
// or in the database files (which hold hashes only). The only place a
// secret may appear is the one answer that creates or rotates it.
func TestSecretsNeverShown(t *testing.T) {
	t.Parallel()
	if os.Getenv(harness.EnvTarget) == harness.KindDistribution {
		t.Skip("users and robots are customs'")
	}
	for _, tool := range []string{"skopeo", "crane", "oras", "regctl", "podman"} {
		harness.Tool(t, tool)
	}
	customs := harness.CustomsBinary(t)
	srv := harness.StartCustoms(t, harness.Options{Env: []string{"CUSTOMS_LOG_LEVEL=debug"}})
	srv.CreateProject(t, "sec", false)
	layout := harness.WriteLayout(t, harness.BuildImage(t, harness.Layer(t, "etc/motd", "secrets\n")))

	admin := harness.NewClient(t)
	admin.MustInput(t, srv.Password+"\n", customs, "login", srv.URL(), "-u", srv.Username, "--password-stdin")
	const alicePW = "alice-Pa55word-never-logged"
	admin.MustInput(t, alicePW+"\n", customs, "user", "create", "alice", "--password-stdin")
	admin.Must(t, customs, "project", "member", "add", "sec", "alice", "--role", "developer")
	var robot struct{ Name, Secret string }
	out := admin.Must(t, customs, "robot", "create", "ci", "--project", "sec", "--action", "push", "--action", "pull", "--json")
	if err := json.Unmarshal([]byte(out), &robot); err != nil || robot.Name == "" || len(robot.Secret) < 20 {
		t.Fatalf("robot create --json: %v\n%s", err, out)
	}
	secrets := map[string]string{
		srv.Password:        "the administrator's password",
		alicePW:             "alice's password",
		alicePW + "-guess":  "a wrong password guessed for alice",
		robot.Secret:        "the robot's first secret",
		robot.Secret + "-x": "a wrong robot secret",
	}

	// The robot pushes and pulls with crane and skopeo.
	rc := harness.NewClient(t)
	rc.MustInput(t, robot.Secret, "crane", "auth", "login", srv.Addr, "-u", robot.Name, "--password-stdin")
	rc.Must(t, "crane", "push", "--insecure", layout, srv.Addr+"/sec/app:v1")
	rc.MustInput(t, robot.Secret+"\n", "skopeo", "login", "--tls-verify=false", "-u", robot.Name, "--password-stdin", srv.Addr)
	rc.Must(t, "skopeo", "inspect", "--tls-verify=false", "docker://"+srv.Addr+"/sec/app:v1")
	if r := harness.NewClient(t).RunInput(t, robot.Secret+"-x\n", "skopeo", "login", "--tls-verify=false", "-u", robot.Name,
		"--password-stdin", srv.Addr); r.Err == nil {
		t.Errorf("a wrong robot secret logged in:\n%s", r)
	}

	// alice with oras (the OAuth2 password grant: the password in a POST
	// body), regctl, podman, and a wrong guess.
	ac := harness.NewClient(t)
	ac.MustInput(t, alicePW, "oras", "login", "--plain-http", "-u", "alice", "--password-stdin", srv.Addr)
	ac.Must(t, "oras", "repo", "tags", "--plain-http", srv.Addr+"/sec/app")
	ac.Must(t, "regctl", "registry", "set", "--tls", "disabled", "--skip-check", srv.Addr)
	ac.MustInput(t, alicePW, "regctl", "registry", "login", srv.Addr, "-u", "alice", "--pass-stdin")
	ac.Must(t, "regctl", "tag", "ls", srv.Addr+"/sec/app")
	ac.MustInput(t, alicePW, "podman", "login", "--authfile", ac.Home+"/auth.json", "--tls-verify=false", "-u", "alice", "--password-stdin", srv.Addr)
	if r := harness.NewClient(t).RunInput(t, alicePW+"-guess", "oras", "login", "--plain-http", "-u", "alice", "--password-stdin", srv.Addr); r.Err == nil {
		t.Errorf("a wrong password logged in:\n%s", r)
	}

	// Rotation shows the new secret once; the old one stops working.
	var rotated struct{ Secret string }
	out = admin.Must(t, customs, "robot", "rotate", robot.Name, "--json")
	if err := json.Unmarshal([]byte(out), &rotated); err != nil || len(rotated.Secret) < 20 || rotated.Secret == robot.Secret {
		t.Fatalf("robot rotate --json: %v\n%s", err, out)
	}
	secrets[rotated.Secret] = "the robot's rotated secret"
	if r := harness.NewClient(t).RunInput(t, robot.Secret+"\n", "skopeo", "login", "--tls-verify=false", "-u", robot.Name,
		"--password-stdin", srv.Addr); r.Err == nil {
		t.Errorf("the robot's old secret still logs in after rotation:\n%s", r)
	}
	rc.MustInput(t, rotated.Secret, "crane", "auth", "login", srv.Addr, "-u", robot.Name, "--password-stdin")
	rc.Must(t, "crane", "digest", "--insecure", srv.Addr+"/sec/app:v1")

	// Everything the server says about accounts and the trail.
	shown := map[string]string{}
	for _, path := range []string{
		"/api/v1/users", "/api/v1/users/alice", "/api/v1/users/me", "/api/v1/robots", "/api/v1/robots/" + robot.Name,
		"/api/v1/projects/sec/robots", "/api/v1/projects/sec/members", "/api/v1/audit/events?n=1000", "/api/v1/audit/export",
	} {
		req, err := http.NewRequest(http.MethodGet, srv.URL()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(srv.Username, srv.Password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s %s", path, resp.Status, b)
		}
		shown["GET "+path] = string(b)
	}
	if !strings.Contains(shown["GET /api/v1/audit/export"], `"robot"`) || !strings.Contains(shown["GET /api/v1/audit/export"], `"failure"`) {
		t.Errorf("the audit export lacks the robot's logins or the failed ones:\n%.3000s", shown["GET /api/v1/audit/export"])
	}
	for _, args := range [][]string{
		{"user", "list"}, {"user", "get", "alice"}, {"robot", "list"}, {"robot", "get", robot.Name},
		{"project", "member", "list", "sec"}, {"audit", "query", "-n", "1000", "--output", "json"},
	} {
		shown["customs "+strings.Join(args, " ")] = admin.Must(t, append([]string{customs}, args...)...)
	}
	logs := srv.Logs()
	if !strings.Contains(logs, "level=DEBUG") && !strings.Contains(logs, `"level":"DEBUG"`) {
		t.Fatalf("the server did not log at debug level:\n%.2000s", logs)
	}
	shown["the server's log"] = logs
	// At rest: the database keeps hashes (argon2id, HMAC), never a secret;
	// read while the server runs, so the write-ahead log is included.
	for _, f := range []string{"customs.db", "customs.db-wal"} {
		b, err := os.ReadFile(filepath.Join(srv.DataDir, f))
		if err != nil && f == "customs.db" {
			t.Fatal(err)
		}
		shown["the database file "+f] = string(b)
	}
	if db := shown["the database file customs.db"] + shown["the database file customs.db-wal"]; !strings.Contains(db, "$argon2id$") {
		t.Error("the database files hold no argon2id hash: the at-rest check reads the wrong files")
	}

	for where, text := range shown {
		for secret, what := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("%s contains %s", where, what)
			}
		}
		for _, leak := range []string{"argon2id$", "$2a$", "$2b$", "hmac-sha256$", "Bearer ey", "Basic "} {
			if strings.Contains(text, leak) && !strings.HasPrefix(where, "the database file") {
				t.Errorf("%s contains %q (a hash, a token or credentials)", where, leak)
			}
		}
	}
}
