package registry

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/blob"
)

// startSession POSTs a new upload session to repo and returns its Location.
func (e *env) startSession(repo, query string) string {
	e.t.Helper()
	r := e.do(req{method: "POST", path: "/v2/" + repo + "/blobs/uploads/" + query, user: "admin"})
	e.expect(r, http.StatusAccepted, "")
	loc := r.Header.Get("Location")
	if !strings.HasPrefix(loc, "/v2/"+repo+"/blobs/uploads/") || r.Header.Get("Docker-Upload-UUID") == "" || r.Header.Get("Range") != "0-0" {
		e.t.Fatalf("session headers: Location %q, UUID %q, Range %q", loc, r.Header.Get("Docker-Upload-UUID"), r.Header.Get("Range"))
	}
	return loc
}

// withQuery appends a query parameter to a Location.
func withQuery(loc, kv string) string {
	if strings.Contains(loc, "?") {
		return loc + "&" + kv
	}
	return loc + "?" + kv
}

// patch sends a chunk with an optional Content-Range.
func (e *env) patch(loc string, chunk []byte, contentRange string) *resp {
	h := map[string]string{"Content-Type": "application/octet-stream"}
	if contentRange != "" {
		h["Content-Range"] = contentRange
	}
	return e.do(req{method: "PATCH", path: loc, user: "admin", header: h, body: chunk})
}

// pulled checks that repo serves blob d with content.
func (e *env) pulled(repo string, d digest.Digest, content []byte) {
	e.t.Helper()
	r := e.do(req{method: "GET", path: "/v2/" + repo + "/blobs/" + d.String(), user: "admin"})
	e.expect(r, 200, "")
	if !bytes.Equal(r.body, content) {
		e.t.Fatalf("blob %s: pulled %d bytes, want %d", d, len(r.body), len(content))
	}
}

func TestPostPut(t *testing.T) {
	e := newEnv(t)
	content := []byte("post then put")
	d := digest.FromBytes(content)
	loc := e.startSession("p/a", "")
	r := e.do(req{method: "PUT", path: withQuery(loc, "digest="+d.String()), user: "admin", body: content})
	e.expect(r, 201, "")
	if r.Header.Get("Location") != "/v2/p/a/blobs/"+d.String() || r.Header.Get("Docker-Content-Digest") != d.String() {
		t.Errorf("headers %v", r.Header)
	}
	e.pulled("p/a", d, content)
	// The session is gone after the commit.
	e.expect(e.do(req{method: "GET", path: loc, user: "admin"}), 404, codeBlobUploadUnknown)
}

func TestStreamedPatch(t *testing.T) {
	e := newEnv(t)
	content := bytes.Repeat([]byte("stream"), 10000)
	d := digest.FromBytes(content)
	loc := e.startSession("p/a", "")
	r := e.patch(loc, content, "")
	e.expect(r, 202, "")
	if got := r.Header.Get("Range"); got != fmt.Sprintf("0-%d", len(content)-1) {
		t.Errorf("Range = %q", got)
	}
	e.expect(e.do(req{method: "PUT", path: withQuery(r.Header.Get("Location"), "digest="+d.String()), user: "admin"}), 201, "")
	e.pulled("p/a", d, content)
}

