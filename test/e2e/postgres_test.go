package e2e_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/customs-dev/customs/internal/store/postgres/pgtest"
	"github.com/customs-dev/customs/test/e2e/harness"
)

// TestPostgres runs the real `customs serve` with its metadata in the local
// PostgreSQL (a schema of its own): crane pushes and skopeo pulls, a restart
// on the same database still serves the image, the pushes and pulls are in
// `customs audit query`, and offline `customs audit verify --db-driver
// postgres` passes, then fails naming the event after its record is
// altered directly in the database, passes again once it is put back, and
// fails naming the gap after the record is cut out of its block.
func TestPostgres(t *testing.T) {
	t.Parallel()
	if os.Getenv(harness.EnvTarget) == harness.KindDistribution {
		t.Skip("the PostgreSQL store is customs'")
	}
	harness.Tool(t, "crane")
	harness.Tool(t, "skopeo")
	dsn := pgtest.Schema(t, "e2e_")
	layout := harness.WriteLayout(t, harness.BuildImage(t,
		harness.Layer(t, "etc/os-release", "ID=test\n"),
		harness.Layer(t, "app/data", "stored in PostgreSQL\n")))
	digest := harness.LayoutDigest(t, layout)

	dataDir := t.TempDir()
	opts := harness.Options{DataDir: dataDir, Args: []string{"--db-driver", "postgres", "--db-dsn", dsn}}
	srv := harness.StartCustoms(t, opts)
	srv.CreateProject(t, "pg", false)
	c := harness.NewClient(t)
	repo := srv.Addr + "/pg/app"
	c.MustInput(t, srv.Password, "crane", "auth", "login", srv.Addr, "-u", srv.Username, "--password-stdin")
	c.Must(t, "crane", "push", "--insecure", layout, repo+":v1")
	c.MustInput(t, srv.Password+"\n", "skopeo", "login", "--tls-verify=false", "--username", srv.Username, "--password-stdin", srv.Addr)
	out := filepath.Join(t.TempDir(), "out")
	c.Must(t, "skopeo", "--insecure-policy", "copy", "--src-tls-verify=false", "docker://"+repo+":v1", "oci:"+out+":v1")
	if got := harness.LayoutDigest(t, out); got != digest {
		t.Fatalf("skopeo pulled %s, crane pushed %s", got, digest)
	}
	// The tables are in the test's schema, not in SQLite next to the blobs.
	if _, err := os.Stat(filepath.Join(dataDir, "customs.db")); err == nil {
		t.Errorf("customs serve --db-driver postgres created %s", filepath.Join(dataDir, "customs.db"))
	}

	// A restart on the same database and data dir serves the same image.
	srv.Stop(t)
	opts.Password = srv.Password
	srv = harness.StartCustoms(t, opts)
	repo = srv.Addr + "/pg/app"
	c.MustInput(t, srv.Password, "crane", "auth", "login", srv.Addr, "-u", srv.Username, "--password-stdin")
	if got := strings.TrimSpace(c.Must(t, "crane", "digest", "--insecure", repo+":v1")); got != digest {
		t.Fatalf("after a restart crane digest says %s, pushed %s", got, digest)
	}

	push, pull := waitPushAndPull(t, srv, "pg")
	want := "repository:pg/app@" + digest
	if push.Actor != "admin" || push.Outcome != "success" || push.Resource != want || !strings.Contains(push.UserAgent, "go-containerregistry") {
		t.Errorf("crane's push event %+v", *push)
	}
	if pull.Actor != "admin" || pull.Outcome != "success" || pull.Resource != want || !strings.Contains(pull.UserAgent, "skopeo") {
		t.Errorf("skopeo's pull event %+v", *pull)
	}
	if ok := srv.MustCLI(t, "audit", "verify", "--server", srv.URL()); !strings.Contains(ok, "intact") {
		t.Errorf("audit verify on the server: %s", ok)
	}
	srv.Stop(t)

	verify := func() (string, string, int) {
		return srv.CLI(t, "audit", "verify", "--db-driver", "postgres", "--db-dsn", dsn)
	}
	if out, errOut, code := verify(); code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("offline audit verify before tampering exited %d: %s%s", code, out, errOut)
	}

	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var original string
	editRecord(t, db, push.ID, func(rec string) string {
		original = rec
		return strings.Replace(rec, "5:admin", "12:someone-else", 1)
	})
	out, errOut, code := verify()
	if code == 0 {
		t.Fatalf("audit verify passed after event %d was edited in PostgreSQL:\n%s", push.ID, out)
	}
	if wantMsg := fmt.Sprintf("broken at event %d: altered", push.ID); !strings.Contains(errOut, wantMsg) {
		t.Errorf("audit verify said %q, want it to name %q", errOut, wantMsg)
	}

	// Put back, the trail verifies again: the check is of the content.
	editRecord(t, db, push.ID, func(string) string { return original })
	if out, errOut, code := verify(); code != 0 {
		t.Fatalf("audit verify after the edit was undone exited %d: %s%s", code, out, errOut)
	}

	// Cutting an event's record out of the trail breaks it too.
	editRecord(t, db, push.ID, func(string) string { return "" })
	out, errOut, code = verify()
	if code == 0 {
		t.Fatalf("audit verify passed after event %d was deleted in PostgreSQL:\n%s", push.ID, out)
	}
	if !strings.Contains(errOut, "broken at event") || !strings.Contains(errOut, "missing") {
		t.Errorf("audit verify after a deletion said %q, want the break and the missing event named", errOut)
	}
	t.Logf("after the deletion: %s", strings.TrimSpace(errOut))
}
