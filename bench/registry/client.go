package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
)

// Names the benchmark pushes to; customs needs the project to exist.
const (
	benchProject = "bench"
	blobRepo     = benchProject + "/blobs"
	manifestRepo = benchProject + "/manifests"
	manifestTag  = "latest"
)

// manifestAccept is the Accept header of manifest requests, as crane sends it.
const manifestAccept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, " +
	"application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"

// newBaseTransport returns the connection pool shared by all workers of one
// server: plain HTTP/1.1, enough idle connections for every worker, and no
// transparent gzip so bodies reach the client as the server sent them.
func newBaseTransport(conns int) *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          conns + 8,
		MaxIdleConnsPerHost:   conns + 8,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		WriteBufferSize:       64 << 10,
		ReadBufferSize:        64 << 10,
		ResponseHeaderTimeout: 10 * time.Minute,
	}
}

// client speaks the distribution protocol to one server for one worker.
type client struct {
	base string // http://host:port
	hc   *http.Client
}

// newClient authenticates once (GET /v2/, and for a Bearer challenge the token
// flow with Basic credentials, via go-containerregistry's transport) and
// returns a client whose requests carry the token for push and pull on repos.
func newClient(ctx context.Context, base http.RoundTripper, addr string, cred credentials, repos ...string) (*client, error) {
	reg, err := name.NewRegistry(addr, name.Insecure)
	if err != nil {
		return nil, err
	}
	scopes := make([]string, len(repos))
	for i, r := range repos {
		scopes[i] = "repository:" + r + ":pull,push"
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: cred.user, Password: cred.password})
	rt, err := transport.NewWithContext(ctx, reg, auth, base, scopes)
	if err != nil {
		return nil, fmt.Errorf("authenticate to %s: %w", addr, err)
	}
	return &client{base: "http://" + addr, hc: &http.Client{Transport: rt}}, nil
}

// do sends req and checks the status, returning the open response on success.
func (c *client) do(req *http.Request, want int) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %s (want %d): %s", req.Method, req.URL.Path, resp.Status, want, bytes.TrimSpace(body))
	}
	return resp, nil
}

// drain reads the rest of a small response body and closes it, so the
// connection goes back to the pool.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

// pushBlob uploads b to repo: POST to open an upload session, then one
// monolithic PUT of the generated content with ?digest=.
func (c *client) pushBlob(ctx context.Context, repo string, b blobSpec) error {
	return c.pushBody(ctx, repo, b.digest, b.size, newStream(b.seed, b.size))
}

// pushBody is pushBlob for arbitrary content of known digest and size.
func (c *client) pushBody(ctx context.Context, repo string, dg digest.Digest, size int64, body io.Reader) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v2/"+repo+"/blobs/uploads/", nil)
	if err != nil {
		return err
	}
	resp, err := c.do(req, http.StatusAccepted)
	if err != nil {
		return err
	}
	drain(resp)
	loc, err := uploadURL(req.URL, resp.Header.Get("Location"), dg)
	if err != nil {
		return err
	}
	put, err := http.NewRequestWithContext(ctx, http.MethodPut, loc, io.NopCloser(body))
	if err != nil {
		return err
	}
	put.ContentLength = size
	put.Header.Set("Content-Type", "application/octet-stream")
	resp, err = c.do(put, http.StatusCreated)
	if err != nil {
		return err
	}
	drain(resp)
	return nil
}

// uploadURL resolves an upload Location against the request URL and adds the
// digest query parameter, keeping the parameters the server put there.
func uploadURL(reqURL *url.URL, location string, dg digest.Digest) (string, error) {
	if location == "" {
		return "", fmt.Errorf("upload response has no Location")
	}
	u, err := reqURL.Parse(location)
	if err != nil {
		return "", fmt.Errorf("upload Location %q: %w", location, err)
	}
	q := u.Query()
	q.Set("digest", dg.String())
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// countingWriter counts bytes and, when h is set, hashes them. It has no
// ReadFrom, so io.CopyBuffer reads with the caller's large buffer.
type countingWriter struct {
	n int64
	h hash.Hash
}

// Write counts p (and hashes it when verifying).
func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	if w.h != nil {
		w.h.Write(p)
	}
	return len(p), nil
}

// pullBlob GETs b from repo into buf-sized reads and checks its length, and
// with verify its digest too.
func (c *client) pullBlob(ctx context.Context, repo string, b blobSpec, buf []byte, verify bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v2/"+repo+"/blobs/"+b.digest.String(), nil)
	if err != nil {
		return err
	}
	resp, err := c.do(req, http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	w := &countingWriter{}
	if verify {
		w.h = sha256.New()
	}
	if _, err := io.CopyBuffer(w, resp.Body, buf); err != nil {
		return fmt.Errorf("GET blob %s: after %d bytes: %w", b.digest, w.n, err)
	}
	if w.n != b.size {
		return fmt.Errorf("GET blob %s: got %d bytes, want %d", b.digest, w.n, b.size)
	}
	if verify {
		if got := digest.NewDigestFromBytes(digest.SHA256, w.h.Sum(nil)); got != b.digest {
			return fmt.Errorf("GET blob %s: content has digest %s", b.digest, got)
		}
	}
	return nil
}

// putManifest PUTs body as repo:tag with the given media type and returns the
// digest the server reports, which must be that of body.
func (c *client) putManifest(ctx context.Context, repo, tag, mediaType string, body []byte) (digest.Digest, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.base+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", mediaType)
	resp, err := c.do(req, http.StatusCreated)
	if err != nil {
		return "", err
	}
	drain(resp)
	want := digest.FromBytes(body)
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != want.String() {
		return "", fmt.Errorf("PUT manifest: server says digest %s, want %s", got, want)
	}
	return want, nil
}

// manifestRequest HEADs or GETs repo:tag and checks the digest (and for GET
// the body) against want.
func (c *client) manifestRequest(ctx context.Context, method, repo, tag string, want digest.Digest, size int64) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := c.do(req, http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if got := resp.Header.Get("Docker-Content-Digest"); got != want.String() {
		return fmt.Errorf("%s manifest: Docker-Content-Digest %q, want %s", method, got, want)
	}
	if cl := resp.Header.Get("Content-Length"); cl != strconv.FormatInt(size, 10) {
		return fmt.Errorf("%s manifest: Content-Length %q, want %d", method, cl, size)
	}
	if method != http.MethodGet {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, size+1))
	if err != nil {
		return err
	}
	if got := digest.FromBytes(body); got != want {
		return fmt.Errorf("GET manifest: body has digest %s, want %s", got, want)
	}
	return nil
}