func TestChunkedUpload(t *testing.T) {
	e := newEnv(t)
	content := bytes.Repeat([]byte("0123456789abcdef"), 64) // 1024 bytes
	d := digest.FromBytes(content)
	tests := []struct {
		name  string
		steps func(loc string) string // returns the Location to PUT to
		last  []byte                  // body of the closing PUT
		lastR string                  // its Content-Range
	}{
		{
			name: "three patches",
			steps: func(loc string) string {
				for _, c := range [][2]int{{0, 400}, {400, 800}, {800, 1024}} {
					r := e.patch(loc, content[c[0]:c[1]], fmt.Sprintf("%d-%d", c[0], c[1]-1))
					e.expect(r, 202, "")
					if r.Header.Get("Range") != fmt.Sprintf("0-%d", c[1]-1) {
						t.Fatalf("Range = %q", r.Header.Get("Range"))
					}
					loc = r.Header.Get("Location")
				}
				return loc
			},
		},
		{
			name: "last chunk in the put",
			steps: func(loc string) string {
				e.expect(e.patch(loc, content[:500], "0-499"), 202, "")
				return loc
			},
			last: content[500:], lastR: "500-1023",
		},
		{
			name: "out of order chunks answered 416 then resumed",
			steps: func(loc string) string {
				e.expect(e.patch(loc, content[:300], "0-299"), 202, "")
				// skipping ahead
				r := e.patch(loc, content[600:900], "600-899")
				e.expect(r, 416, codeBlobUploadInvalid)
				if r.Header.Get("Range") != "0-299" || r.Header.Get("Location") == "" {
					t.Fatalf("416 headers: Range %q Location %q", r.Header.Get("Range"), r.Header.Get("Location"))
				}
				// going back
				e.expect(e.patch(loc, content[0:300], "0-299"), 416, codeBlobUploadInvalid)
				s := e.do(req{method: "GET", path: loc, user: "admin"})
				e.expect(s, 204, "")
				if s.Header.Get("Range") != "0-299" {
					t.Fatalf("status Range = %q", s.Header.Get("Range"))
				}
				e.expect(e.patch(s.Header.Get("Location"), content[300:1024], "300-1023"), 202, "")
				return loc
			},
		},
		{
			name: "out of order last chunk in the put",
			steps: func(loc string) string {
				e.expect(e.patch(loc, content[:500], "0-499"), 202, "")
				r := e.do(req{method: "PUT", path: withQuery(loc, "digest="+d.String()), user: "admin",
					header: map[string]string{"Content-Range": "501-1023"}, body: content[501:]})
				e.expect(r, 416, codeBlobUploadInvalid)
				return loc
			},
			last: content[500:], lastR: "500-1023",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := fmt.Sprintf("p/chunked%d", i)
			loc := tt.steps(e.startSession(repo, ""))
			h := map[string]string{}
			if tt.lastR != "" {
				h["Content-Range"] = tt.lastR
			}
			r := e.do(req{method: "PUT", path: withQuery(loc, "digest="+d.String()), user: "admin", header: h, body: tt.last})
			e.expect(r, 201, "")
			e.pulled(repo, d, content)
		})
	}
}

