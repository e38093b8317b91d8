package apiclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/rbac"
)

func userPath(name string) string    { return "/api/v1/users/" + url.PathEscape(name) }
func robotPath(name string) string   { return "/api/v1/robots/" + url.PathEscape(name) }
func projectPath(name string) string { return "/api/v1/projects/" + url.PathEscape(name) }

// Me returns who the client is logged in as.
func (c *Client) Me(ctx context.Context) (api.Me, error) {
	var me api.Me
	err := c.do(ctx, http.MethodGet, "/api/v1/users/me", nil, &me)
	return me, err
}

// Users lists every user (administrators only).
func (c *Client) Users(ctx context.Context) ([]api.User, error) {
	var out struct {
		Users []api.User `json:"users"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/users", nil, &out)
	return out.Users, err
}

// User returns one user (administrators, or the user themself).
func (c *Client) User(ctx context.Context, name string) (api.User, error) {
	var u api.User
	err := c.do(ctx, http.MethodGet, userPath(name), nil, &u)
	return u, err
}

// CreateUser creates a local user (administrators only).
func (c *Client) CreateUser(ctx context.Context, req api.CreateUserRequest) (api.User, error) {
	var u api.User
	err := c.do(ctx, http.MethodPost, "/api/v1/users", req, &u)
	return u, err
}

// UpdateUser changes a user's administrator and disabled flags
// (administrators only); nil fields are left unchanged.
func (c *Client) UpdateUser(ctx context.Context, name string, req api.UpdateUserRequest) (api.User, error) {
	var u api.User
	err := c.do(ctx, http.MethodPatch, userPath(name), req, &u)
	return u, err
}

// DeleteUser deletes a user and their memberships (administrators only).
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, userPath(name), nil, nil)
}

// ChangePassword sets a user's password: users changing their own give
// their old password; administrators may set anyone's without it.
func (c *Client) ChangePassword(ctx context.Context, name, oldPassword, newPassword string) error {
	return c.do(ctx, http.MethodPut, userPath(name)+"/password",
		api.ChangePasswordRequest{OldPassword: oldPassword, NewPassword: newPassword}, nil)
}

// EndUserSessions logs user name out everywhere: every login session and
// refresh token of theirs issued before stops working (administrators for
// anyone, users for themselves). "" means the caller.
func (c *Client) EndUserSessions(ctx context.Context, name string) error {
	path := "/api/v1/users/me/sessions"
	if name != "" {
		path = userPath(name) + "/sessions"
	}
	return c.do(ctx, http.MethodDelete, path, nil, nil)
}

// Members lists a project's members.
func (c *Client) Members(ctx context.Context, project string) ([]api.Member, error) {
	var out struct {
		Members []api.Member `json:"members"`
	}
	err := c.do(ctx, http.MethodGet, projectPath(project)+"/members", nil, &out)
	return out.Members, err
}

// AddMember gives a user (kind "user" or "") or a directory group (kind
// "group") a role in a project.
func (c *Client) AddMember(ctx context.Context, project, kind, name string, role rbac.Role) (api.Member, error) {
	var m api.Member
	err := c.do(ctx, http.MethodPost, projectPath(project)+"/members", api.AddMemberRequest{Kind: kind, Name: name, Role: role}, &m)
	return m, err
}

// memberPath is the path of a member, with ?kind=group for groups.
func memberPath(project, kind, name string) string {
	p := projectPath(project) + "/members/" + url.PathEscape(name)
	if kind != "" {
		p += "?kind=" + url.QueryEscape(kind)
	}
	return p
}

// SetMemberRole changes a member's role.
func (c *Client) SetMemberRole(ctx context.Context, project, kind, name string, role rbac.Role) (api.Member, error) {
	var m api.Member
	err := c.do(ctx, http.MethodPatch, memberPath(project, kind, name), api.UpdateMemberRequest{Role: role}, &m)
	return m, err
}

// RemoveMember removes a member from a project.
func (c *Client) RemoveMember(ctx context.Context, project, kind, name string) error {
	return c.do(ctx, http.MethodDelete, memberPath(project, kind, name), nil, nil)
}

// Robots lists a project's robots, or every robot when project is ""
// (administrators only).
func (c *Client) Robots(ctx context.Context, project string) ([]api.Robot, error) {
	var out struct {
		Robots []api.Robot `json:"robots"`
	}
	path := "/api/v1/robots"
	if project != "" {
		path = projectPath(project) + "/robots"
	}
	err := c.do(ctx, http.MethodGet, path, nil, &out)
	return out.Robots, err
}

// CreateRobot creates a project robot (project set, req.Actions) or a
// system robot (project "", req.Permissions). The answer carries the
// secret, shown this once.
func (c *Client) CreateRobot(ctx context.Context, project string, req api.CreateRobotRequest) (api.Robot, error) {
	var rb api.Robot
	path := "/api/v1/robots"
	if project != "" {
		path = projectPath(project) + "/robots"
	}
	err := c.do(ctx, http.MethodPost, path, req, &rb)
	return rb, err
}

// Robot returns one robot account.
func (c *Client) Robot(ctx context.Context, name string) (api.Robot, error) {
	var rb api.Robot
	err := c.do(ctx, http.MethodGet, robotPath(name), nil, &rb)
	return rb, err
}

// UpdateRobot changes a robot account.
func (c *Client) UpdateRobot(ctx context.Context, name string, req api.UpdateRobotRequest) (api.Robot, error) {
	var rb api.Robot
	err := c.do(ctx, http.MethodPatch, robotPath(name), req, &rb)
	return rb, err
}

// RotateRobot gives a robot a new secret (returned, shown this once); the
// old one stops working at once.
func (c *Client) RotateRobot(ctx context.Context, name string) (api.Robot, error) {
	var rb api.Robot
	err := c.do(ctx, http.MethodPost, robotPath(name)+"/rotate", nil, &rb)
	return rb, err
}

// DeleteRobot deletes a robot account.
func (c *Client) DeleteRobot(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, robotPath(name), nil, nil)
}

// Permissions returns what the caller may do in a project.
func (c *Client) Permissions(ctx context.Context, project string) (api.Permissions, error) {
	var out api.Permissions
	err := c.do(ctx, http.MethodGet, projectPath(project)+"/permissions", nil, &out)
	return out, err
}
