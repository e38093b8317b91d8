package e2e_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/test/e2e/harness"
)

// disconnectMiB is a mebibyte, the unit of the disconnect test's blobs.
const disconnectMiB = 1 << 20

// TestDisconnectMidUpload drops the connection in the middle of an upload
// request, in each way a client can, and checks that the bytes of the cut
// request are not acknowledged (the session stays at what was acknowledged
// before, as GET status's Range says), that no blob becomes visible, and
// that the upload then completes from the acknowledged offset with the
// right digest, also after the server was killed and restarted in between.
func TestDisconnectMidUpload(t *testing.T) {
	t.Parallel()
	srv := harness.StartCustoms(t)
	srv.CreateProject(t, "drop", false)

	tests := []struct {
		name string
		// request returns the request line and headers of the request that
		// is cut, sending content[from:] to the session at path.
		request func(path string, from int, content []byte) string
		reset   bool // drop with a TCP reset rather than a close
		// kill: instead of the client dropping the connection, the server
		// is killed (SIGKILL) while the request is in flight, and restarted.
		kill bool
	}{
		{
			name: "streamed PATCH, chunked transfer encoding, connection closed",
			request: func(path string, _ int, _ []byte) string {
				return "PATCH " + path + " HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
			},
		},
		{
			name: "chunk PATCH with Content-Range, connection reset",
			request: func(path string, from int, content []byte) string {
				return fmt.Sprintf("PATCH %s HTTP/1.1\r\nContent-Range: %d-%d\r\nContent-Length: %d\r\n",
					path, from, len(content)-1, len(content)-from)
			},
			reset: true,
		},
		{
			name: "closing PUT with the last chunk, connection closed",
			request: func(path string, from int, content []byte) string {
				return fmt.Sprintf("PUT %sdigest=%s HTTP/1.1\r\nContent-Length: %d\r\n",
					withQuery(path), digest.FromBytes(content), len(content)-from)
			},
		},
		{
			name: "chunk PATCH in flight when the server is killed, resumed after the restart",
			request: func(path string, from int, content []byte) string {
				return fmt.Sprintf("PATCH %s HTTP/1.1\r\nContent-Range: %d-%d\r\nContent-Length: %d\r\n",
					path, from, len(content)-1, len(content)-from)
			},
			kill: true,
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := srv
			if tc.kill {
				// Its own server, so that killing it disturbs no other case.
				s = harness.StartCustoms(t)
				s.CreateProject(t, "drop", false)
			}
			api := newRegAPI(s)
			repo := fmt.Sprintf("drop/case-%d", i)
			content := randomBytes(uint64(i), 4*disconnectMiB)
			d := digest.FromBytes(content)
			acked := disconnectMiB // acknowledged before the cut

			r := api.must(t, http.StatusAccepted, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil)
			loc := r.Header.Get("Location")
			r = api.must(t, http.StatusAccepted, http.MethodPatch, loc, content[:acked],
				"Content-Type", "application/octet-stream", "Content-Range", fmt.Sprintf("0-%d", acked-1))
			loc = r.Header.Get("Location")

			// Send half of the rest and wait until the server serves the
			// request (the metrics request is the other one in flight),
			// then cut.
			head := tc.request(loc, acked, content)
			body := content[acked : acked+(len(content)-acked)/2]
			if strings.Contains(head, "chunked") {
				body = chunked(body, 64<<10) // no terminating chunk: the stream is cut
			}
			conn := startRequest(t, s, head, body)
			waitInFlight(t, api, "the request to cut to be served", func(n int) bool { return n >= 2 })
			// Status reads never take the session: during the request it
			// answers what was acknowledged before.
			wantRange := fmt.Sprintf("0-%d", acked-1)
			if got := api.must(t, http.StatusNoContent, http.MethodGet, loc, nil).Header.Get("Range"); got != wantRange {
				t.Fatalf("upload status during the request: Range %q, want %q", got, wantRange)
			}
			if tc.kill {
				s.Kill(t)
				conn.Close()
				s = harness.StartCustoms(t, harness.Options{DataDir: s.DataDir, Password: s.Password})
				api = newRegAPI(s)
			} else {
				drop(t, conn, tc.reset)
				waitInFlight(t, api, "the cut request to end", func(n int) bool { return n == 1 })
			}

			// Once the server has let go of the cut request, the session is
			// still at what was acknowledged before it.
			st := api.must(t, http.StatusNoContent, http.MethodGet, loc, nil)
			if got := st.Header.Get("Range"); got != wantRange {
				t.Fatalf("upload status after the cut: Range %q, want %q (only acknowledged bytes count)", got, wantRange)
			}
			if err := api.blobAbsent(repo, d); err != nil {
				t.Fatalf("after the cut: %v", err)
			}

			// Resume from the acknowledged offset and finish.
			r = api.must(t, http.StatusAccepted, http.MethodPatch, st.Header.Get("Location"), content[acked:],
				"Content-Type", "application/octet-stream", "Content-Range", fmt.Sprintf("%d-%d", acked, len(content)-1))
			if got, want := r.Header.Get("Range"), fmt.Sprintf("0-%d", len(content)-1); got != want {
				t.Errorf("after resuming: Range %q, want %q", got, want)
			}
			r = api.must(t, http.StatusCreated, http.MethodPut, withQuery(r.Header.Get("Location"))+"digest="+d.String(), nil)
			if got := r.Header.Get("Docker-Content-Digest"); got != d.String() {
				t.Errorf("closing PUT: Docker-Content-Digest %q, want %s", got, d)
			}
			if err := api.blobIntact(repo, d, int64(len(content))); err != nil {
				t.Error(err)
			}
		})
	}

	// A monolithic upload (POST ?digest=) cut short leaves nothing behind,
	// and the same upload then succeeds.
	t.Run("monolithic POST, connection reset", func(t *testing.T) {
		api := newRegAPI(srv)
		repo := "drop/monolithic"
		content := randomBytes(99, 4*disconnectMiB)
		d := digest.FromBytes(content)
		head := fmt.Sprintf("POST /v2/%s/blobs/uploads/?digest=%s HTTP/1.1\r\nContent-Length: %d\r\n", repo, d, len(content))
		conn := startRequest(t, srv, head, content[:len(content)/2])
		// The cut request is being served (the metrics request is the other
		// one in flight), then cut, then done with.
		waitInFlight(t, api, "the cut POST to be served", func(n int) bool { return n >= 2 })
		if err := api.blobAbsent(repo, d); err != nil {
			t.Fatalf("during the upload: %v", err)
		}
		drop(t, conn, true)
		waitInFlight(t, api, "the cut POST to end", func(n int) bool { return n == 1 })
		if err := api.blobAbsent(repo, d); err != nil {
			t.Fatalf("after the cut: %v", err)
		}
		api.must(t, http.StatusCreated, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), content,
			"Content-Type", "application/octet-stream")
		if err := api.blobIntact(repo, d, int64(len(content))); err != nil {
			t.Error(err)
		}
	})
}

