package e2e_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/test/e2e/harness"
)

// auditEvent is the part of an audit event the test reads.
type auditEvent struct {
	ID        int64  `json:"id"`
	ActorKind string `json:"actorKind"`
	Actor     string `json:"actor"`
	ClientIP  string `json:"clientIP"`
	UserAgent string `json:"userAgent"`
	Action    string `json:"action"`
	Resource  string `json:"resource"`
	Outcome   string `json:"outcome"`
}

// TestAuditTrail pushes with crane and pulls with skopeo against the real
// server, finds both in `customs audit query`, then stops the server, edits
// one stored event directly in the SQLite file (its record in the block
// that holds it, as an attacker with SQL would) and requires `customs audit
// verify --data-dir` to fail naming that event.
func TestAuditTrail(t *testing.T) {
	t.Parallel()
	if os.Getenv(harness.EnvTarget) == harness.KindDistribution {
		t.Skip("the audit trail is customs'")
	}
	harness.Tool(t, "crane")
	harness.Tool(t, "skopeo")
	src := harness.Image(t, debianImage)
	srcDigest, _ := layoutManifest(t, src)

	srv := harness.StartCustoms(t)
	srv.CreateProject(t, "library", false)
	c := harness.NewClient(t)
	repo := srv.Addr + "/library/audited"
	c.MustInput(t, srv.Password, "crane", "auth", "login", srv.Addr, "-u", srv.Username, "--password-stdin")
	c.Must(t, "crane", "push", "--insecure", src, repo+":v1")
	c.MustInput(t, srv.Password+"\n", "skopeo", "login", "--tls-verify=false", "--username", srv.Username, "--password-stdin", srv.Addr)
	c.Must(t, "skopeo", "--insecure-policy", "copy", "--src-tls-verify=false", "docker://"+repo+":v1", "oci:"+filepath.Join(t.TempDir(), "out")+":v1")

	push, pull := waitPushAndPull(t, srv, "library")
	want := "repository:library/audited@" + srcDigest
	if push.Actor != "admin" || push.Outcome != "success" || push.Resource != want || !strings.Contains(push.UserAgent, "go-containerregistry") {
		t.Errorf("crane's push event %+v", *push)
	}
	if pull.Actor != "admin" || pull.Outcome != "success" || pull.Resource != want || pull.ClientIP != "127.0.0.1" ||
		!strings.Contains(pull.UserAgent, "skopeo") {
		t.Errorf("skopeo's pull event %+v", *pull)
	}
	table, _, code := srv.CLI(t, "audit", "query", "--server", srv.URL(), "--actor", "admin")
	if code != 0 || !strings.Contains(table, "artifact.push") || !strings.Contains(table, "ACTOR") {
		t.Errorf("audit query table (exit %d):\n%s", code, table)
	}
	ok, _, code := srv.CLI(t, "audit", "verify", "--server", srv.URL())
	if code != 0 || !strings.Contains(ok, "intact") {
		t.Fatalf("audit verify on the server exited %d: %s", code, ok)
	}
	export, _, code := srv.CLI(t, "audit", "export", "--server", srv.URL())
	if lines := strings.Count(export, "\n"); code != 0 || lines < 2 {
		t.Errorf("audit export (exit %d) wrote %d lines", code, lines)
	}

	srv.Stop(t)
	ok, errOut, code := srv.CLI(t, "audit", "verify", "--data-dir", srv.DataDir)
	if code != 0 || !strings.Contains(ok, "intact") {
		t.Fatalf("offline audit verify before tampering exited %d: %s%s", code, ok, errOut)
	}

	db, err := sql.Open("sqlite", filepath.Join(srv.DataDir, "customs.db"))
	if err != nil {
		t.Fatal(err)
	}
	editRecord(t, db, push.ID, func(rec string) string { return strings.Replace(rec, "5:admin", "12:someone-else", 1) })
	db.Close()

	out, errOut, code := srv.CLI(t, "audit", "verify", "--data-dir", srv.DataDir)
	if code == 0 {
		t.Fatalf("audit verify passed after event %d was edited:\n%s", push.ID, out)
	}
	if wantMsg := fmt.Sprintf("broken at event %d: altered", push.ID); !strings.Contains(errOut, wantMsg) {
		t.Errorf("audit verify said %q, want it to name %q", errOut, wantMsg)
	}
}

// find returns the first event with action, or nil.
func find(events []auditEvent, action string) *auditEvent {
	for i := range events {
		if events[i].Action == action {
			return &events[i]
		}
	}
	return nil
}

// waitPushAndPull polls the server's audit trail (through customs audit
// query) until project's artifact events hold a push and a pull, and
// returns them; the writer flushes within 50 ms. It fails t after 10 s.
func waitPushAndPull(t *testing.T, srv *harness.Server, project string) (push, pull *auditEvent) {
	t.Helper()
	var events []auditEvent
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := srv.MustCLI(t, "audit", "query", "--server", srv.URL(), "--project", project, "--action", "artifact", "--output", "json")
		var page struct {
			Events []auditEvent `json:"events"`
		}
		if err := json.Unmarshal([]byte(out), &page); err != nil {
			t.Fatalf("audit query output: %v\n%s", err, out)
		}
		events = page.Events
		if (find(events, "artifact.push") != nil && find(events, "artifact.pull") != nil) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	push, pull = find(events, "artifact.push"), find(events, "artifact.pull")
	if push == nil || pull == nil {
		t.Fatalf("audit query lacks a push or a pull: %+v", events)
	}
	return push, pull
}

// editRecord replaces the record of audit event id, in the audit_blocks
// row that holds it, by edit's result, with SQL on db (the server
// stopped): the tampering verification must find.
func editRecord(t *testing.T, db *sql.DB, id int64, edit func(rec string) string) {
	t.Helper()
	var first int64
	var prevHash, data string
	if err := db.QueryRow(`SELECT first_id, prev_hash, data FROM audit_blocks WHERE first_id <= $1 AND last_id >= $1`, id).
		Scan(&first, &prevHash, &data); err != nil {
		t.Fatalf("finding the block of audit event %d: %v", id, err)
	}
	spans, err := audit.AppendRecordSpans(nil, data)
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range spans {
		e, err := audit.DecodeRecordAt(data, sp.Start, prevHash, false)
		if err != nil {
			t.Fatal(err)
		}
		if e.ID != id {
			continue
		}
		rec := edit(data[sp.Start:sp.End])
		res, err := db.Exec(`UPDATE audit_blocks SET data = $1 WHERE first_id = $2`, data[:sp.Start]+rec+data[sp.End:], first)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("edited %d blocks", n)
		}
		return
	}
	t.Fatalf("the block from %d holds no event %d", first, id)
}
