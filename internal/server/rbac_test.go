package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/config"
	"github.com/customs-dev/customs/internal/rbac"
	"github.com/customs-dev/customs/internal/store"
)

// syncBuffer is a concurrency-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// rbacEnv is a running server whose logs (debug level) are kept, with
// private projects proj and other and public project pub, each holding
// <project>/app:v1, and a user per role in proj.
type rbacEnv struct {
	t     *testing.T
	addr  string
	srv   *Server
	logs  *syncBuffer
	admin *apiclient.Client
	// secrets are every password and robot secret handed out, to look for
	// in logs and answers.
	secrets sync.Map
	seq     atomic.Int64
}

func newRBACEnv(t *testing.T, mutate func(*config.Config)) *rbacEnv {
	t.Helper()
	logs := &syncBuffer{}
	addr, srv := startServerLogging(t, mutate, logs, slog.LevelDebug)
	ctx := context.Background()
	e := &rbacEnv{t: t, addr: addr, srv: srv, logs: logs}
	e.admin = &apiclient.Client{BaseURL: e.url(), Username: "admin", Password: adminPassword}
	e.secrets.Store(adminPassword, "admin password")
	for _, p := range []struct {
		name   string
		public bool
	}{{"proj", false}, {"other", false}, {"pub", true}} {
		if _, err := e.admin.CreateProject(ctx, p.name, p.public); err != nil {
			t.Fatal(err)
		}
		e.push(actor{name: "admin", secret: adminPassword}, p.name+"/app:v1")
	}
	for _, r := range rbac.Roles() {
		e.user(r.String(), "proj", r)
	}
	return e
}

func (e *rbacEnv) url() string { return "http://" + e.addr }

// actor is who makes a request: a user or robot with a secret, or
// anonymous (name "").
type actor struct{ name, secret string }

var anonymous = actor{}

func (a actor) String() string {
	if a.name == "" {
		return "anonymous"
	}
	return a.name
}

func (e *rbacEnv) client(a actor) *apiclient.Client {
	return &apiclient.Client{BaseURL: e.url(), Username: a.name, Password: a.secret}
}

// remoteOpts are go-containerregistry options acting as a, without
// retries (a refusal is an answer, not a flake).
func (e *rbacEnv) remoteOpts(a actor) []remote.Option {
	var auth authn.Authenticator = authn.Anonymous
	if a.name != "" {
		auth = &authn.Basic{Username: a.name, Password: a.secret}
	}
	return []remote.Option{remote.WithAuth(auth), remote.WithRetryStatusCodes(),
		remote.WithRetryPredicate(func(error) bool { return false })}
}

// user creates a user with a fresh password, member of project with role
// when role is valid.
func (e *rbacEnv) user(userName, project string, role rbac.Role) actor {
	e.t.Helper()
	pw := fmt.Sprintf("pw-%s-%d-secret", userName, e.seq.Add(1))
	e.secrets.Store(pw, "password of "+userName)
	ctx := context.Background()
	if _, err := e.admin.CreateUser(ctx, api.CreateUserRequest{Name: userName, Password: pw}); err != nil {
		e.t.Fatal(err)
	}
	if role.Valid() {
		if _, err := e.admin.AddMember(ctx, project, "", userName, role); err != nil {
			e.t.Fatal(err)
		}
	}
	return actor{name: userName, secret: pw}
}

// robot creates a project robot of project with actions.
func (e *rbacEnv) robot(project, short string, actions ...rbac.Action) actor {
	e.t.Helper()
	rb, err := e.admin.CreateRobot(context.Background(), project, api.CreateRobotRequest{Name: short, Actions: actions})
	if err != nil {
		e.t.Fatal(err)
	}
	e.secrets.Store(rb.Secret, "secret of "+rb.Name)
	return actor{name: rb.Name, secret: rb.Secret}
}

// push writes a random image to ref (repo:tag) as a and returns its digest
// reference.
func (e *rbacEnv) push(a actor, ref string) (name.Digest, error) {
	img, err := random.Image(256, 1)
	if err != nil {
		e.t.Fatal(err)
	}
	tag, err := name.NewTag(e.addr+"/"+ref, name.Insecure)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := remote.Write(tag, img, e.remoteOpts(a)...); err != nil {
		return name.Digest{}, err
	}
	d, _ := img.Digest()
	return tag.Context().Digest(d.String()), nil
}

