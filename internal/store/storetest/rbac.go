package storetest

import (
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// user creates user name.
func (e *env) user(name string) *store.User {
	e.t.Helper()
	u := &store.User{Name: name, PasswordHash: "h-" + name}
	ok(e.t, e.s.CreateUser(e.ctx, u))
	return u
}

// member adds a membership.
func (e *env) member(project, kind, name, role string) {
	e.t.Helper()
	ok(e.t, e.s.AddMember(e.ctx, &store.Member{Project: project, Kind: kind, Name: name, Role: role}))
}

// sortedRoles returns roles sorted, for comparisons.
func sortedRoles(m map[string][]string) map[string][]string {
	for k := range m {
		sort.Strings(m[k])
	}
	return m
}

func sameRoles(t *testing.T, what string, got, want map[string][]string) {
	t.Helper()
	got = sortedRoles(got)
	if len(got) != len(want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Fatalf("%s = %v, want %v", what, got, want)
		}
	}
}

var userSourceTests = []test{
	{"source and external id", func(t *testing.T, e *env) {
		local := &store.User{Name: "loc", PasswordHash: "h"}
		ok(t, e.s.CreateUser(e.ctx, local))
		if local.Source != store.SourceLocal {
			t.Errorf("CreateUser left Source %q, want %q", local.Source, store.SourceLocal)
		}
		ldap := &store.User{Name: "dir", Source: store.SourceLDAP, ExternalID: "uid=dir,ou=people,dc=example,dc=org"}
		ok(t, e.s.CreateUser(e.ctx, ldap))
		got, err := e.s.User(e.ctx, "dir")
		ok(t, err)
		if got.Source != store.SourceLDAP || got.ExternalID != ldap.ExternalID || got.PasswordHash != "" {
			t.Errorf("User(dir) = %+v", got)
		}
		got.ExternalID = "uid=dir,ou=moved,dc=example,dc=org"
		ok(t, e.s.UpdateUser(e.ctx, got))
		again, err := e.s.User(e.ctx, "dir")
		ok(t, err)
		if again.ExternalID != got.ExternalID {
			t.Errorf("UpdateUser did not save ExternalID: %+v", again)
		}
		all, err := e.s.Users(e.ctx, store.Page{})
		ok(t, err)
		if len(all) != 2 || all[0].Source != store.SourceLDAP || all[1].Source != store.SourceLocal {
			t.Errorf("Users = %+v", all)
		}
	}},
	{"delete", func(t *testing.T, e *env) {
		e.user("gone")
		e.user("stays")
		e.project("p")
		e.member("p", store.MemberUser, "gone", "developer")
		e.member("p", store.MemberUser, "stays", "guest")
		ok(t, e.s.DeleteUser(e.ctx, "gone"))
		_, err := e.s.User(e.ctx, "gone")
		wantCode(t, err, apperr.ENOTFOUND, "", "gone")
		wantCode(t, e.s.DeleteUser(e.ctx, "gone"), apperr.ENOTFOUND, "", "gone")
		ms, err := e.s.Members(e.ctx, "p")
		ok(t, err)
		if len(ms) != 1 || ms[0].Name != "stays" {
			t.Errorf("after deleting the user, Members = %+v", ms)
		}
		roles, err := e.s.MemberRoles(e.ctx, "gone", nil)
		ok(t, err)
		sameRoles(t, "MemberRoles(gone)", roles, map[string][]string{})
		// A new user of the same name does not inherit the old memberships.
		e.user("gone")
		roles, err = e.s.MemberRoles(e.ctx, "gone", nil)
		ok(t, err)
		sameRoles(t, "MemberRoles(new gone)", roles, map[string][]string{})
	}},
}

