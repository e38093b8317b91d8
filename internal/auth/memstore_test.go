package auth

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/store"
)

// memStore is a minimal in-memory UserStore and ProjectStore for unit tests.
type memStore struct {
	mu       sync.Mutex
	users    map[string]store.User
	projects map[string]store.Project
	members  map[string]map[string]string // project -> "kind:name" -> role
	robots   map[string]store.Robot
	lookups  int // calls to MemberRoles and Robot, to observe caching
	nextID   int64
	userGets int // calls to User, to observe caching
	fail     error
}

func newMemStore() *memStore {
	return &memStore{users: map[string]store.User{}, projects: map[string]store.Project{},
		members: map[string]map[string]string{}, robots: map[string]store.Robot{}}
}

func (m *memStore) CreateUser(_ context.Context, u *store.User) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[u.Name]; ok {
		return apperr.Errorf(apperr.ECONFLICT, "user %s exists", u.Name)
	}
	m.nextID++
	u.ID, u.CreatedAt = m.nextID, time.Unix(0, 0)
	m.users[u.Name] = *u
	return nil
}

func (m *memStore) User(_ context.Context, name string) (*store.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.userGets++
	if m.fail != nil {
		return nil, m.fail
	}
	u, ok := m.users[name]
	if !ok {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "no user %s", name)
	}
	return &u, nil
}

func (m *memStore) UpdateUser(_ context.Context, u *store.User) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.users[u.Name]
	if !ok {
		return apperr.Errorf(apperr.ENOTFOUND, "no user %s", u.Name)
	}
	cur.PasswordHash, cur.Admin, cur.Disabled = u.PasswordHash, u.Admin, u.Disabled
	m.users[u.Name] = cur
	return nil
}

func (m *memStore) Users(_ context.Context, page store.Page) ([]store.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	var out []store.User
	for _, u := range m.users {
		if u.Name > page.Last {
			out = append(out, u)
		}
	}
	slices.SortFunc(out, func(a, b store.User) int { return strings.Compare(a.Name, b.Name) })
	if page.N > 0 && len(out) > page.N {
		out = out[:page.N]
	}
	return out, nil
}

func (m *memStore) DeleteUser(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[name]; !ok {
		return apperr.Errorf(apperr.ENOTFOUND, "no user %s", name)
	}
	delete(m.users, name)
	return nil
}

func (m *memStore) CreateProject(_ context.Context, p *store.Project) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.projects[p.Name]; ok {
		return apperr.Errorf(apperr.ECONFLICT, "project %s exists", p.Name)
	}
	m.nextID++
	p.ID = m.nextID
	m.projects[p.Name] = *p
	return nil
}

func (m *memStore) Project(_ context.Context, name string) (*store.Project, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	p, ok := m.projects[name]
	if !ok {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "no project %s", name)
	}
	return &p, nil
}

func (m *memStore) UpdateProject(_ context.Context, p *store.Project) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.projects[p.Name]; !ok {
		return apperr.Errorf(apperr.ENOTFOUND, "no project %s", p.Name)
	}
	m.projects[p.Name] = *p
	return nil
}

func (m *memStore) Projects(context.Context, store.Page) ([]store.Project, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Project
	for _, p := range m.projects {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b store.Project) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (m *memStore) DeleteProject(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.projects[name]; !ok {
		return apperr.Errorf(apperr.ENOTFOUND, "no project %s", name)
	}
	delete(m.projects, name)
	return nil
}

// setMember gives kind:name role in project ("" removes the membership).
func (m *memStore) setMember(project, kind, name, role string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.members[project] == nil {
		m.members[project] = map[string]string{}
	}
	if role == "" {
		delete(m.members[project], kind+":"+name)
		return
	}
	m.members[project][kind+":"+name] = role
}

func (m *memStore) MemberRoles(_ context.Context, user string, groups []string) (map[string][]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	if m.fail != nil {
		return nil, m.fail
	}
	out := map[string][]string{}
	for project, ms := range m.members {
		for key, role := range ms {
			kind, name, _ := strings.Cut(key, ":")
			if (kind == store.MemberUser && name == user) || (kind == store.MemberGroup && slices.Contains(groups, name)) {
				out[project] = append(out[project], role)
			}
		}
	}
	return out, nil
}

func (m *memStore) putRobot(r store.Robot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.robots[r.Name] = r
}

func (m *memStore) Robot(_ context.Context, name string) (*store.Robot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	if m.fail != nil {
		return nil, m.fail
	}
	r, ok := m.robots[name]
	if !ok {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "no robot %s", name)
	}
	return &r, nil
}

func (m *memStore) lookupCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lookups
}

func (m *memStore) gets() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.userGets
}

// testPepper keys robot secret hashes in tests.
var testPepper = []byte("0123456789abcdef0123456789abcdef")

// fastParams make password hashing cheap in tests.
var fastParams = PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fixture is a Service over a memStore with users admin (admin), alice
// (plain user) and bob (disabled), a public project "pub" and a private one
// "priv".
type fixture struct {
	svc   *Service
	st    *memStore
	keys  *KeyDir
	clock *fakeClock
}

const (
	adminPW = "admin-secret"
	alicePW = "alice:se cret" // a colon and a space: Basic splits at the first colon
	bobPW   = "bob-secret"
)

func newFixture(t testing.TB, mod ...func(*Options)) *fixture {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	keys, err := OpenKeyDir(t.TempDir(), KeyDirOptions{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	st := newMemStore()
	ctx := context.Background()
	for _, u := range []struct {
		name, pw        string
		admin, disabled bool
	}{{"admin", adminPW, true, false}, {"alice", alicePW, false, false}, {"bob", bobPW, false, true}} {
		h, err := HashPassword(u.pw, fastParams)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateUser(ctx, &store.User{Name: u.name, PasswordHash: h, Admin: u.admin, Disabled: u.disabled}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []store.Project{{Name: "pub", Public: true}, {Name: "priv"}} {
		if err := st.CreateProject(ctx, &p); err != nil {
			t.Fatal(err)
		}
	}
	opts := Options{Users: st, Projects: st, Members: st, Robots: st, RobotPepper: testPepper, Keys: keys,
		Service: "customs", Issuer: "customs-test", PasswordParams: fastParams, Clock: clock.Now}
	for _, f := range mod {
		f(&opts)
	}
	svc, err := NewService(opts)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, st: st, keys: keys, clock: clock}
}
