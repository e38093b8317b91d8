package storetest

import (
	"slices"
	"strconv"
	"testing"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

var groupTests = []test{
	{"set, replace, read", func(t *testing.T, e *env) {
		e.user("dir")
		e.user("other")
		got, err := e.s.UserGroups(e.ctx, "dir")
		ok(t, err)
		if len(got) != 0 {
			t.Fatalf("UserGroups of a user without groups = %v", got)
		}
		ok(t, e.s.SetUserGroups(e.ctx, "dir", []string{"devs", "Ops", "", "devs", "a b,c"}))
		ok(t, e.s.SetUserGroups(e.ctx, "other", []string{"qa"}))
		got, err = e.s.UserGroups(e.ctx, "dir")
		ok(t, err)
		if want := []string{"Ops", "a b,c", "devs"}; !slices.Equal(got, want) {
			t.Fatalf("UserGroups = %q, want %q (empty and duplicate names dropped, byte order)", got, want)
		}
		ok(t, e.s.SetUserGroups(e.ctx, "dir", []string{"ops"}))
		got, err = e.s.UserGroups(e.ctx, "dir")
		ok(t, err)
		if want := []string{"ops"}; !slices.Equal(got, want) {
			t.Fatalf("after replacing, UserGroups = %q, want %q", got, want)
		}
		ok(t, e.s.SetUserGroups(e.ctx, "dir", nil))
		got, err = e.s.UserGroups(e.ctx, "dir")
		ok(t, err)
		if len(got) != 0 {
			t.Fatalf("after clearing, UserGroups = %q", got)
		}
		if got, _ := e.s.UserGroups(e.ctx, "other"); !slices.Equal(got, []string{"qa"}) {
			t.Fatalf("another user's groups changed: %q", got)
		}
	}},
	{"unknown user", func(t *testing.T, e *env) {
		wantCode(t, e.s.SetUserGroups(e.ctx, "nobody", []string{"devs"}), apperr.ENOTFOUND, "", "nobody")
		got, err := e.s.UserGroups(e.ctx, "nobody")
		ok(t, err)
		if len(got) != 0 {
			t.Fatalf("UserGroups(nobody) = %q", got)
		}
	}},
	{"many groups", func(t *testing.T, e *env) {
		e.user("big")
		var groups []string
		for i := range 1234 {
			groups = append(groups, "g"+strconv.Itoa(10000+i))
		}
		ok(t, e.s.SetUserGroups(e.ctx, "big", groups))
		got, err := e.s.UserGroups(e.ctx, "big")
		ok(t, err)
		if !slices.Equal(got, groups) {
			t.Fatalf("UserGroups returned %d groups, want %d", len(got), len(groups))
		}
	}},
	{"deleted with the user", func(t *testing.T, e *env) {
		e.user("gone")
		ok(t, e.s.SetUserGroups(e.ctx, "gone", []string{"devs"}))
		ok(t, e.s.DeleteUser(e.ctx, "gone"))
		ok(t, e.s.CreateUser(e.ctx, &store.User{Name: "gone", Source: store.SourceLDAP}))
		got, err := e.s.UserGroups(e.ctx, "gone")
		ok(t, err)
		if len(got) != 0 {
			t.Fatalf("a new user of a deleted one's name inherited the groups %q", got)
		}
	}},
}