var memberTests = []test{
	{"add, list, update, delete", func(t *testing.T, e *env) {
		e.project("p")
		e.user("zed")
		e.user("amy")
		m := &store.Member{Project: "p", Kind: store.MemberUser, Name: "zed", Role: "developer"}
		ok(t, e.s.AddMember(e.ctx, m))
		sameTime(t, "CreatedAt", m.CreatedAt, t0)
		e.member("p", store.MemberUser, "amy", "guest")
		e.member("p", store.MemberGroup, "devs", "maintainer")
		ms, err := e.s.Members(e.ctx, "p")
		ok(t, err)
		var got []string
		for _, m := range ms {
			if m.Project != "p" {
				t.Errorf("member %+v has the wrong project", m)
			}
			got = append(got, m.Kind+":"+m.Name+"="+m.Role)
		}
		if want := []string{"user:amy=guest", "user:zed=developer", "group:devs=maintainer"}; !slices.Equal(got, want) {
			t.Errorf("Members = %v, want %v", got, want)
		}
		ok(t, e.s.UpdateMember(e.ctx, &store.Member{Project: "p", Kind: store.MemberUser, Name: "zed", Role: "maintainer"}))
		roles, err := e.s.MemberRoles(e.ctx, "zed", nil)
		ok(t, err)
		sameRoles(t, "MemberRoles(zed)", roles, map[string][]string{"p": {"maintainer"}})
		ok(t, e.s.DeleteMember(e.ctx, "p", store.MemberUser, "zed"))
		roles, err = e.s.MemberRoles(e.ctx, "zed", nil)
		ok(t, err)
		sameRoles(t, "MemberRoles(zed) after removal", roles, map[string][]string{})
		if _, err := e.s.User(e.ctx, "zed"); err != nil {
			t.Errorf("removing the membership removed the user: %v", err)
		}
	}},
	{"errors", func(t *testing.T, e *env) {
		e.project("p")
		e.user("u")
		wantCode(t, e.s.AddMember(e.ctx, &store.Member{Project: "nope", Kind: store.MemberUser, Name: "u", Role: "guest"}),
			apperr.ENOTFOUND, "", "nope")
		wantCode(t, e.s.AddMember(e.ctx, &store.Member{Project: "p", Kind: store.MemberUser, Name: "ghost", Role: "guest"}),
			apperr.ENOTFOUND, "", "ghost")
		wantCode(t, e.s.AddMember(e.ctx, &store.Member{Project: "p", Kind: "robot", Name: "u", Role: "guest"}),
			apperr.EINVALID, "", "")
		wantCode(t, e.s.AddMember(e.ctx, &store.Member{Project: "p", Kind: store.MemberUser, Name: "u"}),
			apperr.EINVALID, "", "")
		e.member("p", store.MemberUser, "u", "guest")
		wantCode(t, e.s.AddMember(e.ctx, &store.Member{Project: "p", Kind: store.MemberUser, Name: "u", Role: "developer"}),
			apperr.ECONFLICT, "", "u")
		// A group may share a user's name: they are different members.
		e.member("p", store.MemberGroup, "u", "developer")
		wantCode(t, e.s.UpdateMember(e.ctx, &store.Member{Project: "p", Kind: store.MemberUser, Name: "other", Role: "guest"}),
			apperr.ENOTFOUND, "", "other")
		wantCode(t, e.s.UpdateMember(e.ctx, &store.Member{Project: "nope", Kind: store.MemberUser, Name: "u", Role: "guest"}),
			apperr.ENOTFOUND, "", "")
		wantCode(t, e.s.DeleteMember(e.ctx, "p", store.MemberUser, "other"), apperr.ENOTFOUND, "", "other")
		wantCode(t, e.s.DeleteMember(e.ctx, "nope", store.MemberUser, "u"), apperr.ENOTFOUND, "", "")
		_, err := e.s.Members(e.ctx, "nope")
		wantCode(t, err, apperr.ENOTFOUND, "", "nope")
		ms, err := e.s.Members(e.ctx, "p")
		ok(t, err)
		if len(ms) != 2 || ms[0].Role != "guest" {
			t.Errorf("the refused changes changed the members: %+v", ms)
		}
	}},
	{"roles across projects and groups", func(t *testing.T, e *env) {
		for _, p := range []string{"a", "b", "c", "d"} {
			e.project(p)
		}
		e.user("ann")
		e.user("bob")
		e.member("a", store.MemberUser, "ann", "developer")
		e.member("b", store.MemberUser, "ann", "guest")
		e.member("b", store.MemberGroup, "devs", "maintainer")
		e.member("c", store.MemberGroup, "ops", "project-admin")
		e.member("d", store.MemberUser, "bob", "developer")
		e.member("d", store.MemberGroup, "ann", "guest") // a group named like the user: not hers
		roles, err := e.s.MemberRoles(e.ctx, "ann", nil)
		ok(t, err)
		sameRoles(t, "ann without groups", roles, map[string][]string{"a": {"developer"}, "b": {"guest"}})
		roles, err = e.s.MemberRoles(e.ctx, "ann", []string{"devs", "ops", "nobody"})
		ok(t, err)
		sameRoles(t, "ann in devs and ops", roles,
			map[string][]string{"a": {"developer"}, "b": {"guest", "maintainer"}, "c": {"project-admin"}})
		roles, err = e.s.MemberRoles(e.ctx, "", []string{"ops"})
		ok(t, err)
		sameRoles(t, "group ops alone", roles, map[string][]string{"c": {"project-admin"}})
		roles, err = e.s.MemberRoles(e.ctx, "Ann", nil)
		ok(t, err)
		sameRoles(t, "Ann (case differs)", roles, map[string][]string{})
		many := make([]string, 1200) // more than one statement's worth
		for i := range many {
			many[i] = "g" + time.Duration(i).String()
		}
		many[1100] = "devs"
		roles, err = e.s.MemberRoles(e.ctx, "nobody", many)
		ok(t, err)
		sameRoles(t, "many groups", roles, map[string][]string{"b": {"maintainer"}})
	}},
	{"deleted with their project", func(t *testing.T, e *env) {
		e.project("p")
		e.user("u")
		e.member("p", store.MemberUser, "u", "developer")
		e.member("p", store.MemberGroup, "g", "developer")
		ok(t, e.s.DeleteProject(e.ctx, "p"))
		e.project("p")
		roles, err := e.s.MemberRoles(e.ctx, "u", []string{"g"})
		ok(t, err)
		sameRoles(t, "roles in the recreated project", roles, map[string][]string{})
	}},
}

