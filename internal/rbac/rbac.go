// Package rbac is customs' permission table: which project role may perform
// which action on a project. It is the one place permissions are written
// down; the registry's token service, the JSON API, the CLI (through the
// API) and the documentation (docs/permissions.md, rendered by Markdown) all
// read it.
//
// The roles and the matrix follow Harbor's documented "User Permissions By
// Role". System administrators may do everything; anyone, anonymous included,
// may perform the Public actions on a public project; robot accounts may
// perform exactly the actions listed in their permissions.
package rbac

import (
	"fmt"
	"math/bits"
	"strings"
)

// Role is a project role, from the most to the least privileged.
type Role uint8

// Project roles.
const (
	RoleProjectAdmin Role = iota + 1 // everything in the project, members and robots included
	RoleMaintainer                   // developer, plus deleting, scanning and seeing robots
	RoleDeveloper                    // read and write (push)
	RoleGuest                        // read-only, members and logs included
	RoleLimitedGuest                 // pull and read scan reports only
)

// roleNames are the roles' names, as the API, the CLI and the store spell them.
var roleNames = [...]string{
	RoleProjectAdmin: "project-admin",
	RoleMaintainer:   "maintainer",
	RoleDeveloper:    "developer",
	RoleGuest:        "guest",
	RoleLimitedGuest: "limited-guest",
}

// roleTitles are the roles' names in prose (documentation column headings).
var roleTitles = [...]string{
	RoleProjectAdmin: "Project admin",
	RoleMaintainer:   "Maintainer",
	RoleDeveloper:    "Developer",
	RoleGuest:        "Guest",
	RoleLimitedGuest: "Limited guest",
}

// Roles returns every role, most privileged first.
func Roles() []Role {
	return []Role{RoleProjectAdmin, RoleMaintainer, RoleDeveloper, RoleGuest, RoleLimitedGuest}
}