func TestUploadErrors(t *testing.T) {
	e := newEnv(t)
	content := []byte("some content")
	d := digest.FromBytes(content)
	tests := []struct {
		name   string
		run    func(loc string) *resp
		status int
		code   string
	}{
		{"put without digest", func(loc string) *resp {
			return e.do(req{method: "PUT", path: loc, user: "admin", body: content})
		}, 400, codeDigestInvalid},
		{"put with bad digest", func(loc string) *resp {
			return e.do(req{method: "PUT", path: withQuery(loc, "digest=sha256:0"), user: "admin", body: content})
		}, 400, codeDigestInvalid},
		{"malformed content range", func(loc string) *resp { return e.patch(loc, content, "x-y") }, 400, codeBlobUploadInvalid},
		{"content range longer than body", func(loc string) *resp {
			return e.do(req{method: "PATCH", path: loc, user: "admin", header: map[string]string{"Content-Range": "0-99"}, body: content})
		}, 400, codeSizeInvalid},
		{"session of another repository", func(loc string) *resp {
			return e.do(req{method: "GET", path: strings.Replace(loc, "/p/a/", "/p/b/", 1), user: "admin"})
		}, 404, codeBlobUploadUnknown},
		{"forged session", func(loc string) *resp {
			return e.do(req{method: "PATCH", path: "/v2/p/a/blobs/uploads/abc.def", user: "admin", body: content})
		}, 404, codeBlobUploadUnknown},
		{"push denied on session", func(loc string) *resp {
			return e.do(req{method: "PATCH", path: loc, user: "bob", body: content})
		}, 403, codeDenied},
		{"unknown digest algorithm for a session", func(string) *resp {
			return e.do(req{method: "POST", path: "/v2/p/a/blobs/uploads/?digest-algorithm=md5", user: "admin"})
		}, 400, codeDigestInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.expect(tt.run(e.startSession("p/a", "")), tt.status, tt.code)
		})
	}

	t.Run("digest mismatch keeps the session and stores nothing", func(t *testing.T) {
		loc := e.startSession("p/a", "")
		e.expect(e.patch(loc, content, ""), 202, "")
		wrong := digest.FromString("not the content")
		e.expect(e.do(req{method: "PUT", path: withQuery(loc, "digest="+wrong.String()), user: "admin"}), 400, codeDigestInvalid)
		if _, err := e.blobs.Stat(context.Background(), wrong); !apperr.Is(err, apperr.ENOTFOUND) {
			t.Errorf("mismatched content visible: %v", err)
		}
		e.expect(e.do(req{method: "HEAD", path: "/v2/p/a/blobs/" + wrong.String(), user: "admin"}), 404, "")
		s := e.do(req{method: "GET", path: loc, user: "admin"})
		e.expect(s, 204, "")
		e.expect(e.do(req{method: "PUT", path: withQuery(loc, "digest="+d.String()), user: "admin"}), 201, "")
	})

	t.Run("cancel", func(t *testing.T) {
		loc := e.startSession("p/a", "")
		e.expect(e.patch(loc, content, ""), 202, "")
		e.expect(e.do(req{method: "DELETE", path: loc, user: "admin"}), 204, "")
		e.expect(e.do(req{method: "GET", path: loc, user: "admin"}), 404, codeBlobUploadUnknown)
		e.expect(e.do(req{method: "DELETE", path: loc, user: "admin"}), 404, codeBlobUploadUnknown)
	})

	t.Run("session in use", func(t *testing.T) {
		loc := e.startSession("p/a", "")
		tok := loc[strings.LastIndexByte(loc, '/')+1:]
		id := tok[:strings.LastIndexByte(tok, '.')]
		up, err := e.blobs.Upload(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		r := e.patch(loc, content, "")
		e.expect(r, 429, codeTooManyRequests)
		if r.Header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
		up.Close()
		e.expect(e.patch(loc, content, ""), 202, "")
	})
}

func TestUploadDigestAlgorithms(t *testing.T) {
	e := newEnv(t)
	content := bytes.Repeat([]byte("sha512 "), 500)
	d512 := digest.SHA512.FromBytes(content)
	tests := []struct{ name, query string }{
		{"session hashing sha512", "?digest-algorithm=sha512"},
		{"sha256 session committed as sha512", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := e.startSession("p/a", tt.query)
			e.expect(e.patch(loc, content[:1000], "0-999"), 202, "")
			e.expect(e.do(req{method: "PUT", path: withQuery(loc, "digest="+d512.String()), user: "admin",
				header: map[string]string{"Content-Range": fmt.Sprintf("1000-%d", len(content)-1)}, body: content[1000:]}), 201, "")
			e.pulled("p/a", d512, content)
		})
	}
}