// randomBytes returns n random bytes from a generator seeded with seed.
func randomBytes(seed uint64, n int) []byte {
	var key [32]byte
	key[0], key[1] = byte(seed), 0xd7
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b) // ChaCha8.Read never fails
	return b
}

// withQuery returns path followed by "?" or "&", ready for one more
// query parameter.
func withQuery(path string) string {
	if strings.Contains(path, "?") {
		return path + "&"
	}
	return path + "?"
}

// chunked encodes b as HTTP/1.1 chunks of at most size bytes, without the
// terminating empty chunk.
func chunked(b []byte, size int) []byte {
	var out bytes.Buffer
	for len(b) > 0 {
		n := min(size, len(b))
		fmt.Fprintf(&out, "%x\r\n", n)
		out.Write(b[:n])
		out.WriteString("\r\n")
		b = b[n:]
	}
	return out.Bytes()
}

// startRequest opens a connection to srv and sends head (request line and
// headers, each ending in CRLF) with Host, Basic credentials and a
// Content-Type added, then body, and returns the connection without reading
// from it.
func startRequest(t *testing.T, srv *harness.Server, head string, body []byte) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", srv.Addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	creds := base64.StdEncoding.EncodeToString([]byte(srv.Username + ":" + srv.Password))
	head += "Host: " + srv.Addr + "\r\nAuthorization: Basic " + creds + "\r\nContent-Type: application/octet-stream\r\n\r\n"
	_ = conn.SetWriteDeadline(time.Now().Add(time.Minute))
	if _, err := conn.Write(append([]byte(head), body...)); err != nil {
		t.Fatalf("sending the request to cut: %v", err)
	}
	return conn
}

// drop closes conn, with a TCP reset (SO_LINGER 0) when reset.
func drop(t *testing.T, conn net.Conn, reset bool) {
	t.Helper()
	if reset {
		if err := conn.(*net.TCPConn).SetLinger(0); err != nil {
			t.Fatal(err)
		}
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
}

// waitInFlight polls the server's customs_http_requests_in_flight gauge
// (which counts the metrics request itself) until ok accepts it.
func waitInFlight(t *testing.T, api *regAPI, what string, ok func(int) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	re := regexp.MustCompile(`(?m)^customs_http_requests_in_flight (\d+)`)
	for {
		r := api.must(t, http.StatusOK, http.MethodGet, "/metrics", nil)
		m := re.FindSubmatch(r.Body)
		if m == nil {
			t.Fatal("GET /metrics has no customs_http_requests_in_flight")
		}
		n, _ := strconv.Atoi(string(m[1]))
		if ok(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 30 s for %s; requests in flight: %d", what, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