// denied classifies the outcome of a request: nil is allowed; an
// authorization refusal (401, 403, 404 for what the caller may not see, or
// 429 once failed logins of a refused account trip the login limiter) is
// denied; anything else is a test failure.
func denied(err error) (bool, error) {
	if err == nil {
		return false, nil
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests:
			return true, nil
		}
		return false, err
	}
	switch apperr.Code(err) {
	case apperr.EUNAUTHORIZED, apperr.EDENIED, apperr.ENOTFOUND:
		return true, nil
	case apperr.EUNAVAILABLE:
		if apperr.RetryAfter(err) > 0 {
			return true, nil
		}
	}
	return false, err
}

// probe performs action in project as a and reports whether it was
// allowed.
type probe func(e *rbacEnv, a actor, project string) (allowed bool, err error)

// apiProbe turns an API call into a probe; ECONFLICT (the action was
// permitted and then refused by a rule) counts as allowed.
func apiProbe(call func(ctx context.Context, e *rbacEnv, c *apiclient.Client, project string) error) probe {
	return func(e *rbacEnv, a actor, project string) (bool, error) {
		err := call(context.Background(), e, e.client(a), project)
		if apperr.Is(err, apperr.ECONFLICT) {
			return true, nil
		}
		d, err := denied(err)
		return !d, err
	}
}

// probes perform each action for real, through the registry or the API.
// An action without an endpoint of its own would be checked through GET
// /api/v1/projects/{name}/permissions, which every client (UI, CLI)
// reads; check compares that endpoint with each probe too.
var probes = map[rbac.Action]probe{
	rbac.ActionReadScan: apiProbe(func(ctx context.Context, _ *rbacEnv, c *apiclient.Client, p string) error {
		if _, err := c.ProjectScans(ctx, p); err != nil {
			return err
		}
		_, err := c.RepositoryScans(ctx, p+"/app")
		return err
	}),
	rbac.ActionScan: apiProbe(func(ctx context.Context, _ *rbacEnv, c *apiclient.Client, p string) error {
		_, err := c.RequestScan(ctx, p+"/app", "v1")
		return err
	}),
	rbac.ActionManageAllowlist: apiProbe(func(ctx context.Context, e *rbacEnv, c *apiclient.Client, p string) error {
		_, err := c.AddAllowlistEntry(ctx, p, api.AllowlistEntry{ID: fmt.Sprintf("CVE-2099-%d", e.seq.Add(1)), Expires: "30d", Reason: "rbac probe"})
		return err
	}),
	rbac.ActionReadProject: apiProbe(func(ctx context.Context, _ *rbacEnv, c *apiclient.Client, p string) error {
		_, err := c.Project(ctx, p)
		return err
	}),
	rbac.ActionPull: func(e *rbacEnv, a actor, p string) (bool, error) {
		ref, err := name.ParseReference(e.addr+"/"+p+"/app:v1", name.Insecure)
		if err != nil {
			return false, err
		}
		_, err = remote.Get(ref, e.remoteOpts(a)...)
		d, err := denied(err)
		return !d, err
	},
	rbac.ActionPush: func(e *rbacEnv, a actor, p string) (bool, error) {
		_, err := e.push(a, fmt.Sprintf("%s/pushed-%d:v1", p, e.seq.Add(1)))
		d, err := denied(err)
		return !d, err
	},
	rbac.ActionDeleteArtifact: func(e *rbacEnv, a actor, p string) (bool, error) {
		ref, err := e.push(actor{"admin", adminPassword}, fmt.Sprintf("%s/del-%d:v1", p, e.seq.Add(1)))
		if err != nil {
			return false, err
		}
		d, err := denied(remote.Delete(ref, e.remoteOpts(a)...))
		return !d, err
	},
	rbac.ActionDeleteRepository: func(e *rbacEnv, a actor, p string) (bool, error) {
		repo := fmt.Sprintf("%s/repo-del-%d", p, e.seq.Add(1))
		ref, err := e.push(actor{"admin", adminPassword}, repo+":v1")
		if err != nil {
			return false, err
		}
		del, err := e.client(a).DeleteRepository(context.Background(), repo)
		d, err := denied(err)
		if err != nil || d {
			// Refused: the repository and its tag are still there.
			if _, gerr := remote.Head(ref, e.remoteOpts(actor{"admin", adminPassword})...); gerr != nil {
				return false, fmt.Errorf("refused delete-repository removed %s: %v", ref, gerr)
			}
			return false, err
		}
		if del.Repository != repo || del.Tags != 1 || del.Manifests != 1 {
			return false, fmt.Errorf("delete-repository answered %+v, want %s with 1 tag and 1 manifest", del, repo)
		}
		tag, _ := name.NewTag(e.addr+"/"+repo+":v1", name.Insecure)
		var te *transport.Error
		if _, err := remote.Head(tag, e.remoteOpts(actor{"admin", adminPassword})...); !errors.As(err, &te) || te.StatusCode != http.StatusNotFound {
			return false, fmt.Errorf("after delete-repository, HEAD %s: %v, want 404", tag, err)
		}
		return true, nil
	},
	rbac.ActionListMembers: apiProbe(func(ctx context.Context, _ *rbacEnv, c *apiclient.Client, p string) error {
		_, err := c.Members(ctx, p)
		return err
	}),
	rbac.ActionManageMembers: apiProbe(func(ctx context.Context, e *rbacEnv, c *apiclient.Client, p string) error {
		_, err := c.AddMember(ctx, p, store.MemberGroup, fmt.Sprintf("probe-%d", e.seq.Add(1)), rbac.RoleGuest)
		return err
	}),
	rbac.ActionListRobots: apiProbe(func(ctx context.Context, _ *rbacEnv, c *apiclient.Client, p string) error {
		_, err := c.Robots(ctx, p)
		return err
	}),
	rbac.ActionManageRobots: apiProbe(func(ctx context.Context, e *rbacEnv, c *apiclient.Client, p string) error {
		rb, err := c.CreateRobot(ctx, p, api.CreateRobotRequest{Name: fmt.Sprintf("probe-%d", e.seq.Add(1)),
			Actions: []rbac.Action{rbac.ActionPull}})
		e.secrets.Store(rb.Secret, "secret of "+rb.Name)
		return err
	}),
	rbac.ActionManageSettings: apiProbe(func(ctx context.Context, e *rbacEnv, c *apiclient.Client, p string) error {
		pr, err := e.admin.Project(ctx, p)
		if err != nil {
			return err
		}
		_, err = c.SetProjectPublic(ctx, p, pr.Public)
		return err
	}),
	rbac.ActionReadAudit: apiProbe(func(ctx context.Context, _ *rbacEnv, c *apiclient.Client, p string) error {
		_, err := c.AuditEvents(ctx, apiclient.AuditQuery{Project: p, N: 1})
		return err
	}),
	rbac.ActionDeleteProject: apiProbe(func(ctx context.Context, _ *rbacEnv, c *apiclient.Client, p string) error {
		return c.DeleteProject(ctx, p) // the project holds repositories: ECONFLICT when permitted
	}),
}