// TestClientDisconnectsMidUpload sends a chunk and hangs up half-way: the
// session keeps what was acknowledged before and the client resumes.
func TestClientDisconnectsMidUpload(t *testing.T) {
	e := newEnv(t)
	content := bytes.Repeat([]byte("resumable "), 100000) // 1 MB
	d := digest.FromBytes(content)
	loc := e.startSession("p/a", "")
	e.expect(e.patch(loc, content[:300000], "0-299999"), 202, "")

	// Second chunk: announce 700000 bytes, send 200000, hang up.
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRtaW46cHc=\r\nContent-Type: application/octet-stream\r\n"+
		"Content-Range: 300000-999999\r\nContent-Length: 700000\r\n\r\n", loc)
	if _, err := conn.Write(content[300000:500000]); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	// Status reports only what was acknowledged, before and after the
	// handler notices the disconnect.
	s := e.do(req{method: "GET", path: loc, user: "admin"})
	e.expect(s, 204, "")
	if s.Header.Get("Range") != "0-299999" {
		t.Fatalf("after disconnect Range = %q, want 0-299999", s.Header.Get("Range"))
	}
	// Until the handler has noticed, the session is busy (429), as a
	// client retrying after the Retry-After would see.
	var r *resp
	for deadline := time.Now().Add(10 * time.Second); ; {
		r = e.patch(loc, content[300000:], "300000-999999")
		if r.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.expect(r, 202, "")
	e.expect(e.do(req{method: "PUT", path: withQuery(loc, "digest="+d.String()), user: "admin"}), 201, "")
	e.pulled("p/a", d, content)
}

// TestDisconnectDuringMonolithicUpload: nothing of an interrupted
// monolithic upload becomes visible.
func TestDisconnectDuringMonolithicUpload(t *testing.T) {
	e := newEnv(t)
	content := bytes.Repeat([]byte("x"), 1<<20)
	d := digest.FromBytes(content)
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v2/p/a/blobs/uploads/?digest=%s HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRtaW46cHc=\r\nContent-Length: %d\r\n\r\n", d, len(content))
	conn.Write(content[:1000])
	conn.Close()
	time.Sleep(100 * time.Millisecond)
	e.expect(e.do(req{method: "HEAD", path: "/v2/p/a/blobs/" + d.String(), user: "admin"}), 404, "")
	if _, err := e.blobs.Stat(context.Background(), d); !apperr.Is(err, apperr.ENOTFOUND) {
		t.Errorf("partial blob visible: %v", err)
	}
	// A complete retry works.
	e.pushBlob("p/a", content)
}

func TestMount(t *testing.T) {
	e := newEnv(t)
	content := []byte("mountable")
	d := e.pushBlob("p/src", content)
	bobs := e.pushBlob("p/bob-src", []byte("bob's own"))
	e.pushBlob("pub/lib", []byte("public"))
	pubD := digest.FromString("public")
	missing := digest.FromString("not anywhere")
	tests := []struct {
		name   string
		user   string
		target string
		query  string
		status int
		code   string
	}{
		{"from a repository", "admin", "p/dst", "mount=" + d.String() + "&from=p/src", 201, ""},
		{"from without pull falls back to upload", "bob", "p/bob-dst", "mount=" + d.String() + "&from=p/src", 202, ""},
		{"blob not in from falls back", "admin", "p/dst", "mount=" + missing.String() + "&from=p/src", 202, ""},
		{"without from, entitled", "admin", "p/dst2", "mount=" + d.String(), 201, ""},
		{"without from, not entitled", "bob", "p/bob-dst", "mount=" + d.String(), 202, ""},
		{"without from, bob's own", "bob", "p/bob-dst", "mount=" + bobs.String(), 201, ""},
		{"without from, public", "bob", "p/bob-dst", "mount=" + pubD.String(), 201, ""},
		{"into a missing project", "admin", "nope/x", "mount=" + d.String() + "&from=p/src", 404, codeNameUnknown},
		{"bad digest", "admin", "p/dst", "mount=sha256:1&from=p/src", 400, codeDigestInvalid},
		{"bad from", "admin", "p/dst", "mount=" + d.String() + "&from=Bad", 400, codeNameInvalid},
		{"no push on target", "bob", "p/other", "mount=" + d.String() + "&from=p/src", 403, codeDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(req{method: "POST", path: "/v2/" + tt.target + "/blobs/uploads/?" + tt.query, user: tt.user})
			e.expect(r, tt.status, tt.code)
			switch tt.status {
			case 201:
				dig := r.Header.Get("Docker-Content-Digest")
				if r.Header.Get("Location") != "/v2/"+tt.target+"/blobs/"+dig {
					t.Errorf("Location %q", r.Header.Get("Location"))
				}
				e.expect(e.do(req{method: "HEAD", path: "/v2/" + tt.target + "/blobs/" + dig, user: "admin"}), 200, "")
			case 202:
				if !strings.HasPrefix(r.Header.Get("Location"), "/v2/"+tt.target+"/blobs/uploads/") {
					t.Errorf("fallback Location %q", r.Header.Get("Location"))
				}
			}
		})
	}
	t.Run("anonymous challenge names both repositories", func(t *testing.T) {
		r := e.do(req{method: "POST", path: "/v2/p/dst/blobs/uploads/?mount=" + d.String() + "&from=p/src"})
		e.expect(r, 401, codeUnauthorized)
		want := `scope="repository:p/dst:pull,push repository:p/src:pull"`
		if !strings.Contains(r.Header.Get("WWW-Authenticate"), want) {
			t.Errorf("challenge %q lacks %s", r.Header.Get("WWW-Authenticate"), want)
		}
	})
}

