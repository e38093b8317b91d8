package auth

// Kind says what sort of identity a Principal is.
type Kind string

// Principal kinds.
const (
	KindAnonymous Kind = "anonymous" // no credentials
	KindUser      Kind = "user"      // a person with a password (local, LDAP, OIDC)
	KindRobot     Kind = "robot"     // a robot account (issue 3)
	KindSystem    Kind = "system"    // customs itself (replication, scheduled jobs)
)

// Registry actions, as they appear in Docker token scopes.
const (
	ActionPull   = "pull"
	ActionPush   = "push"
	ActionDelete = "delete"
	ActionAll    = "*"
)

// Resource types, as they appear in Docker token scopes.
const (
	TypeRepository = "repository"
	TypeRegistry   = "registry" // name "catalog", action "*"
)

// Access is one scope: actions on a named resource of a type, as in
// "repository:proj/app:pull,push".
type Access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// Principal is who made a request.
type Principal struct {
	Kind  Kind
	Name  string // "" for anonymous
	Admin bool   // system administrator: every action on every resource
	// Token is true when the principal was authenticated by a bearer token;
	// then Granted holds exactly what the token allows and nothing else is
	// permitted, whatever the principal's roles are now.
	Token   bool
	Granted []Access
}

// Anonymous is the principal of a request without credentials.
var Anonymous = Principal{Kind: KindAnonymous}