// String returns the role's name ("developer"), or "role(N)" for an invalid role.
func (r Role) String() string {
	if r.Valid() {
		return roleNames[r]
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool { return r >= RoleProjectAdmin && r <= RoleLimitedGuest }

// MarshalText implements encoding.TextMarshaler (the role's name).
func (r Role) MarshalText() ([]byte, error) {
	if !r.Valid() {
		return nil, fmt.Errorf("invalid role %d", uint8(r))
	}
	return []byte(r.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseRole.
func (r *Role) UnmarshalText(b []byte) error {
	v, err := ParseRole(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// ParseRole returns the role named s. It accepts the canonical names
// ("limited-guest") and, case-insensitively, Harbor's spellings
// ("limitedGuest", "projectAdmin", "ProjectAdmin", "master"). Anything else is
// an error listing the roles.
func ParseRole(s string) (Role, error) {
	k := strings.ToLower(strings.NewReplacer("-", "", "_", "", " ", "").Replace(s))
	switch k {
	case "projectadmin":
		return RoleProjectAdmin, nil
	case "maintainer", "master":
		return RoleMaintainer, nil
	case "developer":
		return RoleDeveloper, nil
	case "guest":
		return RoleGuest, nil
	case "limitedguest":
		return RoleLimitedGuest, nil
	}
	return 0, fmt.Errorf("unknown role %q (want one of %s)", s, strings.Join(roleNames[1:], ", "))
}

// Action is something a principal does to a project or its content.
type Action uint8

// Actions. Registry token scopes map onto them: "pull" is ActionPull, "push"
// is ActionPush and "delete" is ActionDeleteArtifact.
const (
	ActionReadProject      Action     = iota + 1 // see the project, its settings and repositories
	ActionPull                                   // pull images
	ActionPush                                   // push images (create repositories and tags)
	ActionDeleteArtifact                         // delete manifests, tags and blobs
	ActionDeleteRepository                       // delete a whole repository
	ActionReadScan                               // read vulnerability scan reports and SBOMs
	ActionScan                                   // start a scan
	ActionListMembers                            // see the project's members
	ActionManageMembers                          // add, change and remove members
	ActionListRobots                             // see the project's robot accounts
	ActionManageRobots                           // create, rotate, disable and delete project robots
	ActionManageAllowlist                        // change the project's CVE allowlist
	ActionManageSettings                         // change project settings and policies
	ActionReadAudit                              // read the project's audit log
	ActionDeleteProject                          // delete the project
	numActions             = iota + 1            // one more than the last action
)

// actionNames are the actions' names, as the API, the CLI and robot
// permissions spell them.
var actionNames = [...]string{
	ActionReadProject:      "read-project",
	ActionPull:             "pull",
	ActionPush:             "push",
	ActionDeleteArtifact:   "delete-artifact",
	ActionDeleteRepository: "delete-repository",
	ActionReadScan:         "read-scan",
	ActionScan:             "scan",
	ActionListMembers:      "list-members",
	ActionManageMembers:    "manage-members",
	ActionListRobots:       "list-robots",
	ActionManageRobots:     "manage-robots",
	ActionManageAllowlist:  "manage-allowlist",
	ActionManageSettings:   "manage-settings",
	ActionReadAudit:        "read-audit",
	ActionDeleteProject:    "delete-project",
}

// actionByName inverts actionNames.
var actionByName = func() map[string]Action {
	m := make(map[string]Action, numActions)
	for a := Action(1); a < numActions; a++ {
		m[actionNames[a]] = a
	}
	return m
}()

// Actions returns every action, in table order.
func Actions() []Action {
	out := make([]Action, 0, numActions-1)
	for _, row := range table {
		out = append(out, row.Action)
	}
	return out
}

// String returns the action's name ("delete-artifact"), or "action(N)".
func (a Action) String() string {
	if a.Valid() {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Valid reports whether a is one of the defined actions.
func (a Action) Valid() bool { return a >= 1 && a < numActions }

// MarshalText implements encoding.TextMarshaler (the action's name).
func (a Action) MarshalText() ([]byte, error) {
	if !a.Valid() {
		return nil, fmt.Errorf("invalid action %d", uint8(a))
	}
	return []byte(a.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseAction.
func (a *Action) UnmarshalText(b []byte) error {
	v, err := ParseAction(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// ParseAction returns the action named s (exactly, e.g. "pull",
// "delete-artifact"), or an error listing the actions.
func ParseAction(s string) (Action, error) {
	if a, ok := actionByName[s]; ok {
		return a, nil
	}
	return 0, fmt.Errorf("unknown action %q (want one of %s)", s, strings.Join(actionNames[1:], ", "))
}

// Set is a set of actions.
type Set uint32

// SetOf returns the set holding actions.
func SetOf(actions ...Action) Set {
	var s Set
	for _, a := range actions {
		if a.Valid() {
			s |= 1 << a
		}
	}
	return s
}

// All is the set of every action: what a system administrator may do.
const All = Set((1<<numActions - 1) &^ 1)

// Has reports whether a is in s.
func (s Set) Has(a Action) bool { return a.Valid() && s&(1<<a) != 0 }

// Actions returns s's actions in table order.
func (s Set) Actions() []Action {
	out := make([]Action, 0, bits.OnesCount32(uint32(s)))
	for _, a := range Actions() {
		if s.Has(a) {
			out = append(out, a)
		}
	}
	return out
}

// Strings returns the names of s's actions in table order.
func (s Set) Strings() []string {
	acts := s.Actions()
	out := make([]string, len(acts))
	for i, a := range acts {
		out[i] = a.String()
	}
	return out
}

// ParseSet parses action names into a set; any unknown name is an error.
func ParseSet(names []string) (Set, error) {
	var s Set
	for _, n := range names {
		a, err := ParseAction(n)
		if err != nil {
			return 0, err
		}
		s |= SetOf(a)
	}
	return s, nil
}

// Row is one action of the table: who may perform it.
type Row struct {
	Action Action
	// Description says what the action covers, for the documentation.
	Description string
	// Roles are the project roles allowed to perform it.
	Roles []Role
	// Public is true when anyone, anonymous included, may perform it on a
	// public project.
	Public bool
}

// Role groups used by the table.
var (
	everyone  = []Role{RoleProjectAdmin, RoleMaintainer, RoleDeveloper, RoleGuest, RoleLimitedGuest}
	guests    = []Role{RoleProjectAdmin, RoleMaintainer, RoleDeveloper, RoleGuest}
	writers   = []Role{RoleProjectAdmin, RoleMaintainer, RoleDeveloper}
	operators = []Role{RoleProjectAdmin, RoleMaintainer}
	admins    = []Role{RoleProjectAdmin}
)

// table is the permission table. Every action appears exactly once (a test
// checks it); the order is the documentation's.
var table = []Row{
	{ActionReadProject, "See the project, its settings, repositories and CVE allowlist", everyone, true},
	{ActionPull, "Pull images (registry scope `pull`)", everyone, true},
	{ActionPush, "Push images, creating repositories and tags (registry scope `push`)", writers, false},
	{ActionDeleteArtifact, "Delete manifests, tags and blobs (registry scope `delete`)", operators, false},
	{ActionDeleteRepository, "Delete a whole repository with its tags and manifests (`customs repo delete`)", operators, false},
	{ActionReadScan, "Read vulnerability scan reports and SBOMs", everyone, true},
	{ActionScan, "Start a vulnerability scan", operators, false},
	{ActionListMembers, "See the project's members", guests, false},
	{ActionManageMembers, "Add, change and remove project members", admins, false},
	{ActionListRobots, "See the project's robot accounts", operators, false},
	{ActionManageRobots, "Create, rotate, disable and delete project robot accounts", admins, false},
	{ActionManageAllowlist, "Change the project's CVE allowlist", admins, false},
	{ActionManageSettings, "Change project settings (visibility) and policies", admins, false},
	{ActionReadAudit, "Read the project's audit log", guests, false},
	{ActionDeleteProject, "Delete the project", admins, false},
}

// Table returns a copy of the permission table.
func Table() []Row {
	out := make([]Row, len(table))
	for i, r := range table {
		r.Roles = append([]Role(nil), r.Roles...)
		out[i] = r
	}
	return out
}

// roleSets[r] is the set of actions role r may perform; public is the set of
// the table's Public actions. Both are derived from table once.
var roleSets, public = func() ([RoleLimitedGuest + 1]Set, Set) {
	var rs [RoleLimitedGuest + 1]Set
	var pub Set
	for _, row := range table {
		for _, r := range row.Roles {
			rs[r] |= SetOf(row.Action)
		}
		if row.Public {
			pub |= SetOf(row.Action)
		}
	}
	return rs, pub
}()

// Permissions returns the set of actions role r may perform (empty for an
// invalid role).
func Permissions(r Role) Set {
	if !r.Valid() {
		return 0
	}
	return roleSets[r]
}

// Allowed reports whether role r may perform action a.
func Allowed(r Role, a Action) bool { return Permissions(r).Has(a) }

// Public returns the actions anyone may perform on a public project.
func Public() Set { return public }