// permissionsProbe checks an action through the permissions endpoint.
func permissionsProbe(action rbac.Action) probe {
	return func(e *rbacEnv, a actor, p string) (bool, error) {
		perms, err := e.client(a).Permissions(context.Background(), p)
		if d, err := denied(err); d || err != nil {
			return false, err
		}
		for _, got := range perms.Actions {
			if got == action {
				return true, nil
			}
		}
		return false, nil
	}
}

// check runs every action of the table as a in project and expects exactly
// want. The permissions endpoint must agree too.
func (e *rbacEnv) check(t *testing.T, a actor, project string, want rbac.Set) {
	t.Helper()
	for _, row := range rbac.Table() {
		p, ok := probes[row.Action]
		if !ok {
			p = permissionsProbe(row.Action)
		}
		got, err := p(e, a, project)
		if err != nil {
			t.Errorf("%s %s in %s: unexpected failure: %v", a, row.Action, project, err)
			continue
		}
		if got != want.Has(row.Action) {
			t.Errorf("%s %s in %s: allowed=%v, want %v", a, row.Action, project, got, want.Has(row.Action))
		}
		if ok {
			if viaPerms, err := permissionsProbe(row.Action)(e, a, project); err != nil || viaPerms != got {
				t.Errorf("%s %s in %s: the permissions endpoint says %v (%v), the endpoint itself %v", a, row.Action, project, viaPerms, err, got)
			}
		}
	}
}

