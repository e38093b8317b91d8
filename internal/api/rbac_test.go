package api_test

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/decide"
	"github.com/customs-dev/customs/internal/policy"
	"github.com/customs-dev/customs/internal/rbac"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/sqlite"
)

// recorder keeps audit events.
type recorder struct{ audit.Memory }

// find returns the events of action.
func (r *recorder) find(action string) []audit.Event {
	return r.Events(func(e audit.Event) bool { return e.Action == action })
}

// apiEnv is the API over a real SQLite store and auth service, with the
// administrator "admin", projects p and q, and a recorder of audit events.
type apiEnv struct {
	url   string
	svc   *auth.Service
	db    *sqlite.DB
	rec   *recorder
	admin *apiclient.Client
}

const adminPW = "admin-password"

var fast = auth.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func newAPIEnv(t *testing.T, limiter auth.LoginLimiter) *apiEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	db, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	keys, err := auth.OpenKeyDir(filepath.Join(dir, "keys"), auth.KeyDirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	svc, err := auth.NewService(auth.Options{Users: db, Projects: db, Members: db, Robots: db,
		RobotPepper: []byte("0123456789abcdef0123456789abcdef"), Keys: keys, PasswordParams: fast,
		Limiter: limiter, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	h, err := auth.HashPassword(adminPW, fast)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateUser(ctx, &store.User{Name: "admin", PasswordHash: h, Admin: true}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"p", "q"} {
		if err := db.CreateProject(ctx, &store.Project{Name: p}); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(api.New(api.Options{Store: db, Auth: svc, Recorder: rec, Logger: logger, AuditLog: db, Policies: db,
		Allowlists: db, Evaluators: api.Evaluators{Tags: db, Hosts: []string{"registry.example"},
			Registry: decide.New(decide.Options{Store: db, Allowlists: db, Config: policy.Config{Default: policy.Allowed},
				Select: func(p *policy.Policy) bool { return len(p.Spec.Scope.Projects) > 0 }}),
			Runtime: decide.New(decide.Options{Store: db, Allowlists: db})}}))
	t.Cleanup(srv.Close)
	return &apiEnv{url: srv.URL, svc: svc, db: db, rec: rec, admin: &apiclient.Client{BaseURL: srv.URL, Username: "admin", Password: adminPW}}
}

func (e *apiEnv) as(user, pw string) *apiclient.Client {
	return &apiclient.Client{BaseURL: e.url, Username: user, Password: pw}
}

// user creates a user with password pw and, if role is valid, makes them
// a member of project p.
func (e *apiEnv) user(t *testing.T, name, pw string, role rbac.Role) *apiclient.Client {
	t.Helper()
	ctx := context.Background()
	if _, err := e.admin.CreateUser(ctx, api.CreateUserRequest{Name: name, Password: pw}); err != nil {
		t.Fatal(err)
	}
	if role.Valid() {
		if _, err := e.admin.AddMember(ctx, "p", "", name, role); err != nil {
			t.Fatal(err)
		}
	}
	return e.as(name, pw)
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if apperr.Code(err) != code {
		t.Fatalf("%s: %v, want code %q", what, err, code)
	}
}

func TestUsersAPI(t *testing.T) {
	e := newAPIEnv(t, nil)
	ctx := context.Background()
	_, err := e.admin.CreateUser(ctx, api.CreateUserRequest{Name: "alice", Password: "alice-pw-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		name string
		req  api.CreateUserRequest
		code string
	}{
		{"duplicate", api.CreateUserRequest{Name: "alice", Password: "whatever-1"}, apperr.ECONFLICT},
		{"upper case", api.CreateUserRequest{Name: "Alice", Password: "whatever-1"}, apperr.EINVALID},
		{"robot-like", api.CreateUserRequest{Name: "robot$x", Password: "whatever-1"}, apperr.EINVALID},
		{"short password", api.CreateUserRequest{Name: "bob", Password: "short"}, apperr.EINVALID},
		{"password is the name", api.CreateUserRequest{Name: "bobbobbob", Password: "bobbobbob"}, apperr.EINVALID},
		{"long password", api.CreateUserRequest{Name: "bob", Password: strings.Repeat("x", 257)}, apperr.EINVALID},
	} {
		_, err := e.admin.CreateUser(ctx, bad.req)
		wantCode(t, bad.name, err, bad.code)
	}
	alice := e.as("alice", "alice-pw-1")
	me, err := alice.Me(ctx)
	if err != nil || me.Name != "alice" || me.Kind != "user" || me.Admin || me.User == nil || me.User.Source != store.SourceLocal {
		t.Fatalf("alice's /users/me: %+v, %v", me, err)
	}
	if _, err := alice.User(ctx, "alice"); err != nil {
		t.Fatalf("alice reading herself: %v", err)
	}
	_, err = alice.User(ctx, "admin")
	wantCode(t, "alice reading admin", err, apperr.EDENIED)
	_, err = alice.Users(ctx)
	wantCode(t, "alice listing users", err, apperr.EDENIED)
	_, err = e.as("", "").Users(ctx)
	wantCode(t, "anonymous listing users", err, apperr.EUNAUTHORIZED)
	_, err = alice.CreateUser(ctx, api.CreateUserRequest{Name: "mallory", Password: "mallory-pw"})
	wantCode(t, "alice creating a user", err, apperr.EDENIED)
	if ev := e.rec.find("user.create"); len(ev) != 2 || ev[1].Outcome != audit.Denied || ev[1].Actor != "alice" {
		t.Fatalf("user.create events %+v, want the creation and alice's refusal", ev)
	}

	// Administrators may not lock themselves out.
	f, tr := false, true
	_, err = e.admin.UpdateUser(ctx, "admin", api.UpdateUserRequest{Admin: &f})
	wantCode(t, "admin demoting themself", err, apperr.EINVALID)
	_, err = e.admin.UpdateUser(ctx, "admin", api.UpdateUserRequest{Disabled: &tr})
	wantCode(t, "admin disabling themself", err, apperr.EINVALID)
	wantCode(t, "admin deleting themself", e.admin.DeleteUser(ctx, "admin"), apperr.EINVALID)

	// Disabling applies at once.
	if _, err := e.admin.UpdateUser(ctx, "alice", api.UpdateUserRequest{Disabled: &tr}); err != nil {
		t.Fatal(err)
	}
	_, err = alice.Me(ctx)
	wantCode(t, "disabled alice", err, apperr.EUNAUTHORIZED)
	if _, err := e.admin.UpdateUser(ctx, "alice", api.UpdateUserRequest{Disabled: &f, Admin: &tr}); err != nil {
		t.Fatal(err)
	}
	if me, err := alice.Me(ctx); err != nil || !me.Admin {
		t.Fatalf("enabled and promoted alice: %+v, %v", me, err)
	}
	for _, action := range []string{"user.disable", "user.enable", "user.update"} {
		if ev := e.rec.find(action); len(ev) != 1 || ev[0].Resource != "user:alice" || ev[0].Actor != "admin" {
			t.Errorf("%s events %+v", action, ev)
		}
	}

	// Changing one's own password needs the old one.
	wantCode(t, "no old password", alice.ChangePassword(ctx, "alice", "", "alice-pw-2"), apperr.EINVALID)
	wantCode(t, "wrong old password", alice.ChangePassword(ctx, "alice", "nope", "alice-pw-2"), apperr.EDENIED)
	wantCode(t, "too short", alice.ChangePassword(ctx, "alice", "alice-pw-1", "x"), apperr.EINVALID)
	if err := alice.ChangePassword(ctx, "alice", "alice-pw-1", "alice-pw-2"); err != nil {
		t.Fatal(err)
	}
	_, err = alice.Me(ctx)
	wantCode(t, "the old password after the change", err, apperr.EUNAUTHORIZED)
	alice = e.as("alice", "alice-pw-2")
	if _, err := alice.Me(ctx); err != nil {
		t.Fatalf("the new password: %v", err)
	}
	// An administrator sets another's password without the old one.
	if err := e.admin.ChangePassword(ctx, "alice", "", "alice-pw-3"); err != nil {
		t.Fatal(err)
	}
	ev := e.rec.find("user.password.change")
	if len(ev) != 3 || ev[0].Outcome != audit.Failure || ev[1].Actor != "alice" || ev[2].Actor != "admin" {
		t.Fatalf("password change events %+v", ev)
	}
	for _, e := range ev {
		if strings.Contains(e.Reason, "alice-pw") {
			t.Fatalf("an event carries a password: %+v", e)
		}
	}

	// Deleting removes the memberships too.
	if _, err := e.admin.AddMember(ctx, "p", "", "alice", rbac.RoleDeveloper); err != nil {
		t.Fatal(err)
	}
	if err := e.admin.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if ms, err := e.admin.Members(ctx, "p"); err != nil || len(ms) != 0 {
		t.Fatalf("members after deleting alice: %v, %v", ms, err)
	}
	wantCode(t, "deleting again", e.admin.DeleteUser(ctx, "alice"), apperr.ENOTFOUND)
}

func TestMembersAPI(t *testing.T) {
	e := newAPIEnv(t, nil)
	ctx := context.Background()
	pa := e.user(t, "pa", "pa-password", rbac.RoleProjectAdmin)
	dev := e.user(t, "dev", "dev-password", rbac.RoleDeveloper)
	e.user(t, "carol", "carol-password", 0)

	if _, err := pa.AddMember(ctx, "p", "", "carol", rbac.RoleGuest); err != nil {
		t.Fatalf("project admin adding a member: %v", err)
	}
	_, err := pa.AddMember(ctx, "q", "", "carol", rbac.RoleGuest)
	wantCode(t, "project admin of p adding to q", err, apperr.ENOTFOUND)
	_, err = dev.AddMember(ctx, "p", "", "carol", rbac.RoleGuest)
	wantCode(t, "developer adding a member", err, apperr.EDENIED)
	if !strings.Contains(apperr.Message(err), "project-admin") {
		t.Errorf("the refusal does not say which role it takes: %q", apperr.Message(err))
	}
	_, err = pa.AddMember(ctx, "p", "", "carol", rbac.RoleDeveloper)
	wantCode(t, "duplicate", err, apperr.ECONFLICT)
	_, err = pa.AddMember(ctx, "p", "", "ghost", rbac.RoleGuest)
	wantCode(t, "unknown user", err, apperr.ENOTFOUND)
	_, err = pa.AddMember(ctx, "p", "robot", "carol", rbac.RoleGuest)
	wantCode(t, "unknown kind", err, apperr.EINVALID)
	for body, want := range map[string]int{`{"name":"carol"}`: 400, `{"name":"carol","role":"owner"}`: 400, `{"name":"carol","role":"guest","x":1}`: 400} {
		req, _ := http.NewRequest("POST", e.url+"/api/v1/projects/p/members", strings.NewReader(body))
		req.SetBasicAuth("pa", "pa-password")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("POST members %s: %d, want %d", body, resp.StatusCode, want)
		}
	}
	if _, err := pa.AddMember(ctx, "p", store.MemberGroup, "cn=ops,ou=groups", rbac.RoleMaintainer); err != nil {
		t.Fatalf("a group member: %v", err)
	}
	if _, err := pa.SetMemberRole(ctx, "p", store.MemberGroup, "cn=ops,ou=groups", rbac.RoleGuest); err != nil {
		t.Fatalf("changing a group's role: %v", err)
	}
	_, err = pa.SetMemberRole(ctx, "p", "", "ghost", rbac.RoleGuest)
	wantCode(t, "changing a non-member", err, apperr.ENOTFOUND)
	wantCode(t, "removing a non-member", pa.RemoveMember(ctx, "p", "", "ghost"), apperr.ENOTFOUND)
	ms, err := dev.Members(ctx, "p")
	if err != nil || len(ms) != 4 {
		t.Fatalf("developer listing members: %v, %v", ms, err)
	}
	carol := e.as("carol", "carol-password")
	if err := pa.RemoveMember(ctx, "p", "", "carol"); err != nil {
		t.Fatal(err)
	}
	_, err = carol.Members(ctx, "p")
	wantCode(t, "removed member listing members", err, apperr.ENOTFOUND)
	perms, err := dev.Permissions(ctx, "p")
	if err != nil || rbac.SetOf(perms.Actions...) != rbac.Permissions(rbac.RoleDeveloper) {
		t.Fatalf("developer's permissions %v, %v", perms, err)
	}
	for _, action := range []string{"project.member.add", "project.member.update", "project.member.remove"} {
		if len(e.rec.find(action)) == 0 {
			t.Errorf("no %s event", action)
		}
	}
	if ev := e.rec.find("project.member.add"); ev[len(ev)-1].Project != "p" || ev[len(ev)-1].Details["role"] == "" {
		t.Errorf("member add event %+v", ev[len(ev)-1])
	}
}

func TestRobotsAPI(t *testing.T) {
	e := newAPIEnv(t, nil)
	ctx := context.Background()
	pa := e.user(t, "pa", "pa-password", rbac.RoleProjectAdmin)
	maint := e.user(t, "maint", "maint-password", rbac.RoleMaintainer)
	pull := []rbac.Action{rbac.ActionPull}
	past := time.Now().Add(-time.Hour)
	for _, bad := range []struct {
		name    string
		project string
		req     api.CreateRobotRequest
	}{
		{"no permissions", "", api.CreateRobotRequest{Name: "a"}},
		{"unknown project", "", api.CreateRobotRequest{Name: "a", Permissions: []api.RobotPermission{{Project: "nope", Actions: pull}}}},
		{"no action", "", api.CreateRobotRequest{Name: "a", Permissions: []api.RobotPermission{{Project: "p"}}}},
		{"actions on a system robot", "", api.CreateRobotRequest{Name: "a", Actions: pull}},
		{"permissions on a project robot", "p", api.CreateRobotRequest{Name: "a", Permissions: []api.RobotPermission{{Project: "q", Actions: pull}}}},
		{"bad name", "p", api.CreateRobotRequest{Name: "A+B", Actions: pull}},
		{"both expiries", "p", api.CreateRobotRequest{Name: "a", Actions: pull, Expiry: api.Expiry{ExpiresAt: &past, ExpiresIn: "1d"}}},
		{"expired already", "p", api.CreateRobotRequest{Name: "a", Actions: pull, Expiry: api.Expiry{ExpiresAt: &past}}},
		{"bad lifetime", "p", api.CreateRobotRequest{Name: "a", Actions: pull, Expiry: api.Expiry{ExpiresIn: "forever"}}},
		{"negative lifetime", "p", api.CreateRobotRequest{Name: "a", Actions: pull, Expiry: api.Expiry{ExpiresIn: "-1d"}}},
	} {
		_, err := e.admin.CreateRobot(ctx, bad.project, bad.req)
		wantCode(t, bad.name, err, apperr.EINVALID)
	}

	rb, err := pa.CreateRobot(ctx, "p", api.CreateRobotRequest{Name: "ci", Actions: []rbac.Action{rbac.ActionPush}, Expiry: api.Expiry{ExpiresIn: "30d"}})
	if err != nil {
		t.Fatal(err)
	}
	if rb.Name != "robot$p+ci" || rb.Project != "p" || len(rb.Secret) < 32 || rb.ExpiresAt == nil || rb.CreatedBy != "pa" ||
		rb.ExpiresAt.Sub(time.Now()) < 29*24*time.Hour {
		t.Fatalf("created robot %+v", rb)
	}
	if got := rbac.SetOf(rb.Permissions[0].Actions...); got != rbac.SetOf(rbac.ActionReadProject, rbac.ActionPull, rbac.ActionPush) {
		t.Fatalf("robot actions %v, want push plus the implied pull and read-project", got.Strings())
	}
	_, err = pa.CreateRobot(ctx, "q", api.CreateRobotRequest{Name: "ci", Actions: pull})
	wantCode(t, "project admin of p creating a robot in q", err, apperr.ENOTFOUND)
	_, err = pa.CreateRobot(ctx, "", api.CreateRobotRequest{Name: "sys", Permissions: []api.RobotPermission{{Project: "*", Actions: pull}}})
	wantCode(t, "project admin creating a system robot", err, apperr.EDENIED)
	_, err = maint.CreateRobot(ctx, "p", api.CreateRobotRequest{Name: "m", Actions: pull})
	wantCode(t, "maintainer creating a robot", err, apperr.EDENIED)
	sys, err := e.admin.CreateRobot(ctx, "", api.CreateRobotRequest{Name: "sys", Permissions: []api.RobotPermission{{Project: "*", Actions: pull}}})
	if err != nil {
		t.Fatal(err)
	}

	// Reading: secrets never come back.
	got, err := maint.Robot(ctx, rb.Name)
	if err != nil || got.Secret != "" {
		t.Fatalf("maintainer reading the robot: %+v, %v", got, err)
	}
	rs, err := maint.Robots(ctx, "p")
	if err != nil || len(rs) != 1 || rs[0].Secret != "" {
		t.Fatalf("maintainer listing robots: %+v, %v", rs, err)
	}
	_, err = maint.Robot(ctx, sys.Name)
	wantCode(t, "maintainer reading a system robot", err, apperr.ENOTFOUND)
	_, err = maint.RotateRobot(ctx, rb.Name)
	wantCode(t, "maintainer rotating", err, apperr.EDENIED)
	all, err := e.admin.Robots(ctx, "")
	if err != nil || len(all) != 2 {
		t.Fatalf("admin listing every robot: %v, %v", all, err)
	}

	// Updating.
	never := true
	upd, err := pa.UpdateRobot(ctx, rb.Name, api.UpdateRobotRequest{NeverExpires: never, Actions: []rbac.Action{rbac.ActionPull, rbac.ActionDeleteArtifact}})
	if err != nil || upd.ExpiresAt != nil || rbac.SetOf(upd.Permissions[0].Actions...).Has(rbac.ActionPush) ||
		!rbac.SetOf(upd.Permissions[0].Actions...).Has(rbac.ActionDeleteArtifact) {
		t.Fatalf("update: %+v, %v", upd, err)
	}
	_, err = pa.UpdateRobot(ctx, rb.Name, api.UpdateRobotRequest{Permissions: []api.RobotPermission{{Project: "q", Actions: pull}}})
	wantCode(t, "permissions on a project robot", err, apperr.EINVALID)
	_, err = pa.UpdateRobot(ctx, rb.Name, api.UpdateRobotRequest{NeverExpires: true, Expiry: api.Expiry{ExpiresIn: "1d"}})
	wantCode(t, "neverExpires with an expiry", err, apperr.EINVALID)

	// The robot logs in to the API with its secret; rotation replaces it.
	robot := e.as(rb.Name, rb.Secret)
	if me, err := robot.Me(ctx); err != nil || me.Kind != "robot" || me.User != nil {
		t.Fatalf("robot /users/me: %+v, %v", me, err)
	}
	rot, err := pa.RotateRobot(ctx, rb.Name)
	if err != nil || rot.Secret == "" || rot.Secret == rb.Secret {
		t.Fatalf("rotate: %+v, %v", rot, err)
	}
	_, err = robot.Me(ctx)
	wantCode(t, "old secret", err, apperr.EUNAUTHORIZED)
	if err := pa.DeleteRobot(ctx, rb.Name); err != nil {
		t.Fatal(err)
	}
	_, err = e.as(rb.Name, rot.Secret).Me(ctx)
	wantCode(t, "deleted robot", err, apperr.EUNAUTHORIZED)

	for _, action := range []string{"robot.create", "robot.update", "robot.rotate", "robot.delete"} {
		ev := e.rec.find(action)
		if len(ev) == 0 {
			t.Errorf("no %s event", action)
		}
		for _, x := range ev {
			for _, v := range x.Details {
				if strings.Contains(v, rb.Secret) || strings.Contains(v, rot.Secret) {
					t.Errorf("%s event carries the secret", action)
				}
			}
		}
	}
}

func TestAPIThrottledLogins(t *testing.T) {
	e := newAPIEnv(t, auth.NewLoginLimiter(auth.LimiterOptions{MaxFailures: 2, Lockout: time.Minute}))
	ctx := context.Background()
	for range 2 {
		_, err := e.as("admin", "wrong").Me(ctx)
		wantCode(t, "wrong password", err, apperr.EUNAUTHORIZED)
	}
	req, _ := http.NewRequest("GET", e.url+"/api/v1/users/me", nil)
	req.SetBasicAuth("admin", adminPW)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "60" || !strings.Contains(string(body), "too many failed logins") {
		t.Fatalf("throttled login: %d, Retry-After %q, %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

func TestParseLifetime(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30d": 30 * 24 * time.Hour, "720h": 720 * time.Hour, "1.5d": 36 * time.Hour, "90m": 90 * time.Minute, "3650d": 3650 * 24 * time.Hour,
	} {
		if got, err := api.ParseLifetime(in); err != nil || got != want {
			t.Errorf("ParseLifetime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0d", "-1d", "3651d", "1e300d", "NaNd", "forever", "d", "1y"} {
		if _, err := api.ParseLifetime(bad); !apperr.Is(err, apperr.EINVALID) {
			t.Errorf("ParseLifetime(%q) = %v, want EINVALID", bad, err)
		}
	}
}

func FuzzParseLifetime(f *testing.F) {
	for _, s := range []string{"30d", "720h", "1.5d", "-1d", "1e300d", "NaNd", "Infd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := api.ParseLifetime(s)
		if err != nil {
			if !apperr.Is(err, apperr.EINVALID) {
				t.Fatalf("error code %s", apperr.Code(err))
			}
			return
		}
		if d <= 0 || d > 3650*24*time.Hour || math.IsNaN(float64(d)) {
			t.Fatalf("ParseLifetime(%q) = %v: out of range", s, d)
		}
	})
}

// TestProjectAuditLog: members holding read-audit query their project's
// audit events; others, and queries without a project, need a system
// administrator.
func TestProjectAuditLog(t *testing.T) {
	e := newAPIEnv(t, nil)
	ctx := context.Background()
	if err := e.db.AppendAudit(ctx, []audit.Event{
		{ActorKind: "user", Actor: "admin", Action: "artifact.push", Resource: "repository:p/app", Project: "p", Outcome: audit.Success},
		{ActorKind: "user", Actor: "admin", Action: "artifact.push", Resource: "repository:q/app", Project: "q", Outcome: audit.Success},
	}); err != nil {
		t.Fatal(err)
	}
	for _, role := range rbac.Roles() {
		c := e.user(t, "u-"+role.String(), "password-"+role.String(), role)
		page, err := c.AuditEvents(ctx, apiclient.AuditQuery{Project: "p"})
		if rbac.Allowed(role, rbac.ActionReadAudit) {
			if err != nil || len(page.Events) != 1 || page.Events[0].Project != "p" {
				t.Errorf("%s reading p's audit log: %+v, %v", role, page.Events, err)
			}
		} else {
			wantCode(t, role.String()+" reading p's audit log", err, apperr.EDENIED)
		}
		_, err = c.AuditEvents(ctx, apiclient.AuditQuery{Project: "q"})
		wantCode(t, role.String()+" reading q's audit log", err, apperr.EDENIED)
		_, err = c.AuditEvents(ctx, apiclient.AuditQuery{})
		wantCode(t, role.String()+" reading the whole audit log", err, apperr.EDENIED)
	}
	if page, err := e.admin.AuditEvents(ctx, apiclient.AuditQuery{}); err != nil || len(page.Events) < 2 {
		t.Fatalf("admin reading the whole audit log: %v, %v", page.Events, err)
	}
}
