// Package apiclient is a Go client of customs' JSON API, used by the CLI.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/apperr"
)

// Client calls one customs server. It is not safe for concurrent use.
type Client struct {
	// BaseURL is the server's URL, e.g. "http://localhost:5000".
	BaseURL string
	// Username and Password are sent with Basic auth when Username is set.
	Username, Password string
	// RefreshToken, when set (and Username is not), is exchanged at the
	// server's token service for an API access token, sent as a bearer
	// token (see Login).
	RefreshToken string
	// HTTP is the client used; http.DefaultClient when nil.
	HTTP *http.Client

	access        string    // API access token obtained with RefreshToken
	accessExpires time.Time // when to get a new one
}

// send sends a request (with in, if not nil, as its JSON body) with the
// client's credentials and returns the response if its status is 2xx; the
// caller closes its body. Any other answer becomes an *apperr.Error
// carrying the server's code and message.
func (c *Client) send(ctx context.Context, method, path string, in any, accept string) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.EINVALID, fmt.Sprintf("bad server URL %q", c.BaseURL))
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", accept)
	switch {
	case c.Username != "":
		req.SetBasicAuth(c.Username, c.Password)
	case c.RefreshToken != "":
		tok, err := c.accessToken(ctx)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.EUNAVAILABLE, unreachable(c.BaseURL, err))
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, apperr.Wrap(err, apperr.EUNAVAILABLE, "reading the server's answer failed")
	}
	var eb api.ErrorBody
	if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
		e := apperr.Errorf(eb.Error.Code, "%s", eb.Error.Message)
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return nil, e
	}
	return nil, apperr.Errorf(apperr.EINTERNAL, "server answered %s", resp.Status)
}

// do sends a JSON request and decodes a JSON response into out (if not nil).
// A non-2xx answer becomes an *apperr.Error carrying the server's code and
// message.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return apperr.Wrap(err, apperr.EUNAVAILABLE, "reading the server's answer failed")
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return apperr.Wrap(err, apperr.EINTERNAL, "the server's answer is not the expected JSON")
		}
	}
	return nil
}

// CreateProject creates a project.
func (c *Client) CreateProject(ctx context.Context, name string, public bool) (api.Project, error) {
	var p api.Project
	err := c.do(ctx, http.MethodPost, "/api/v1/projects", api.CreateProjectRequest{Name: name, Public: public}, &p)
	return p, err
}

// Projects lists the projects the caller may see.
func (c *Client) Projects(ctx context.Context) ([]api.Project, error) {
	var out struct {
		Projects []api.Project `json:"projects"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/projects", nil, &out)
	return out.Projects, err
}

// Project returns one project.
func (c *Client) Project(ctx context.Context, name string) (api.Project, error) {
	var p api.Project
	err := c.do(ctx, http.MethodGet, "/api/v1/projects/"+url.PathEscape(name), nil, &p)
	return p, err
}

// SetProjectPublic changes a project's visibility.
func (c *Client) SetProjectPublic(ctx context.Context, name string, public bool) (api.Project, error) {
	var p api.Project
	err := c.do(ctx, http.MethodPatch, "/api/v1/projects/"+url.PathEscape(name), api.UpdateProjectRequest{Public: &public}, &p)
	return p, err
}

// DeleteProject deletes an empty project.
func (c *Client) DeleteProject(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/projects/"+url.PathEscape(name), nil, nil)
}

// unreachable words a failed request to customs at base: the transport's
// own error without the *url.Error wrapping, which would repeat the
// method and the URL ("cannot reach customs at http://h:1: dial tcp …:
// connection refused").
func unreachable(base string, err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Sprintf("cannot reach customs at %s: %v", base, err)
}