// TestPermissionTable walks every role, and robots with each single action,
// through every action of the rbac table against the real HTTP stack
// (registry with the token flow, and the API): the table decides, and
// adding a row adds cases.
func TestPermissionTable(t *testing.T) {
	e := newRBACEnv(t, nil)
	ctx := context.Background()

	type principal struct {
		name    string
		a       actor
		project string
		want    rbac.Set
	}
	var cases []principal
	for _, r := range rbac.Roles() {
		a := actor{name: r.String()}
		// the password was generated by newRBACEnv; reset it to a known one
		a.secret = "pw-reset-" + r.String()
		e.secrets.Store(a.secret, "password of "+a.name)
		if err := e.admin.ChangePassword(ctx, a.name, "", a.secret); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, principal{"role " + r.String(), a, "proj", rbac.Permissions(r)})
	}
	outsider := e.user("outsider", "", 0)
	cases = append(cases,
		principal{"system admin", actor{"admin", adminPassword}, "proj", rbac.All},
		principal{"non-member", outsider, "proj", 0},
		principal{"member of another project", e.user("elsewhere", "other", rbac.RoleProjectAdmin), "proj", 0},
		principal{"anonymous", anonymous, "proj", 0},
		principal{"anonymous in a public project", anonymous, "pub", rbac.Public()},
		principal{"non-member in a public project", outsider, "pub", rbac.Public()},
	)
	for _, act := range rbac.Actions() {
		rb := e.robot("proj", "only-"+act.String(), act)
		want := rbac.SetOf(act, rbac.ActionReadProject)
		if act == rbac.ActionPush {
			want |= rbac.SetOf(rbac.ActionPull)
		}
		cases = append(cases, principal{"robot with " + act.String(), rb, "proj", want})
	}
	sys, err := e.admin.CreateRobot(ctx, "", api.CreateRobotRequest{Name: "puller",
		Permissions: []api.RobotPermission{{Project: "*", Actions: []rbac.Action{rbac.ActionPull}}}})
	if err != nil {
		t.Fatal(err)
	}
	e.secrets.Store(sys.Secret, "secret of "+sys.Name)
	cases = append(cases,
		principal{"system robot pulling everywhere", actor{sys.Name, sys.Secret}, "proj", rbac.SetOf(rbac.ActionReadProject, rbac.ActionPull)},
		principal{"project robot in another project", e.robot("other", "all", rbac.Actions()...), "proj", 0},
	)

	expired := e.robot("proj", "expired", rbac.Actions()...)
	rb, err := e.srv.Store.Robot(ctx, expired.name)
	if err != nil {
		t.Fatal(err)
	}
	rb.ExpiresAt = time.Now().Add(-time.Second)
	if err := e.srv.Store.UpdateRobot(ctx, rb); err != nil {
		t.Fatal(err)
	}
	disabledRobot := e.robot("proj", "disabled", rbac.Actions()...)
	off := true
	if _, err := e.admin.UpdateRobot(ctx, disabledRobot.name, api.UpdateRobotRequest{Disabled: &off}); err != nil {
		t.Fatal(err)
	}
	disabledUser := e.user("disabled-admin", "proj", rbac.RoleProjectAdmin)
	if _, err := e.admin.UpdateUser(ctx, disabledUser.name, api.UpdateUserRequest{Disabled: &off}); err != nil {
		t.Fatal(err)
	}
	cases = append(cases,
		principal{"expired robot", expired, "proj", 0},
		principal{"disabled robot", disabledRobot, "proj", 0},
		principal{"disabled project admin", disabledUser, "proj", 0},
	)

	t.Run("cases", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				e.check(t, c.a, c.project, c.want)
			})
		}
	})

	t.Run("no secrets in logs or answers", func(t *testing.T) {
		var answers []string
		for _, path := range []string{"/api/v1/users", "/api/v1/robots", "/api/v1/projects/proj/robots", "/api/v1/projects/proj/members"} {
			req, _ := http.NewRequest("GET", e.url()+path, nil)
			req.SetBasicAuth("admin", adminPassword)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			resp.Body.Close()
			answers = append(answers, b.String())
		}
		all := strings.Join(answers, "\n")
		for _, leak := range []string{"argon2id", "hmac-sha256", "passwordHash", "secretHash", `"secret"`} {
			if strings.Contains(all, leak) {
				t.Errorf("an API answer contains %q", leak)
			}
		}
		logs := e.logs.String()
		if !strings.Contains(logs, "token issued") || !strings.Contains(logs, "login failed") {
			t.Fatalf("the logs do not look captured at debug level:\n%.2000s", logs)
		}
		e.secrets.Range(func(k, v any) bool {
			s := k.(string)
			if s == "" {
				return true
			}
			if strings.Contains(logs, s) {
				t.Errorf("the logs contain the %s", v)
			}
			if strings.Contains(all, s) {
				t.Errorf("an API answer contains the %s", v)
			}
			return true
		})
		for _, leak := range []string{"eyJ", "Bearer ", "Basic ", "argon2id$", "hmac-sha256$"} {
			if strings.Contains(logs, leak) {
				t.Errorf("the logs contain %q (a token, credentials or a hash)", leak)
			}
		}
	})
}