var robotTests = []test{
	{"create, get, update, delete", func(t *testing.T, e *env) {
		e.project("p")
		exp := t0.Add(30 * 24 * time.Hour)
		r := &store.Robot{
			Name: "robot$p+ci", Project: "p", Description: "CI pushes", SecretHash: "hmac$1",
			Permissions: []store.RobotPermission{{Project: "p", Actions: []string{"pull", "push"}}},
			ExpiresAt:   exp, CreatedBy: "admin",
		}
		ok(t, e.s.CreateRobot(e.ctx, r))
		if r.ID == 0 {
			t.Error("CreateRobot did not set ID")
		}
		sameTime(t, "CreatedAt", r.CreatedAt, t0)
		got, err := e.s.Robot(e.ctx, "robot$p+ci")
		ok(t, err)
		if got.ID != r.ID || got.Project != "p" || got.Description != "CI pushes" || got.SecretHash != "hmac$1" ||
			got.CreatedBy != "admin" || got.Disabled || len(got.Permissions) != 1 ||
			got.Permissions[0].Project != "p" || !slices.Equal(got.Permissions[0].Actions, []string{"pull", "push"}) {
			t.Errorf("Robot = %+v", got)
		}
		sameTime(t, "ExpiresAt", got.ExpiresAt, exp)

		got.SecretHash, got.Disabled, got.Description = "hmac$2", true, "rotated"
		got.ExpiresAt = time.Time{}
		got.Permissions = []store.RobotPermission{{Project: "*", Actions: []string{"pull"}}}
		ok(t, e.s.UpdateRobot(e.ctx, got))
		again, err := e.s.Robot(e.ctx, "robot$p+ci")
		ok(t, err)
		if again.SecretHash != "hmac$2" || !again.Disabled || again.Description != "rotated" || !again.ExpiresAt.IsZero() ||
			len(again.Permissions) != 1 || again.Permissions[0].Project != "*" || again.Project != "p" {
			t.Errorf("after UpdateRobot, Robot = %+v", again)
		}
		ok(t, e.s.DeleteRobot(e.ctx, "robot$p+ci"))
		_, err = e.s.Robot(e.ctx, "robot$p+ci")
		wantCode(t, err, apperr.ENOTFOUND, "", "robot$p+ci")
	}},
	{"system robot never expiring", func(t *testing.T, e *env) {
		r := &store.Robot{Name: "robot$scanner", SecretHash: "h", Permissions: []store.RobotPermission{{Project: "*", Actions: []string{"pull", "read-scan"}}}}
		ok(t, e.s.CreateRobot(e.ctx, r))
		got, err := e.s.Robot(e.ctx, "robot$scanner")
		ok(t, err)
		if got.Project != "" || !got.ExpiresAt.IsZero() || len(got.Permissions) != 1 {
			t.Errorf("Robot = %+v", got)
		}
		none := &store.Robot{Name: "robot$none", SecretHash: "h"}
		ok(t, e.s.CreateRobot(e.ctx, none))
		got, err = e.s.Robot(e.ctx, "robot$none")
		ok(t, err)
		if len(got.Permissions) != 0 {
			t.Errorf("a robot without permissions came back with %+v", got.Permissions)
		}
	}},
	{"errors", func(t *testing.T, e *env) {
		e.project("p")
		ok(t, e.s.CreateRobot(e.ctx, &store.Robot{Name: "robot$p+x", Project: "p", SecretHash: "h1"}))
		wantCode(t, e.s.CreateRobot(e.ctx, &store.Robot{Name: "robot$p+x", Project: "p", SecretHash: "h2"}),
			apperr.ECONFLICT, "", "robot$p+x")
		got, err := e.s.Robot(e.ctx, "robot$p+x")
		ok(t, err)
		if got.SecretHash != "h1" {
			t.Error("the refused duplicate changed the existing robot")
		}
		wantCode(t, e.s.CreateRobot(e.ctx, &store.Robot{Name: "robot$q+x", Project: "q", SecretHash: "h"}),
			apperr.ENOTFOUND, "", "q")
		wantCode(t, e.s.CreateRobot(e.ctx, &store.Robot{Name: "robot$nohash"}), apperr.EINVALID, "", "")
		wantCode(t, e.s.UpdateRobot(e.ctx, &store.Robot{Name: "robot$ghost", SecretHash: "h"}), apperr.ENOTFOUND, "", "ghost")
		wantCode(t, e.s.DeleteRobot(e.ctx, "robot$ghost"), apperr.ENOTFOUND, "", "ghost")
		_, err = e.s.Robot(e.ctx, "ROBOT$p+x")
		wantCode(t, err, apperr.ENOTFOUND, "", "")
	}},
	{"list by project and deleted with it", func(t *testing.T, e *env) {
		e.project("a")
		e.project("b")
		for _, r := range []store.Robot{
			{Name: "robot$b+two", Project: "b"}, {Name: "robot$a+one", Project: "a"},
			{Name: "robot$sys"}, {Name: "robot$a+two", Project: "a"},
		} {
			r.SecretHash = "h"
			ok(t, e.s.CreateRobot(e.ctx, &r))
		}
		names := func(project string, pg store.Page) []string {
			rs, err := e.s.Robots(e.ctx, project, pg)
			ok(t, err)
			var out []string
			for _, r := range rs {
				out = append(out, r.Name)
			}
			return out
		}
		if got, want := names("", store.Page{}), []string{"robot$a+one", "robot$a+two", "robot$b+two", "robot$sys"}; !slices.Equal(got, want) {
			t.Errorf("all robots = %v, want %v", got, want)
		}
		if got, want := names("a", store.Page{}), []string{"robot$a+one", "robot$a+two"}; !slices.Equal(got, want) {
			t.Errorf("robots of a = %v, want %v", got, want)
		}
		if got, want := names("a", store.Page{N: 1, Last: "robot$a+one"}), []string{"robot$a+two"}; !slices.Equal(got, want) {
			t.Errorf("second page of a = %v, want %v", got, want)
		}
		if got := names("nope", store.Page{}); len(got) != 0 {
			t.Errorf("robots of a missing project = %v", got)
		}
		_, err := e.s.Robots(e.ctx, "", store.Page{N: -1})
		wantCode(t, err, apperr.EINVALID, "", "")
		ok(t, e.s.DeleteProject(e.ctx, "a"))
		if got, want := names("", store.Page{}), []string{"robot$b+two", "robot$sys"}; !slices.Equal(got, want) {
			t.Errorf("after deleting project a, robots = %v, want %v", got, want)
		}
	}},
}
