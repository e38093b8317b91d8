package rbac

import (
	"strings"
)

// Markdown renders the permission table as the Markdown document
// docs/permissions.md (a test fails when the committed file differs; run
// `go test ./internal/rbac -update` to regenerate it).
func Markdown() string {
	var b strings.Builder
	b.WriteString(`# Permissions

<!-- Generated from internal/rbac (the table every permission check reads).
     Do not edit: run "go test ./internal/rbac -update". -->

customs decides every permission from one table in code (package ` + "`internal/rbac`" + `): the
registry and its token service, the JSON API, the CLI (which calls the API) and this page all read it.
The roles are Harbor's. A user is given a role in a project by a project admin
(` + "`customs project member add PROJECT USER --role developer`" + `).

- **System administrators** may do everything, in every project.
- **Public projects**: anyone, anonymous included, may do what the last column marks.
- **Robot accounts** may do exactly the actions listed in their permissions (` + "`customs robot create`" + `),
  in the projects listed (` + "`*`" + ` for all); nothing else.
- **Registry token scopes** map onto actions: ` + "`pull`" + ` is *pull*, ` + "`push`" + ` is *push*,
  ` + "`delete`" + ` is *delete-artifact*, and ` + "`*`" + ` is all three. A token request is granted only the
  actions its identity has (a request for more is granted less).

`)
	roles := Roles()
	b.WriteString("| Action | Description |")
	for _, r := range roles {
		b.WriteString(" " + roleTitles[r] + " |")
	}
	b.WriteString(" Public project |\n|---|---|")
	for range roles {
		b.WriteString(":-:|")
	}
	b.WriteString(":-:|\n")
	mark := func(ok bool) string {
		if ok {
			return " ✓ |"
		}
		return "   |"
	}
	for _, row := range table {
		b.WriteString("| `" + row.Action.String() + "` | " + row.Description + " |")
		for _, r := range roles {
			b.WriteString(mark(Allowed(r, row.Action)))
		}
		b.WriteString(mark(row.Public))
		b.WriteString("\n")
	}
	b.WriteString(`
## Revocation

Registry clients work with short-lived bearer tokens that carry the access granted when they were
issued. Removing a member, lowering a role, disabling a user or revoking a robot therefore takes
effect for the tokens already issued within the token lifetime (` + "`auth.tokenTTL`" + `, 5 minutes by
default); new tokens, Basic-authenticated registry requests and every API request see the change at
once (on other replicas within a few seconds, the lifetime of their permission cache).
`)
	return b.String()
}
