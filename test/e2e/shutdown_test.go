package e2e_test

import (
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/test/e2e/harness"
)

// shutdownUploadSize is the size of the upload in flight during the
// graceful shutdown.
const shutdownUploadSize = 200 << 20

// shutdownStallAt is where that upload stalls until the test has checked
// the server's state during the shutdown.
const shutdownStallAt = 16 << 20

// TestShutdownFinishesInFlightUpload sends SIGTERM while a 200 MiB upload is
// in flight (its client stalled after 16 MiB). The server must refuse new
// connections at once, let the upload finish with 201, and then exit 0; the
// blob must be whole after a restart.
//
// /readyz answering 503 during the shutdown cannot be observed: the
// listener closes as the server turns not-ready, and Go's http.Server drops
// any request it reads once Shutdown has begun, without an answer.
func TestShutdownFinishesInFlightUpload(t *testing.T) {
	t.Parallel()
	srv := harness.StartCustoms(t)
	srv.CreateProject(t, "shutdown", false)
	api := newRegAPI(srv)
	const repo = "shutdown/big"

	h := sha256.New()
	if _, err := io.Copy(h, newRandomStream(7, shutdownUploadSize, nil)); err != nil {
		t.Fatal(err)
	}
	d := digest.NewDigest(digest.SHA256, h)

	// The upload: one monolithic POST whose body stalls after 16 MiB.
	resume := make(chan struct{})
	stalled := make(chan struct{})
	body := newRandomStream(7, shutdownUploadSize, &streamStall{at: shutdownStallAt, reached: stalled, resume: resume})
	req, err := http.NewRequest(http.MethodPost, srv.URL()+"/v2/"+repo+"/blobs/uploads/?digest="+d.String(), body)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(srv.Username, srv.Password)
	req.Header.Set("Content-Type", "application/octet-stream")
	req.ContentLength = shutdownUploadSize
	type result struct {
		resp apiResponse
		err  error
	}
	uploaded := make(chan result, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
		if err != nil {
			uploaded <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		uploaded <- result{apiResponse{Status: resp.StatusCode, Header: resp.Header, Body: b}, err}
	}()
	released := false
	release := func() {
		if !released {
			released = true
			close(resume)
		}
	}
	defer release()
	select {
	case <-stalled:
	case r := <-uploaded:
		t.Fatalf("the upload ended before it stalled: %v %s", r.err, r.resp)
	case <-time.After(2 * time.Minute):
		t.Fatal("the upload did not reach 16 MiB within 2 minutes")
	}
	waitInFlight(t, api, "the upload to be served", func(n int) bool { return n >= 2 })

	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		srv.Stop(t) // SIGTERM; fails the test unless the server exits 0
	}()

	// New connections are refused once the shutdown began.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", srv.Addr, 5*time.Second)
		if err != nil {
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("a new connection during the shutdown: %v, want connection refused", err)
			}
			break
		}
		c.Close()
		select {
		case <-stopped:
			t.Fatal("the server exited before the in-flight upload finished")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("new connections still accepted 30 s after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}

	select {
	case <-stopped:
		t.Fatal("the server exited while an upload was in flight")
	default:
	}
	release()
	var r result
	select {
	case r = <-uploaded:
	case <-time.After(3 * time.Minute):
		t.Fatal("the upload did not finish within 3 minutes of its release")
	}
	if r.err != nil {
		t.Fatalf("the upload in flight during the shutdown failed: %v", r.err)
	}
	if r.resp.Status != http.StatusCreated || r.resp.Header.Get("Docker-Content-Digest") != d.String() {
		t.Fatalf("the upload in flight during the shutdown: %s (Docker-Content-Digest %q), want 201 for %s",
			r.resp, r.resp.Header.Get("Docker-Content-Digest"), d)
	}
	select {
	case <-stopped:
	case <-time.After(time.Minute):
		t.Fatal("the server did not exit within a minute of the last upload")
	}

	srv = harness.StartCustoms(t, harness.Options{DataDir: srv.DataDir, Password: srv.Password})
	if err := newRegAPI(srv).blobIntact(repo, d, shutdownUploadSize); err != nil {
		t.Errorf("after the restart: %v", err)
	}
}

// streamStall makes a randomStream stop at byte at: it closes reached and
// waits for resume.
type streamStall struct {
	at      int64
	reached chan<- struct{}
	resume  <-chan struct{}
}

// randomStream is size random bytes from a generator seeded with seed,
// produced as they are read.
type randomStream struct {
	src   *rand.ChaCha8
	left  int64
	read  int64
	stall *streamStall
}

// newRandomStream returns a randomStream; stall may be nil.
func newRandomStream(seed uint64, size int64, stall *streamStall) *randomStream {
	var key [32]byte
	key[0], key[1] = byte(seed), 0x5d
	return &randomStream{src: rand.NewChaCha8(key), left: size, stall: stall}
}

func (s *randomStream) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	n := int64(len(p))
	if n > s.left {
		n = s.left
	}
	if st := s.stall; st != nil {
		done := s.read
		if done == st.at {
			close(st.reached)
			<-st.resume
			s.stall = nil
		} else if done+n > st.at {
			n = st.at - done
		}
	}
	_, _ = s.src.Read(p[:n]) // ChaCha8.Read never fails
	s.left -= n
	s.read += n
	return int(n), nil
}
