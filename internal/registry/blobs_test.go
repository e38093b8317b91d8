package registry

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
)

func TestBase(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name      string
		user      string
		auth      string
		status    int
		challenge bool
	}{
		{"anonymous is asked to log in", "", "", http.StatusUnauthorized, true},
		{"bad credentials", "", "Basic " + "bm9ib2R5Onh4", http.StatusUnauthorized, true},
		{"user", "bob", "", http.StatusOK, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{}
			if tt.auth != "" {
				h["Authorization"] = tt.auth
			}
			r := e.do(req{method: "GET", path: "/v2/", user: tt.user, header: h})
			e.expect(r, tt.status, "")
			ch := r.Header.Get("WWW-Authenticate")
			if tt.challenge {
				if ch != `Basic realm="customs-test"` {
					t.Errorf("challenge = %q, want one without scope", ch)
				}
				if r.code() != codeUnauthorized {
					t.Errorf("code = %q", r.code())
				}
			} else if string(r.body) != "{}" || r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("body %q, type %q", r.body, r.Header.Get("Content-Type"))
			}
		})
	}
}

func TestBlobPull(t *testing.T) {
	e := newEnv(t)
	content := bytes.Repeat([]byte("0123456789"), 300)
	d := e.pushBlob("p/a", content)
	other := e.pushBlob("p/other", []byte("only in p/other"))
	missing := digest.FromString("never pushed")
	public := e.pushBlob("pub/lib", []byte("public bytes"))
	tests := []struct {
		name    string
		method  string
		path    string
		user    string
		header  map[string]string
		status  int
		code    string
		body    []byte
		headers map[string]string
	}{
		{name: "get", method: "GET", path: "/v2/p/a/blobs/" + d.String(), user: "admin", status: 200, body: content,
			headers: map[string]string{"Docker-Content-Digest": d.String(), "Content-Type": "application/octet-stream",
				"Content-Length": strconv.Itoa(len(content)), "Accept-Ranges": "bytes", "Etag": `"` + d.String() + `"`}},
		{name: "head", method: "HEAD", path: "/v2/p/a/blobs/" + d.String(), user: "admin", status: 200, body: []byte{},
			headers: map[string]string{"Docker-Content-Digest": d.String(), "Content-Length": strconv.Itoa(len(content))}},
		{name: "range", method: "GET", path: "/v2/p/a/blobs/" + d.String(), user: "admin", header: map[string]string{"Range": "bytes=10-19"},
			status: 206, body: content[10:20], headers: map[string]string{"Content-Range": "bytes 10-19/3000"}},
		{name: "suffix range", method: "GET", path: "/v2/p/a/blobs/" + d.String(), user: "admin", header: map[string]string{"Range": "bytes=-5"},
			status: 206, body: content[len(content)-5:]},
		{name: "unsatisfiable range", method: "GET", path: "/v2/p/a/blobs/" + d.String(), user: "admin", header: map[string]string{"Range": "bytes=5000-6000"},
			status: 416},
		{name: "inverted range", method: "GET", path: "/v2/p/a/blobs/" + d.String(), user: "admin", header: map[string]string{"Range": "bytes=500-0"},
			status: 416},
		{name: "if-none-match", method: "GET", path: "/v2/p/a/blobs/" + d.String(), user: "admin", header: map[string]string{"If-None-Match": `"` + d.String() + `"`},
			status: 304},
		{name: "never pushed", method: "GET", path: "/v2/p/a/blobs/" + missing.String(), user: "admin", status: 404, code: codeBlobUnknown},
		{name: "head never pushed", method: "HEAD", path: "/v2/p/a/blobs/" + missing.String(), user: "admin", status: 404},
		{name: "linked only in another repository", method: "GET", path: "/v2/p/a/blobs/" + other.String(), user: "admin", status: 404, code: codeBlobUnknown},
		{name: "invalid digest", method: "GET", path: "/v2/p/a/blobs/sha256:nothex", user: "admin", status: 400, code: codeDigestInvalid},
		{name: "anonymous on private", method: "GET", path: "/v2/p/a/blobs/" + d.String(), status: 401, code: codeUnauthorized,
			headers: map[string]string{"WWW-Authenticate": `Basic realm="customs-test",scope="repository:p/a:pull"`}},
		{name: "denied", method: "GET", path: "/v2/p/a/blobs/" + d.String(), user: "bob", status: 403, code: codeDenied},
		{name: "anonymous on public", method: "GET", path: "/v2/pub/lib/blobs/" + public.String(), status: 200, body: []byte("public bytes")},
		{name: "denied before existence", method: "GET", path: "/v2/p/nothing/blobs/" + missing.String(), user: "bob", status: 403, code: codeDenied},
		{name: "post not allowed", method: "POST", path: "/v2/p/a/blobs/" + d.String(), user: "admin", status: 405, code: codeUnsupported,
			headers: map[string]string{"Allow": "GET, HEAD, DELETE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(req{method: tt.method, path: tt.path, user: tt.user, header: tt.header})
			e.expect(r, tt.status, tt.code)
			if tt.body != nil && !bytes.Equal(r.body, tt.body) {
				t.Errorf("body = %q, want %q", truncate(string(r.body), 40), truncate(string(tt.body), 40))
			}
			for k, v := range tt.headers {
				if got := r.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestBlobDelete(t *testing.T) {
	e := newEnv(t)
	d := e.pushBlob("p/a", []byte("to delete"))
	e.pushBlob("p/b", []byte("to delete"))
	e.expect(e.do(req{method: "DELETE", path: "/v2/p/a/blobs/" + d.String(), user: "bob"}), 403, codeDenied)
	e.expect(e.do(req{method: "DELETE", path: "/v2/p/a/blobs/" + d.String(), user: "admin"}), 202, "")
	e.expect(e.do(req{method: "HEAD", path: "/v2/p/a/blobs/" + d.String(), user: "admin"}), 404, "")
	e.expect(e.do(req{method: "DELETE", path: "/v2/p/a/blobs/" + d.String(), user: "admin"}), 404, codeBlobUnknown)
	// Unlinking in one repository leaves the others.
	e.expect(e.do(req{method: "HEAD", path: "/v2/p/b/blobs/" + d.String(), user: "admin"}), 200, "")
}

func TestBlobBytesMissing(t *testing.T) {
	e := newEnv(t)
	d := e.pushBlob("p/a", []byte("bytes removed behind the registry's back"))
	if err := e.blobs.Delete(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	e.expect(e.do(req{method: "GET", path: "/v2/p/a/blobs/" + d.String(), user: "admin"}), 404, codeBlobUnknown)
}

func TestMonolithicUpload(t *testing.T) {
	e := newEnv(t)
	content := []byte("monolithic content")
	d := digest.FromBytes(content)
	d512 := digest.SHA512.FromBytes(content)
	tests := []struct {
		name   string
		repo   string
		user   string
		query  string
		body   []byte
		status int
		code   string
		msg    string
	}{
		{name: "sha256", repo: "p/a", user: "admin", query: "digest=" + d.String(), body: content, status: 201},
		{name: "sha512", repo: "p/a", user: "admin", query: "digest=" + d512.String(), body: content, status: 201},
		{name: "again (already stored)", repo: "p/b", user: "admin", query: "digest=" + d.String(), body: content, status: 201},
		{name: "digest mismatch", repo: "p/a", user: "admin", query: "digest=" + digest.FromString("other").String(), body: content, status: 400, code: codeDigestInvalid},
		{name: "bad digest", repo: "p/a", user: "admin", query: "digest=sha256:zz", body: content, status: 400, code: codeDigestInvalid},
		{name: "unsupported algorithm", repo: "p/a", user: "admin", query: "digest=sha384:" + strings.Repeat("a", 96), body: content, status: 400, code: codeDigestInvalid},
		{name: "missing project", repo: "nope/a", user: "admin", query: "digest=" + d.String(), body: content, status: 404, code: codeNameUnknown,
			msg: `project "nope" does not exist; create it with: customs project create nope`},
		{name: "bad name", repo: "single", user: "admin", query: "digest=" + d.String(), body: content, status: 400, code: codeNameInvalid,
			msg: `invalid repository name "single": repository names are <project>/<name>`},
		{name: "push denied", repo: "pub/a", user: "bob", query: "digest=" + d.String(), body: content, status: 403, code: codeDenied},
		{name: "anonymous push", repo: "pub/a", user: "", query: "digest=" + d.String(), body: content, status: 401, code: codeUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(req{method: "POST", path: "/v2/" + tt.repo + "/blobs/uploads/?" + tt.query, user: tt.user, body: tt.body})
			e.expect(r, tt.status, tt.code)
			if tt.msg != "" && r.message() != tt.msg {
				t.Errorf("message = %q, want %q", r.message(), tt.msg)
			}
			if tt.status != 201 {
				return
			}
			dig := r.Header.Get("Docker-Content-Digest")
			if loc := r.Header.Get("Location"); loc != "/v2/"+tt.repo+"/blobs/"+dig {
				t.Errorf("Location = %q", loc)
			}
			g := e.do(req{method: "GET", path: r.Header.Get("Location"), user: "admin"})
			e.expect(g, 200, "")
			if !bytes.Equal(g.body, content) {
				t.Errorf("pulled %q", g.body)
			}
		})
	}
	// The mismatched upload stored nothing.
	bad := digest.FromString("other")
	if _, err := e.blobs.Stat(context.Background(), bad); !apperr.Is(err, apperr.ENOTFOUND) {
		t.Errorf("bytes of a mismatched upload: %v", err)
	}
	if _, err := e.db.Blob(context.Background(), bad); !apperr.Is(err, apperr.ENOTFOUND) {
		t.Errorf("record of a mismatched upload: %v", err)
	}
}
