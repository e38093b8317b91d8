package e2e_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/test/e2e/harness"
)

// TestSeedRoles is seed 001's role-based access control scenario with real
// clients: an administrator (through `customs login`) creates the users
// developer and guest and makes them members of testproject with those
// roles; the developer pushes (skopeo and crane); the guest's push is
// refused with "denied: requested access to the resource is denied"; the
// guest pulls; and each of these actions is in the audit log with the right
// actor and outcome.
func TestSeedRoles(t *testing.T) {
	t.Parallel()
	if os.Getenv(harness.EnvTarget) == harness.KindDistribution {
		t.Skip("users, roles and the audit trail are customs'")
	}
	harness.Tool(t, "skopeo")
	harness.Tool(t, "crane")
	src := harness.Image(t, debianImage)
	srcDigest, _ := layoutManifest(t, src)
	customs := harness.CustomsBinary(t)

	srv := harness.StartCustoms(t)
	srv.CreateProject(t, "testproject", false)
	admin := harness.NewClient(t)
	admin.MustInput(t, srv.Password+"\n", customs, "login", srv.URL(), "-u", srv.Username, "--password-stdin")
	const devPW, guestPW = "developer-password-1", "guest-password-1"
	admin.MustInput(t, devPW+"\n", customs, "user", "create", "developer", "--password-stdin")
	admin.MustInput(t, guestPW+"\n", customs, "user", "create", "guest", "--password-stdin")
	admin.Must(t, customs, "project", "member", "add", "testproject", "developer", "--role", "developer")
	admin.Must(t, customs, "project", "member", "add", "testproject", "guest", "--role", "guest")
	members := admin.Must(t, customs, "project", "member", "list", "testproject")
	if !strings.Contains(members, "developer  user  developer") || !strings.Contains(members, "guest      user  guest") {
		t.Fatalf("members of testproject:\n%s", members)
	}

	ubuntu := srv.Addr + "/testproject/ubuntu:latest"
	elastic := srv.Addr + "/testproject/elasticsearch:latest"

	// The developer pushes, with skopeo and with crane.
	dev := harness.NewClient(t)
	dev.MustInput(t, devPW+"\n", "skopeo", "login", "--tls-verify=false", "--username", "developer", "--password-stdin", srv.Addr)
	dev.Must(t, "skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false", "oci:"+src+":bookworm", "docker://"+ubuntu)
	dev.MustInput(t, devPW, "crane", "auth", "login", srv.Addr, "-u", "developer", "--password-stdin")
	dev.Must(t, "crane", "push", "--insecure", src, srv.Addr+"/testproject/ubuntu:crane")

	// The guest's push is refused, with either client.
	guest := harness.NewClient(t)
	guest.MustInput(t, guestPW+"\n", "skopeo", "login", "--tls-verify=false", "--username", "guest", "--password-stdin", srv.Addr)
	r := guest.Run(t, "skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false", "oci:"+src+":bookworm", "docker://"+elastic)
	if r.Err == nil || !strings.Contains(r.Stderr+r.Stdout, "denied: requested access to the resource is denied") {
		t.Fatalf("the guest's skopeo push was not refused as the seed shows:\n%s", r)
	}
	t.Logf("skopeo said: %s", strings.TrimSpace(r.Stderr))
	guest.MustInput(t, guestPW, "crane", "auth", "login", srv.Addr, "-u", "guest", "--password-stdin")
	r = guest.Run(t, "crane", "push", "--insecure", src, elastic)
	if r.Err == nil || !strings.Contains(strings.ToLower(r.Stderr), "denied: requested access to the resource is denied") {
		t.Fatalf("the guest's crane push was not refused as the seed shows:\n%s", r)
	}
	t.Logf("crane said: %s", strings.TrimSpace(r.Stderr))
	if got := guest.Run(t, "skopeo", "inspect", "--tls-verify=false", "docker://"+elastic); got.Err == nil {
		t.Fatalf("the refused push left an image behind:\n%s", got)
	}

	// The guest pulls.
	out := filepath.Join(t.TempDir(), "pulled")
	guest.Must(t, "skopeo", "--insecure-policy", "copy", "--src-tls-verify=false", "docker://"+ubuntu, "oci:"+out+":latest")
	if got, _ := layoutManifest(t, out); got != srcDigest {
		t.Fatalf("the guest pulled %s, the developer pushed %s", got, srcDigest)
	}
	if d := strings.TrimSpace(guest.Must(t, "crane", "digest", "--insecure", ubuntu)); d != srcDigest {
		t.Fatalf("crane digest as guest: %s", d)
	}

	// Each action is in the audit log with its actor and outcome.
	want := []struct{ actor, action, outcome, resource string }{
		{"developer", "user.login", "success", ""},
		{"developer", "artifact.push", "success", "testproject/ubuntu"},
		{"guest", "user.login", "success", ""},
		{"guest", "artifact.pull", "success", "testproject/ubuntu"},
		{"guest", "token.issue", "success", ""},
		{"admin", "user.create", "success", "user:developer"},
		{"admin", "project.member.add", "success", "guest"},
	}
	deadline := time.Now().Add(15 * time.Second)
	var events []auditEvent
	for {
		raw := admin.Must(t, customs, "audit", "query", "--output", "json", "-n", "1000")
		var page struct {
			Events []auditEvent `json:"events"`
		}
		if err := json.Unmarshal([]byte(raw), &page); err != nil {
			t.Fatalf("audit query output: %v\n%s", err, raw)
		}
		events = page.Events
		missing := ""
		for _, w := range want {
			if !hasEvent(events, w.actor, w.action, w.outcome, w.resource) {
				missing = w.actor + " " + w.action + " " + w.outcome
				break
			}
		}
		if missing == "" && refusedPush(events) != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the audit log lacks %q (or the guest's refused push); events:\n%+v", missing, events)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if e := refusedPush(events); e.Outcome != "denied" || !strings.Contains(e.Resource, "testproject/elasticsearch") {
		t.Errorf("the guest's refused push is audited as %+v", *e)
	}
}

// hasEvent reports whether events hold one by actor with action and
// outcome whose resource contains resource.
func hasEvent(events []auditEvent, actor, action, outcome, resource string) bool {
	for _, e := range events {
		if e.Actor == actor && e.Action == action && e.Outcome == outcome && strings.Contains(e.Resource, resource) {
			return true
		}
	}
	return false
}

// refusedPush returns the audit event of the guest's refused push, or nil.
func refusedPush(events []auditEvent) *auditEvent {
	for i, e := range events {
		if e.Actor == "guest" && e.Outcome == "denied" && strings.Contains(e.Resource, "testproject/elasticsearch") {
			return &events[i]
		}
	}
	return nil
}
