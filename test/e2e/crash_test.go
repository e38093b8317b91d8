package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/test/e2e/harness"
)

// crashPushes is how many images are pushed at once in each round.
const crashPushes = 20

// crashPush is one image pushed while the server may be killed, with what
// the client saw of it.
type crashPush struct {
	repo, tag string
	img       v1.Image
	digest    digest.Digest
	blobs     []v1.Descriptor

	uploaded     atomic.Int64 // blob bytes the client sent
	manifestSent atomic.Bool  // the manifest PUT was (at least) started
	acked        atomic.Bool  // the manifest PUT was answered 201
	err          error        // what the push returned
}

func (p *crashPush) String() string { return p.repo + ":" + p.tag }

// ackTransport records what the client saw of one push: blob bytes sent,
// the manifest PUT started and its 201. With stall set, blob uploads stall
// after stallAfter bytes until stall is closed.
type ackTransport struct {
	base       http.RoundTripper
	push       *crashPush
	onAck      func()
	stallAfter int64
	stall      <-chan struct{}
}

func (a *ackTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	manifestPut := r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/")
	if manifestPut {
		a.push.manifestSent.Store(true)
	}
	if r.Body != nil && strings.Contains(r.URL.Path, "/blobs/uploads/") {
		r.Body = &countingBody{ReadCloser: r.Body, n: &a.push.uploaded, stallAfter: a.stallAfter, stall: a.stall}
	}
	resp, err := a.base.RoundTrip(r)
	if manifestPut && err == nil && resp.StatusCode == http.StatusCreated {
		a.push.acked.Store(true)
		a.onAck()
	}
	return resp, err
}

// countingBody adds the bytes read through it to n. With stall set, a read
// once stallAfter bytes went through blocks until stall is closed and then
// fails: a client stuck mid-upload.
type countingBody struct {
	io.ReadCloser
	n          *atomic.Int64
	stallAfter int64
	stall      <-chan struct{}
}

func (c *countingBody) Read(p []byte) (int, error) {
	if c.stall != nil && c.n.Load() >= c.stallAfter {
		<-c.stall
		return 0, errors.New("stalled upload released after the kill")
	}
	k, err := c.ReadCloser.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// TestCrashDuringConcurrentPushes kills the server (SIGKILL) while 20 images
// are being pushed at once, in three rounds cut at different moments, and
// restarts it on the same data each time. Every push that was acknowledged
// (manifest PUT answered 201) must pull back whole, byte for byte; no tag or
// manifest may exist that was never sent; nothing partial may be visible;
// the cut-off pushes must succeed when redone; and `customs gc` afterwards
// must leave every image intact.
//
// The pushes are go-containerregistry's remote.Write in this process rather
// than crane subprocesses: a wrapping transport sees exactly when each
// manifest PUT was sent and answered 201 (a process exit would only say so
// later), and 20 processes would compete with the server for two cores.
// Image i of a round is about (i+1)·0.6 MiB, so with the bandwidth shared
// the small ones finish first and the large ones are mid-upload when the
// server is killed.
func TestCrashDuringConcurrentPushes(t *testing.T) {
	t.Parallel()
	srv := harness.StartCustoms(t)
	srv.CreateProject(t, "crash", false)

	var all []*crashPush
	for round, killAt := range []int{2, 8, 14} {
		pushes := makeCrashPushes(t, round)
		all = append(all, pushes...)
		pushAndKill(t, srv, pushes, killAt)

		srv = harness.StartCustoms(t, harness.Options{DataDir: srv.DataDir, Password: srv.Password})
		api := newRegAPI(srv)
		verifyAfterCrash(t, api, all)
		if t.Failed() {
			return
		}

		// The pushes that were cut off are pushed again, whole.
		for _, p := range pushes {
			if p.acked.Load() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			err := pushImage(ctx, srv, srv.Addr+"/"+p.String(), p.img)
			cancel()
			if err != nil {
				t.Fatalf("round %d: pushing %s again after the restart: %v", round, p, err)
			}
			p.manifestSent.Store(true)
			p.acked.Store(true)
			if _, err := api.manifestIntact(p.repo, p.tag); err != nil {
				t.Errorf("round %d: %s pushed again: %v", round, p, err)
			}
		}
	}

	// A garbage collection with no grace period, while the server runs,
	// removes a blob that nothing references and nothing else.
	api := newRegAPI(srv)
	orphan := []byte("a blob no manifest references " + strconv.FormatInt(time.Now().UnixNano(), 10))
	od := digest.FromBytes(orphan)
	api.must(t, http.StatusCreated, http.MethodPost, "/v2/crash/orphan/blobs/uploads/?digest="+od.String(), orphan,
		"Content-Type", "application/octet-stream")
	cmd := exec.Command(harness.CustomsBinary(t), "gc", "--data-dir", srv.DataDir, "--grace-period", "0s")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("customs gc: %v\n%s", err, out)
	}
	t.Logf("customs gc: %s", strings.TrimSpace(string(out)))
	if m := regexp.MustCompile(`deleted (\d+) blobs`).FindStringSubmatch(string(out)); m == nil || m[1] == "0" {
		t.Errorf("customs gc deleted no blob; the orphan %s should have gone:\n%s", od, out)
	}
	if err := api.blobAbsent("crash/orphan", od); err != nil {
		t.Errorf("after gc: %v", err)
	}
	for _, p := range all {
		if d, err := api.manifestIntact(p.repo, p.tag); err != nil {
			t.Errorf("after gc: %s: %v", p, err)
		} else if d != p.digest {
			t.Errorf("after gc: %s is %s, pushed %s", p, d, p.digest)
		}
	}
}

