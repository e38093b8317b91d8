package rbac

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/permissions.md from the table")

// docPath is the rendered table, relative to this package.
var docPath = filepath.Join("..", "..", "docs", "permissions.md")

func TestDocsUpToDate(t *testing.T) {
	want := Markdown()
	if *update {
		if err := os.MkdirAll(filepath.Dir(docPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(docPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/rbac -update)", err)
	}
	if string(got) != want {
		t.Fatalf("%s is stale: run go test ./internal/rbac -update", docPath)
	}
}

func TestTableCoversEveryActionOnce(t *testing.T) {
	seen := map[Action]bool{}
	for _, row := range table {
		if !row.Action.Valid() {
			t.Errorf("invalid action %d in table", row.Action)
		}
		if seen[row.Action] {
			t.Errorf("action %s appears twice", row.Action)
		}
		seen[row.Action] = true
		if row.Description == "" {
			t.Errorf("action %s has no description", row.Action)
		}
	}
	for a := Action(1); a < numActions; a++ {
		if !seen[a] {
			t.Errorf("action %s missing from the table", a)
		}
	}
	if len(Actions()) != int(numActions)-1 {
		t.Errorf("Actions() has %d entries, want %d", len(Actions()), numActions-1)
	}
}

// TestHarborMatrix pins the decisions taken from Harbor's documented
// matrix, so that a change to the table is a deliberate one.
func TestHarborMatrix(t *testing.T) {
	const (
		PA = 1 << iota
		M
		D
		G
		LG
	)
	cols := map[Role]int{RoleProjectAdmin: PA, RoleMaintainer: M, RoleDeveloper: D, RoleGuest: G, RoleLimitedGuest: LG}
	cases := []struct {
		action Action
		roles  int
		public bool
	}{
		{ActionReadProject, PA | M | D | G | LG, true},
		{ActionPull, PA | M | D | G | LG, true},
		{ActionPush, PA | M | D, false},
		{ActionDeleteArtifact, PA | M, false},
		{ActionDeleteRepository, PA | M, false},
		{ActionReadScan, PA | M | D | G | LG, true},
		{ActionScan, PA | M, false},
		{ActionListMembers, PA | M | D | G, false},
		{ActionManageMembers, PA, false},
		{ActionListRobots, PA | M, false},
		{ActionManageRobots, PA, false},
		{ActionManageAllowlist, PA, false},
		{ActionManageSettings, PA, false},
		{ActionReadAudit, PA | M | D | G, false},
		{ActionDeleteProject, PA, false},
	}
	if len(cases) != len(table) {
		t.Fatalf("%d cases for %d table rows", len(cases), len(table))
	}
	for _, c := range cases {
		t.Run(c.action.String(), func(t *testing.T) {
			for r, bit := range cols {
				if got, want := Allowed(r, c.action), c.roles&bit != 0; got != want {
					t.Errorf("Allowed(%s, %s) = %v, want %v", r, c.action, got, want)
				}
			}
			if got := Public().Has(c.action); got != c.public {
				t.Errorf("Public().Has(%s) = %v, want %v", c.action, got, c.public)
			}
		})
	}
}

func TestRolesAreOrderedByPrivilege(t *testing.T) {
	rs := Roles()
	for i := 1; i < len(rs); i++ {
		hi, lo := Permissions(rs[i-1]), Permissions(rs[i])
		if hi&lo != lo || hi == lo {
			t.Errorf("%s (%v) is not strictly more privileged than %s (%v)", rs[i-1], hi.Strings(), rs[i], lo.Strings())
		}
	}
	if Permissions(RoleProjectAdmin) != All {
		t.Errorf("project admins may do %v, want everything", Permissions(RoleProjectAdmin).Strings())
	}
	if Permissions(0) != 0 || Permissions(99) != 0 || Allowed(99, ActionPull) {
		t.Error("an invalid role has permissions")
	}
}

func TestParseRole(t *testing.T) {
	cases := []struct {
		in   string
		want Role
		err  bool
	}{
		{"project-admin", RoleProjectAdmin, false},
		{"projectAdmin", RoleProjectAdmin, false},
		{"ProjectAdmin", RoleProjectAdmin, false},
		{"maintainer", RoleMaintainer, false},
		{"master", RoleMaintainer, false},
		{"developer", RoleDeveloper, false},
		{"Developer", RoleDeveloper, false},
		{"guest", RoleGuest, false},
		{"limited-guest", RoleLimitedGuest, false},
		{"limitedGuest", RoleLimitedGuest, false},
		{"limited_guest", RoleLimitedGuest, false},
		{"admin", 0, true},
		{"", 0, true},
		{"owner", 0, true},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseRole(c.in)
			if (err != nil) != c.err || got != c.want {
				t.Fatalf("ParseRole(%q) = %v, %v", c.in, got, err)
			}
			if err != nil && !strings.Contains(err.Error(), "limited-guest") {
				t.Errorf("error %q does not list the roles", err)
			}
			if err == nil {
				if back, _ := ParseRole(got.String()); back != got {
					t.Errorf("String() %q does not parse back", got.String())
				}
			}
		})
	}
}