// heldSignalBlobs is registry Blobs that reports on held each time a
// handler has taken an upload session with Upload.
type heldSignalBlobs struct {
	Blobs
	held chan string
}

func (b heldSignalBlobs) Upload(ctx context.Context, id string) (blob.Upload, error) {
	up, err := b.Blobs.Upload(ctx, id)
	if err == nil {
		b.held <- id
	}
	return up, err
}

// TestStatusDuringAppend: GET status while a PATCH is streaming answers 204
// with what was acknowledged before it, without taking the session from
// the PATCH; another writer meanwhile gets 429.
func TestStatusDuringAppend(t *testing.T) {
	held := make(chan string, 10)
	e := newEnv(t, func(o *Options) { o.Blobs = heldSignalBlobs{o.Blobs, held} })
	content := []byte("acked, then streamed")
	d := digest.FromBytes(content)
	loc := e.startSession("p/a", "")
	e.expect(e.patch(loc, content[:5], "0-4"), http.StatusAccepted, "")
	<-held

	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRtaW46cHc=\r\nContent-Type: application/octet-stream\r\n"+
		"Content-Range: 5-%d\r\nContent-Length: %d\r\n\r\n%s", loc, len(content)-1, len(content)-5, content[5:10])
	select {
	case <-held: // the streaming PATCH holds the session
	case <-time.After(10 * time.Second):
		t.Fatal("the streaming PATCH did not take the session")
	}

	r := e.do(req{method: "GET", path: loc, user: "admin"})
	e.expect(r, http.StatusNoContent, "")
	if got := r.Header.Get("Range"); got != "0-4" {
		t.Errorf("status during the PATCH: Range %q, want 0-4 (what was acknowledged)", got)
	}
	e.expect(e.patch(loc, nil, ""), http.StatusTooManyRequests, "TOOMANYREQUESTS")

	if _, err := conn.Write(content[10:]); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted || res.Header.Get("Range") != fmt.Sprintf("0-%d", len(content)-1) {
		t.Fatalf("streaming PATCH: %s, Range %q; want 202, 0-%d", res.Status, res.Header.Get("Range"), len(content)-1)
	}
	r = e.do(req{method: "GET", path: loc, user: "admin"})
	if got := r.Header.Get("Range"); got != fmt.Sprintf("0-%d", len(content)-1) {
		t.Errorf("status after the PATCH: Range %q, want 0-%d", got, len(content)-1)
	}
	e.expect(e.do(req{method: "PUT", path: withQuery(loc, "digest="+d.String()), user: "admin"}), http.StatusCreated, "")
	<-held
	e.pulled("p/a", d, content)
}
