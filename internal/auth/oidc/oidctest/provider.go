// Package oidctest runs a real OpenID Connect provider in the test process:
// zitadel/oidc's example OP (package op, certified by the OpenID
// Foundation, with its in-memory storage and login page), with test users
// who carry groups, and a confidential web client for customs. Browser
// drives the authorization code flow the way a browser would.
package oidctest

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	exstorage "github.com/zitadel/oidc/v3/example/server/storage"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// GroupsScope is the scope that puts the "groups" claim into ID tokens and
// userinfo answers.
const GroupsScope = "groups"

// User is a user of the provider.
type User struct {
	// ID is the subject ("sub"); default "sub-" + Username.
	ID       string
	Username string // the preferred_username claim (scope profile)
	Password string
	Groups   []string // the groups claim (scope groups)
}

// Provider is a running OpenID provider.
type Provider struct {
	// Issuer is the provider's URL (http://127.0.0.1:port).
	Issuer string
	// ClientID and ClientSecret are customs' client at the provider.
	ClientID, ClientSecret string

	client *client
	users  *users
}

// Start starts a provider with users and a client whose redirect URIs are
// added with AllowRedirect; it stops when t ends.
func Start(t testing.TB, us ...User) *Provider {
	t.Helper()
	p := &Provider{ClientID: "customs", ClientSecret: "customs-client-secret", users: &users{byID: map[string]*User{}}}
	for i := range us {
		u := us[i]
		if u.ID == "" {
			u.ID = "sub-" + u.Username
		}
		p.users.byID[u.ID] = &u
	}
	srv := httptest.NewUnstartedServer(nil)
	p.Issuer = "http://" + srv.Listener.Addr().String()
	web := exstorage.WebClient(p.ClientID, p.ClientSecret, "http://unused.invalid/callback")
	p.client = &client{Client: web}
	st := &storage{
		Storage: exstorage.NewStorageWithClients(p.users, map[string]*exstorage.Client{p.ClientID: web}),
		client:  p.client,
		users:   p.users,
	}
	srv.Config.Handler = exampleop.SetupServer(p.Issuer, st, nil, false)
	srv.Start()
	t.Cleanup(srv.Close)
	return p
}

// AllowRedirect registers uri as a redirect URI of customs' client.
func (p *Provider) AllowRedirect(uri string) {
	p.client.mu.Lock()
	defer p.client.mu.Unlock()
	p.client.redirects = append(p.client.redirects, uri)
}

// SetGroups replaces the groups of the user with that username (what the
// provider asserts at the next login).
func (p *Provider) SetGroups(username string, groups ...string) {
	p.users.mu.Lock()
	defer p.users.mu.Unlock()
	for _, u := range p.users.byID {
		if u.Username == username {
			u.Groups = groups
		}
	}
}

// client is customs' web client, with redirect URIs settable after start
// (customs' port is known late) and the groups scope allowed.
type client struct {
	*exstorage.Client
	mu        sync.Mutex
	redirects []string
}

func (c *client) RedirectURIs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.redirects)
}

func (c *client) IsScopeAllowed(scope string) bool {
	return scope == GroupsScope || c.Client.IsScopeAllowed(scope)
}

// storage is the example's in-memory storage, serving customs' client and
// adding the groups claim.
type storage struct {
	*exstorage.Storage
	client *client
	users  *users
}

func (s *storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	if id == s.client.GetID() {
		return s.client, nil
	}
	return s.Storage.GetClientByClientID(ctx, id)
}

// SetUserinfoFromRequest fills the claims of ID tokens.
func (s *storage) SetUserinfoFromRequest(ctx context.Context, info *zoidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, info, req, scopes); err != nil {
		return err
	}
	if slices.Contains(scopes, GroupsScope) {
		s.addGroups(info, req.GetSubject())
	}
	return nil
}

// SetUserinfoFromToken fills the userinfo endpoint's answer.
func (s *storage) SetUserinfoFromToken(ctx context.Context, info *zoidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, info, tokenID, subject, origin); err != nil {
		return err
	}
	s.addGroups(info, info.Subject)
	return nil
}

func (s *storage) addGroups(info *zoidc.UserInfo, subject string) {
	s.users.mu.Lock()
	defer s.users.mu.Unlock()
	if u := s.users.byID[subject]; u != nil && u.Groups != nil {
		info.AppendClaims(GroupsScope, slices.Clone(u.Groups))
	}
}

// users implements the example storage's UserStore.
type users struct {
	mu   sync.Mutex
	byID map[string]*User
}

func (u *users) GetUserByID(id string) *exstorage.User {
	u.mu.Lock()
	defer u.mu.Unlock()
	return toExample(u.byID[id])
}

func (u *users) GetUserByUsername(name string) *exstorage.User {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, x := range u.byID {
		if x.Username == name {
			return toExample(x)
		}
	}
	return nil
}

func (u *users) ExampleClientID() string { return exstorage.ServiceUserID }

func toExample(u *User) *exstorage.User {
	if u == nil {
		return nil
	}
	return &exstorage.User{ID: u.ID, Username: u.Username, Password: u.Password, FirstName: u.Username, LastName: "Test",
		Email: u.Username + "@example.org", EmailVerified: true, PreferredLanguage: language.English}
}

// loginForm finds the hidden auth request id of the provider's login page.
var loginForm = regexp.MustCompile(`<form method="POST" action="([^"]+)"[\s\S]*?name="id" value="([^"]*)"`)

// Browser logs in through customs' OIDC login the way a browser does: it
// GETs startURL (customs' login endpoint) with c, which must have a cookie
// jar and follow redirects, to the provider's login page, submits the form
// with username and password, and follows the redirects back to customs.
// It returns the last response, whose body the caller must close.
func Browser(ctx context.Context, c *http.Client, startURL, username, password string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", startURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	m := loginForm.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		return nil, fmt.Errorf("no login form at %s (status %d): %.500s", resp.Request.URL, resp.StatusCode, body)
	}
	action, err := resp.Request.URL.Parse(html.UnescapeString(string(m[1])))
	if err != nil {
		return nil, err
	}
	form := url.Values{"id": {html.UnescapeString(string(m[2]))}, "username": {username}, "password": {password}}
	req, err = http.NewRequestWithContext(ctx, "POST", action.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = c.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.Request.URL.Host == action.Host && resp.Request.URL.Path == action.Path {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, errors.New("the provider refused the login: " + firstLine(b))
	}
	return resp, nil
}

var errorLine = regexp.MustCompile(`(?i)<div[^>]*>\s*([^<]*(wrong|error)[^<]*)</div>`)

func firstLine(b []byte) string {
	if m := errorLine.FindSubmatch(b); m != nil {
		return strings.TrimSpace(string(m[1]))
	}
	s := string(b)
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