func TestActionsAndSets(t *testing.T) {
	for _, a := range Actions() {
		got, err := ParseAction(a.String())
		if err != nil || got != a {
			t.Errorf("ParseAction(%q) = %v, %v", a.String(), got, err)
		}
	}
	if _, err := ParseAction("Pull"); err == nil {
		t.Error("ParseAction is case-insensitive")
	}
	s, err := ParseSet([]string{"push", "pull", "push"})
	if err != nil || s != SetOf(ActionPull, ActionPush) {
		t.Fatalf("ParseSet = %v, %v", s, err)
	}
	if got := s.Strings(); strings.Join(got, ",") != "pull,push" {
		t.Errorf("Strings() = %v, want table order pull,push", got)
	}
	if _, err := ParseSet([]string{"pull", "fly"}); err == nil || !strings.Contains(err.Error(), "fly") {
		t.Errorf("ParseSet with an unknown action: %v", err)
	}
	if All.Has(0) || All.Has(numActions) || len(All.Actions()) != int(numActions)-1 {
		t.Errorf("All = %v", All.Strings())
	}
}

func TestJSON(t *testing.T) {
	type doc struct {
		Role    Role     `json:"role"`
		Actions []Action `json:"actions"`
	}
	b, err := json.Marshal(doc{RoleLimitedGuest, []Action{ActionPull, ActionReadScan}})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"role":"limited-guest","actions":["pull","read-scan"]}` {
		t.Fatalf("marshal: %s", b)
	}
	var d doc
	if err := json.Unmarshal(b, &d); err != nil || d.Role != RoleLimitedGuest || len(d.Actions) != 2 {
		t.Fatalf("unmarshal: %+v, %v", d, err)
	}
	if err := json.Unmarshal([]byte(`{"role":"boss"}`), &d); err == nil {
		t.Fatal("unknown role accepted")
	}
	if _, err := json.Marshal(doc{Role: 0}); err == nil {
		t.Fatal("invalid role marshalled")
	}
}

func FuzzParseRoleAndAction(f *testing.F) {
	for _, s := range []string{"developer", "limited-guest", "Limited_Guest", "projectAdmin", "pull", "delete-artifact", "", "\x00", "admin"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if r, err := ParseRole(s); err == nil {
			if !r.Valid() {
				t.Fatalf("ParseRole(%q) = invalid role %d", s, r)
			}
			if back, err := ParseRole(r.String()); err != nil || back != r {
				t.Fatalf("role %s does not round-trip", r)
			}
		}
		if a, err := ParseAction(s); err == nil {
			if !a.Valid() || a.String() != s {
				t.Fatalf("ParseAction(%q) = %v", s, a)
			}
		}
	})
}
