package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
)

// apiScope is the token scope the JSON API requires of bearer tokens.
const apiScope = "api:v1:*"

// clientID names the CLI to the token service (OAuth2 client_id).
const clientID = "customs-cli"

// tokenAnswer is the token service's answer, success or error.
type tokenAnswer struct {
	AccessToken      string `json:"access_token"`
	RefreshToken     string `json:"refresh_token"`
	ExpiresIn        int64  `json:"expires_in"`
	ErrorDescription string `json:"error_description"`
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// Login checks user and password at the server's token service and returns
// a refresh token that later clients use as RefreshToken instead of the
// password. The refresh token is valid for the server's refresh lifetime
// (90 days by default) and dies at once when the password changes, the
// account is disabled or deleted (or, for a robot, its secret is rotated).
func (c *Client) Login(ctx context.Context, user, password string) (string, error) {
	ans, err := c.token(ctx, url.Values{
		"grant_type": {"password"}, "username": {user}, "password": {password},
		"access_type": {"offline"}, "scope": {apiScope}, "client_id": {clientID},
	})
	if err != nil {
		return "", err
	}
	if ans.RefreshToken == "" {
		return "", apperr.Errorf(apperr.EINTERNAL, "the server issued no refresh token")
	}
	c.access, c.accessExpires = ans.AccessToken, c.expiry(ans)
	return ans.RefreshToken, nil
}

// accessToken returns an API access token, exchanging RefreshToken for a
// new one when there is none or it is about to expire.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	if c.access != "" && time.Now().Before(c.accessExpires) {
		return c.access, nil
	}
	ans, err := c.token(ctx, url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {c.RefreshToken}, "scope": {apiScope}, "client_id": {clientID},
	})
	if err != nil {
		return "", err
	}
	c.access, c.accessExpires = ans.AccessToken, c.expiry(ans)
	return c.access, nil
}

// expiry is when to stop using an access token: 30 seconds early.
func (c *Client) expiry(ans tokenAnswer) time.Time {
	return time.Now().Add(time.Duration(ans.ExpiresIn)*time.Second - 30*time.Second)
}

// token posts form to the token service.
func (c *Client) token(ctx context.Context, form url.Values) (tokenAnswer, error) {
	var ans tokenAnswer
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.BaseURL, "/")+"/service/token",
		strings.NewReader(form.Encode()))
	if err != nil {
		return ans, apperr.Wrap(err, apperr.EINVALID, fmt.Sprintf("bad server URL %q", c.BaseURL))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return ans, apperr.Wrap(err, apperr.EUNAVAILABLE, unreachable(c.BaseURL, err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return ans, apperr.Wrap(err, apperr.EUNAVAILABLE, "reading the server's answer failed")
	}
	_ = json.Unmarshal(data, &ans)
	if resp.StatusCode != http.StatusOK {
		code := apperr.EINTERNAL
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			code = apperr.EUNAUTHORIZED
		case http.StatusForbidden:
			code = apperr.EDENIED
		case http.StatusBadRequest:
			code = apperr.EINVALID
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			code = apperr.EUNAVAILABLE
		}
		msg := ans.ErrorDescription
		if msg == "" {
			msg = "the token service answered " + resp.Status
		}
		e := apperr.Errorf(code, "%s", msg)
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return ans, e
	}
	if ans.AccessToken == "" {
		return ans, apperr.Errorf(apperr.EINTERNAL, "the token service's answer has no access token")
	}
	return ans, nil
}