// makeCrashPushes returns the images of one round: crash/img-<i>:r<round>,
// image i with three layers of about (i+1)·200 KiB each.
func makeCrashPushes(t *testing.T, round int) []*crashPush {
	t.Helper()
	pushes := make([]*crashPush, crashPushes)
	for i := range pushes {
		step := (i + 1) * 200 << 10
		img := randomImage(t, uint64(round*1000+i), step, step+64<<10, step/2+1)
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		pushes[i] = &crashPush{
			repo: fmt.Sprintf("crash/img-%02d", i), tag: fmt.Sprintf("r%d", round),
			img: img, digest: digest.Digest(d.String()), blobs: imageBlobs(t, img),
		}
	}
	return pushes
}

// crashStalled is how many pushes of a round stall mid-upload until the
// kill, so that every kill catches uploads in progress however the others
// are timed.
const crashStalled = 4

// pushAndKill pushes every image at once, kills the server with SIGKILL as
// soon as killAt manifests were acknowledged, and waits for the pushes to
// end. crashStalled of the pushes (the largest) send 256 KiB of their blobs
// and then wait for the kill; the others run freely, the small ones ending
// first. It fails the test if a push fails before the kill.
func pushAndKill(t *testing.T, srv *harness.Server, pushes []*crashPush, killAt int) {
	t.Helper()
	if killAt > len(pushes)-crashStalled {
		t.Fatalf("killAt %d: only %d pushes can finish before the kill", killAt, len(pushes)-crashStalled)
	}
	acks := make(chan struct{}, len(pushes))
	ended := make(chan *crashPush, len(pushes))
	killed := make(chan struct{})
	base := &http.Transport{MaxIdleConnsPerHost: 64, ResponseHeaderTimeout: time.Minute}
	defer base.CloseIdleConnections()
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	release := sync.OnceFunc(func() { close(killed) })
	defer release() // also when the test fails before the kill

	for i, p := range pushes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &ackTransport{base: base, push: p, onAck: func() { acks <- struct{}{} }}
			if i >= len(pushes)-crashStalled {
				tr.stallAfter, tr.stall = 256<<10, killed
			}
			p.err = pushImage(ctx, srv, srv.Addr+"/"+p.String(), p.img,
				remote.WithTransport(tr),
				// A push cut off by the kill must fail, not retry.
				remote.WithRetryPredicate(func(error) bool { return false }),
				remote.WithRetryStatusCodes())
			ended <- p
		}()
	}

	for n := 0; n < killAt; {
		select {
		case <-acks:
			n++
		case p := <-ended:
			if p.err != nil {
				t.Fatalf("%s failed before the server was killed: %v", p, p.err)
			}
		case <-ctx.Done():
			t.Fatalf("only %d of %d pushes acknowledged after 3 minutes", n, killAt)
		}
	}
	srv.Kill(t)
	release()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("pushes still running 2 minutes after the server was killed")
	}

	var acked, inFlight, midUpload, notStarted int
	for _, p := range pushes {
		switch {
		case p.acked.Load():
			acked++
			if p.err != nil {
				t.Errorf("%s: manifest PUT answered 201 but the push failed: %v", p, p.err)
			}
		case p.manifestSent.Load():
			inFlight++
		case p.uploaded.Load() > 0:
			midUpload++
		default:
			notStarted++
		}
	}
	t.Logf("killed after %d acknowledgements: %d acknowledged, %d with the manifest PUT in flight, %d mid-upload, %d not uploading yet",
		killAt, acked, inFlight, midUpload, notStarted)
	if midUpload < crashStalled {
		t.Fatalf("%d pushes were mid-upload at the kill, want at least the %d stalled ones", midUpload, crashStalled)
	}
}

