package storetest

import (
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

var projectTests = []test{
	{"create and get", func(t *testing.T, e *env) {
		p := &store.Project{Name: "library", Public: true}
		ok(t, e.s.CreateProject(e.ctx, p))
		if p.ID == 0 {
			t.Error("CreateProject did not set ID")
		}
		sameTime(t, "CreatedAt", p.CreatedAt, t0)
		got, err := e.s.Project(e.ctx, "library")
		ok(t, err)
		if got.ID != p.ID || got.Name != "library" || !got.Public {
			t.Errorf("Project = %+v, want %+v", got, p)
		}
		sameTime(t, "stored CreatedAt", got.CreatedAt, t0)

		q := &store.Project{Name: "other"}
		ok(t, e.s.CreateProject(e.ctx, q))
		if q.ID == p.ID {
			t.Errorf("two projects share ID %d", q.ID)
		}
		if got, _ := e.s.Project(e.ctx, "other"); got == nil || got.Public {
			t.Errorf("Project(other) = %+v, want private", got)
		}
	}},
	{"duplicate name conflicts", func(t *testing.T, e *env) {
		e.project("dup")
		err := e.s.CreateProject(e.ctx, &store.Project{Name: "dup", Public: true})
		wantCode(t, err, apperr.ECONFLICT, "", "dup")
		got, err := e.s.Project(e.ctx, "dup")
		ok(t, err)
		if got.Public {
			t.Error("the refused duplicate changed the existing project")
		}
	}},
	{"names are case-sensitive", func(t *testing.T, e *env) {
		e.project("proj")
		_, err := e.s.Project(e.ctx, "Proj")
		wantCode(t, err, apperr.ENOTFOUND, "", "Proj")
		ok(t, e.s.CreateProject(e.ctx, &store.Project{Name: "Proj"}))
	}},
	{"missing project", func(t *testing.T, e *env) {
		_, err := e.s.Project(e.ctx, "nope")
		wantCode(t, err, apperr.ENOTFOUND, "", "nope")
		err = e.s.UpdateProject(e.ctx, &store.Project{Name: "nope", Public: true})
		wantCode(t, err, apperr.ENOTFOUND, "", "nope")
		err = e.s.DeleteProject(e.ctx, "nope")
		wantCode(t, err, apperr.ENOTFOUND, "", "nope")
	}},
	{"update", func(t *testing.T, e *env) {
		p := e.project("proj")
		for _, public := range []bool{true, false} {
			p.Public = public
			ok(t, e.s.UpdateProject(e.ctx, p))
			got, err := e.s.Project(e.ctx, "proj")
			ok(t, err)
			if got.Public != public {
				t.Errorf("after UpdateProject(Public=%v), Public = %v", public, got.Public)
			}
		}
	}},
	{"list pages in byte order", func(t *testing.T, e *env) {
		for _, n := range shuffled(byteOrdered) {
			e.project(n)
		}
		checkPages(t, byteOrdered, func(p store.Page) ([]string, error) {
			ps, err := e.s.Projects(e.ctx, p)
			var names []string
			for _, p := range ps {
				names = append(names, p.Name)
			}
			return names, err
		})
	}},
	{"list empty", func(t *testing.T, e *env) {
		ps, err := e.s.Projects(e.ctx, store.Page{})
		ok(t, err)
		if len(ps) != 0 {
			t.Errorf("Projects = %v, want none", ps)
		}
	}},
	{"delete refused while repositories exist", func(t *testing.T, e *env) {
		e.project("full")
		e.blob("full/app", "layer")
		err := e.s.DeleteProject(e.ctx, "full")
		wantCode(t, err, apperr.ECONFLICT, "", "full")
		if _, err := e.s.Project(e.ctx, "full"); err != nil {
			t.Errorf("refused delete removed the project: %v", err)
		}
		if _, err := e.s.Repository(e.ctx, "full/app"); err != nil {
			t.Errorf("refused delete removed the repository: %v", err)
		}
	}},
	{"delete empty project", func(t *testing.T, e *env) {
		e.project("empty")
		e.project("kept")
		ok(t, e.s.DeleteProject(e.ctx, "empty"))
		_, err := e.s.Project(e.ctx, "empty")
		wantCode(t, err, apperr.ENOTFOUND, "", "")
		if _, err := e.s.Project(e.ctx, "kept"); err != nil {
			t.Errorf("deleting one project removed another: %v", err)
		}
		err = e.s.DeleteProject(e.ctx, "empty")
		wantCode(t, err, apperr.ENOTFOUND, "", "")
		// The name is free again.
		e.clk.Advance(time.Second)
		p := e.project("empty")
		sameTime(t, "recreated CreatedAt", p.CreatedAt, t0.Add(time.Second))
	}},
}

var userTests = []test{
	{"create and get", func(t *testing.T, e *env) {
		u := &store.User{Name: "alice", PasswordHash: "$argon2id$x", Admin: true}
		ok(t, e.s.CreateUser(e.ctx, u))
		if u.ID == 0 {
			t.Error("CreateUser did not set ID")
		}
		sameTime(t, "CreatedAt", u.CreatedAt, t0)
		got, err := e.s.User(e.ctx, "alice")
		ok(t, err)
		if got.ID != u.ID || got.PasswordHash != "$argon2id$x" || !got.Admin || got.Disabled {
			t.Errorf("User = %+v, want %+v", got, u)
		}
		sameTime(t, "stored CreatedAt", got.CreatedAt, t0)
	}},
	{"duplicate name conflicts", func(t *testing.T, e *env) {
		ok(t, e.s.CreateUser(e.ctx, &store.User{Name: "bob", PasswordHash: "h1"}))
		err := e.s.CreateUser(e.ctx, &store.User{Name: "bob", PasswordHash: "h2"})
		wantCode(t, err, apperr.ECONFLICT, "", "bob")
		got, err := e.s.User(e.ctx, "bob")
		ok(t, err)
		if got.PasswordHash != "h1" {
			t.Error("the refused duplicate changed the existing user")
		}
		ok(t, e.s.CreateUser(e.ctx, &store.User{Name: "Bob", PasswordHash: "h3"}))
	}},
	{"missing user", func(t *testing.T, e *env) {
		_, err := e.s.User(e.ctx, "ghost")
		wantCode(t, err, apperr.ENOTFOUND, "", "ghost")
		err = e.s.UpdateUser(e.ctx, &store.User{Name: "ghost"})
		wantCode(t, err, apperr.ENOTFOUND, "", "ghost")
	}},
	{"update", func(t *testing.T, e *env) {
		u := &store.User{Name: "carol", PasswordHash: "old"}
		ok(t, e.s.CreateUser(e.ctx, u))
		ok(t, e.s.CreateUser(e.ctx, &store.User{Name: "dave", PasswordHash: "dave's"}))
		u.PasswordHash, u.Admin, u.Disabled = "new", true, true
		ok(t, e.s.UpdateUser(e.ctx, u))
		got, err := e.s.User(e.ctx, "carol")
		ok(t, err)
		if got.PasswordHash != "new" || !got.Admin || !got.Disabled {
			t.Errorf("after UpdateUser, User = %+v", got)
		}
		other, err := e.s.User(e.ctx, "dave")
		ok(t, err)
		if other.PasswordHash != "dave's" || other.Admin || other.Disabled {
			t.Errorf("UpdateUser changed another user: %+v", other)
		}
	}},
	{"list pages in byte order", func(t *testing.T, e *env) {
		for _, n := range shuffled(byteOrdered) {
			ok(t, e.s.CreateUser(e.ctx, &store.User{Name: n, PasswordHash: "h"}))
		}
		checkPages(t, byteOrdered, func(p store.Page) ([]string, error) {
			us, err := e.s.Users(e.ctx, p)
			var names []string
			for _, u := range us {
				names = append(names, u.Name)
			}
			return names, err
		})
	}},
}
