package main

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/opencontainers/go-digest"
)

// testRegistry starts an in-memory registry, behind the token flow when gated.
func testRegistry(t *testing.T, gated bool) (addr string, gate *tokenGate) {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if gated {
		gate = newTokenGate(h, "admin", "secret")
		gate.projects[benchProject] = true
		h = gate
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), gate
}

func TestClientRoundTrip(t *testing.T) {
	d, err := newDigester("")
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := d.blobs(100_003, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		gated bool
	}{
		{"anonymous registry", false},
		{"token flow", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			addr, gate := testRegistry(t, tc.gated)
			base := newBaseTransport(2)
			c, err := newClient(ctx, base, addr, credentials{"admin", "secret"}, blobRepo, manifestRepo)
			if err != nil {
				t.Fatal(err)
			}
			tokensAfterLogin := int64(0)
			if gate != nil {
				tokensAfterLogin = gate.tokens.Load()
				if tokensAfterLogin != 1 {
					t.Fatalf("login fetched %d tokens, want 1", tokensAfterLogin)
				}
			}
			buf := make([]byte, 4096)
			for _, b := range blobs {
				if err := c.pushBlob(ctx, blobRepo, b); err != nil {
					t.Fatalf("push: %v", err)
				}
				if err := c.pullBlob(ctx, blobRepo, b, buf, true); err != nil {
					t.Fatalf("pull: %v", err)
				}
			}
			// A blob claimed under the wrong digest must be refused, not stored.
			bad := blobs[0]
			bad.seed++
			if err := c.pushBlob(ctx, blobRepo, bad); err == nil {
				t.Fatal("push of content not matching its digest succeeded")
			}
			// A pull that returns a different length than expected fails.
			short := blobs[1]
			short.size++
			if err := c.pullBlob(ctx, blobRepo, short, buf, false); err == nil || !strings.Contains(err.Error(), "want 100004") {
				t.Fatalf("pull of a blob of unexpected length: err = %v", err)
			}

			config := []byte(`{}`)
			if err := c.pushBody(ctx, manifestRepo, digest.FromBytes(config), int64(len(config)), strings.NewReader(string(config))); err != nil {
				t.Fatal(err)
			}
			m := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` +
				digest.FromBytes(config).String() + `","size":2},"layers":[]}`)
			dg, err := c.putManifest(ctx, manifestRepo, manifestTag, "application/vnd.oci.image.manifest.v1+json", m)
			if err != nil {
				t.Fatal(err)
			}
			for _, method := range []string{http.MethodHead, http.MethodGet} {
				if err := c.manifestRequest(ctx, method, manifestRepo, manifestTag, dg, int64(len(m))); err != nil {
					t.Errorf("%s: %v", method, err)
				}
				if err := c.manifestRequest(ctx, method, manifestRepo, manifestTag, digest.FromString("other"), int64(len(m))); err == nil {
					t.Errorf("%s accepted a wrong digest", method)
				}
			}
			if gate != nil && gate.tokens.Load() != tokensAfterLogin {
				t.Errorf("requests fetched %d more tokens, want none after login", gate.tokens.Load()-tokensAfterLogin)
			}
		})
	}
}

func TestClientWrongPassword(t *testing.T) {
	addr, _ := testRegistry(t, true)
	if _, err := newClient(context.Background(), newBaseTransport(1), addr, credentials{"admin", "nope"}, blobRepo); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
}

func TestUploadURL(t *testing.T) {
	req, _ := url.Parse("http://127.0.0.1:5000/v2/bench/blobs/blobs/uploads/")
	dg := digest.FromString("x")
	tests := []struct {
		name, location, want string
		wantErr              bool
	}{
		{"relative", "/v2/bench/blobs/blobs/uploads/abc", "http://127.0.0.1:5000/v2/bench/blobs/blobs/uploads/abc?digest=" + url.QueryEscape(dg.String()), false},
		{"absolute keeps state", "http://127.0.0.1:5000/v2/r/blobs/uploads/abc?_state=xyz%3D", "http://127.0.0.1:5000/v2/r/blobs/uploads/abc?_state=xyz%3D&digest=" + url.QueryEscape(dg.String()), false},
		{"missing", "", "", true},
		{"malformed", "http://[::1", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := uploadURL(req, tc.location, dg)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPullVerifiesDigest(t *testing.T) {
	d, _ := newDigester("")
	blobs, err := d.blobs(1000, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	// A server that answers every blob GET with blob 1's content.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		io.Copy(w, newStream(blobs[1].seed, blobs[1].size))
	}))
	defer srv.Close()
	c, err := newClient(context.Background(), newBaseTransport(1), strings.TrimPrefix(srv.URL, "http://"), credentials{}, blobRepo)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if err := c.pullBlob(context.Background(), blobRepo, blobs[1], buf, true); err != nil {
		t.Fatalf("right content: %v", err)
	}
	if err := c.pullBlob(context.Background(), blobRepo, blobs[0], buf, true); err == nil || !strings.Contains(err.Error(), "content has digest") {
		t.Fatalf("wrong content: err = %v", err)
	}
	if err := c.pullBlob(context.Background(), blobRepo, blobs[0], buf, false); err != nil {
		t.Fatalf("without verify only the length is checked: %v", err)
	}
}