// verifyAfterCrash checks the registry after a restart against what the
// clients saw before the crash.
func verifyAfterCrash(t *testing.T, api *regAPI, pushes []*crashPush) {
	t.Helper()
	byRef := map[string]*crashPush{}
	for _, p := range pushes {
		byRef[p.String()] = p
	}

	// Every acknowledged image is there, whole.
	for _, p := range pushes {
		if !p.acked.Load() {
			continue
		}
		if d, err := api.manifestIntact(p.repo, p.tag); err != nil {
			t.Errorf("acknowledged %s: %v", p, err)
		} else if d != p.digest {
			t.Errorf("acknowledged %s is %s, pushed %s", p, d, p.digest)
		}
	}

	// What was not acknowledged is absent, or (a manifest PUT cut off
	// after the server committed it) whole; a blob is absent or whole.
	for _, p := range pushes {
		if p.acked.Load() {
			continue
		}
		tagged := api.mustStatus(t, http.MethodHead, "/v2/"+p.repo+"/manifests/"+p.tag)
		byDigest := api.mustStatus(t, http.MethodHead, "/v2/"+p.repo+"/manifests/"+p.digest.String())
		switch {
		case !p.manifestSent.Load() && (tagged != http.StatusNotFound || byDigest != http.StatusNotFound):
			t.Errorf("%s: its manifest was never sent, but HEAD by tag answers %d and by digest %d (want 404)", p, tagged, byDigest)
		case tagged == http.StatusOK || byDigest == http.StatusOK:
			d, err := api.manifestIntact(p.repo, p.digest.String())
			if err != nil {
				t.Errorf("%s: committed but unacknowledged manifest is not whole: %v", p, err)
			} else if d != p.digest {
				t.Errorf("%s: is %s, pushed %s", p, d, p.digest)
			} else {
				t.Logf("%s: the manifest PUT cut off by the kill had been committed; it is whole", p)
			}
		}
		for _, b := range p.blobs {
			d := digest.Digest(b.Digest.String())
			switch st := api.mustStatus(t, http.MethodHead, "/v2/"+p.repo+"/blobs/"+d.String()); st {
			case http.StatusNotFound:
			case http.StatusOK:
				if err := api.blobIntact(p.repo, d, b.Size); err != nil {
					t.Errorf("%s: a blob of an unacknowledged push is visible but not whole: %v", p, err)
				}
			default:
				t.Errorf("%s: HEAD blob %s answers %d, want 200 or 404", p, d, st)
			}
		}
	}

	// Whatever the registry lists is one of the images pushed, whole.
	for _, repo := range api.catalog(t) {
		for _, tag := range api.tags(t, repo) {
			ref := repo + ":" + tag
			p, ok := byRef[ref]
			if !ok || !p.manifestSent.Load() {
				t.Errorf("the registry lists %s, which no client ever sent a manifest for", ref)
				continue
			}
			if d, err := api.manifestIntact(repo, tag); err != nil {
				t.Errorf("listed %s: %v", ref, err)
			} else if d != p.digest {
				t.Errorf("listed %s is %s, pushed %s", ref, d, p.digest)
			}
		}
	}
}

// mustStatus returns the status of method path, failing the test on a
// transport error.
func (a *regAPI) mustStatus(t testing.TB, method, path string) int {
	t.Helper()
	r, err := a.call(method, path, nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r.Status
}
