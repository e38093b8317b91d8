package registryaudit_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/audit/registryaudit"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/blob/fs"
	"github.com/customs-dev/customs/internal/registry"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/sqlite"
)

// memRecorder keeps what it is told.
type memRecorder struct {
	mu     sync.Mutex
	events []audit.Event
}

func (r *memRecorder) Record(_ context.Context, e audit.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func TestEvents(t *testing.T) {
	d := digest.FromString("m")
	m := &store.Manifest{Repository: "proj/app", Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 42}
	alice := auth.Principal{Kind: auth.KindUser, Name: "alice"}
	robot := auth.Principal{Kind: auth.KindRobot, Name: "robot$proj+ci", Token: true}
	for _, tc := range []struct {
		name string
		call func(ev *registryaudit.Events)
		want audit.Event
	}{
		{"push", func(ev *registryaudit.Events) {
			ev.ManifestPushed(context.Background(), alice, m, []string{"v1", "latest"})
		},
			audit.Event{ActorKind: "user", Actor: "alice", Action: "artifact.push", Resource: "repository:proj/app@" + d.String(),
				Project: "proj", Outcome: audit.Success,
				Details: map[string]string{"tags": "v1,latest", "mediaType": m.MediaType, "size": "42"}}},
		{"pull by a robot", func(ev *registryaudit.Events) { ev.ManifestPulled(context.Background(), robot, m) },
			audit.Event{ActorKind: "robot", Actor: "robot$proj+ci", Action: "artifact.pull", Resource: "repository:proj/app@" + d.String(),
				Project: "proj", Outcome: audit.Success, Details: map[string]string{"mediaType": m.MediaType, "size": "42"}}},
		{"anonymous pull", func(ev *registryaudit.Events) { ev.ManifestPulled(context.Background(), auth.Anonymous, m) },
			audit.Event{ActorKind: "anonymous", Action: "artifact.pull", Resource: "repository:proj/app@" + d.String(),
				Project: "proj", Outcome: audit.Success, Details: map[string]string{"mediaType": m.MediaType, "size": "42"}}},
		{"tag delete", func(ev *registryaudit.Events) { ev.ManifestDeleted(context.Background(), alice, "proj/app", d, "v1") },
			audit.Event{ActorKind: "user", Actor: "alice", Action: "artifact.delete", Resource: "repository:proj/app@" + d.String(),
				Project: "proj", Outcome: audit.Success, Details: map[string]string{"tag": "v1"}}},
		{"push denied", func(ev *registryaudit.Events) {
			ev.Refused(context.Background(), robot, "proj/app", []string{"pull", "push"},
				apperr.Errorf(apperr.EUNAUTHORIZED, "requested access to the resource is denied").WithDetail("DENIED"))
		}, audit.Event{ActorKind: "robot", Actor: "robot$proj+ci", Action: "artifact.push", Resource: "repository:proj/app",
			Project: "proj", Outcome: audit.Denied, Reason: "requested access to the resource is denied",
			Details: map[string]string{"actions": "pull,push", "code": "unauthorized"}}},
		{"delete failed", func(ev *registryaudit.Events) {
			ev.Refused(context.Background(), alice, "proj/app", []string{"delete"}, apperr.Errorf(apperr.ENOTFOUND, "manifest unknown"))
		}, audit.Event{ActorKind: "user", Actor: "alice", Action: "artifact.delete", Resource: "repository:proj/app",
			Project: "proj", Outcome: audit.Failure, Reason: "manifest unknown",
			Details: map[string]string{"actions": "delete", "code": "not_found"}}},
		{"pull denied", func(ev *registryaudit.Events) {
			ev.Refused(context.Background(), alice, "proj/app", []string{"pull"}, apperr.Errorf(apperr.EDENIED, "no"))
		}, audit.Event{ActorKind: "user", Actor: "alice", Action: "artifact.pull", Resource: "repository:proj/app",
			Project: "proj", Outcome: audit.Denied, Reason: "no", Details: map[string]string{"actions": "pull", "code": "denied"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &memRecorder{}
			tc.call(registryaudit.New(rec))
			if len(rec.events) != 1 {
				t.Fatalf("%d events recorded, want 1", len(rec.events))
			}
			if got := fmt.Sprintf("%+v", rec.events[0]); got != fmt.Sprintf("%+v", tc.want) {
				t.Errorf("event\n %s\nwant\n %s", got, fmt.Sprintf("%+v", tc.want))
			}
			if err := audit.Validate(rec.events[0]); err != nil {
				t.Errorf("the event is not valid: %v", err)
			}
		})
	}
}

// guard lets alice do everything and guest pull; passwords are "pw".
type guard struct{}

func (guard) Authenticate(r *http.Request) (auth.Principal, error) {
	u, pw, ok := r.BasicAuth()
	if !ok {
		return auth.Anonymous, nil
	}
	if pw != "pw" || (u != "alice" && u != "guest") {
		return auth.Principal{}, apperr.Errorf(apperr.EUNAUTHORIZED, "bad credentials")
	}
	return auth.Principal{Kind: auth.KindUser, Name: u}, nil
}

func (guard) Authorize(_ context.Context, p auth.Principal, a auth.Access) error {
	switch {
	case p.Kind == auth.KindAnonymous:
		return apperr.Errorf(apperr.EUNAUTHORIZED, "authentication required")
	case p.Name == "alice":
		return nil
	}
	for _, act := range a.Actions {
		if act != auth.ActionPull {
			return apperr.Errorf(apperr.EDENIED, "requested access to the resource is denied")
		}
	}
	return nil
}

func (g guard) Entitled(ctx context.Context, p auth.Principal, repo, action string) bool {
	return g.Authorize(ctx, p, auth.Access{Type: auth.TypeRepository, Name: repo, Actions: []string{action}}) == nil
}

func (guard) Challenge(*http.Request, ...auth.Access) string { return `Basic realm="test"` }

// withClient puts the client's address and user agent in the request
// context, as the server's middleware does.
func withClient(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, _, _ := net.SplitHostPort(r.RemoteAddr)
		h.ServeHTTP(w, r.WithContext(audit.WithClient(r.Context(), ip, r.UserAgent())))
	})
}

// newRegistry returns a registry handler over fresh SQLite and filesystem
// stores holding project "proj", recording to events if not nil.
func newRegistry(t testing.TB, events registry.Events) (http.Handler, *sqlite.DB) {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "meta.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := fs.New(filepath.Join(dir, "blobs"), fs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateProject(context.Background(), &store.Project{Name: "proj"}); err != nil {
		t.Fatal(err)
	}
	return registry.New(registry.Options{
		Store: db, Projects: db, Blobs: blobs, Guard: guard{}, Events: events,
		UploadSecret: bytes.Repeat([]byte("k"), registry.MinUploadSecret),
	}), db
}

// TestOverRegistry pushes, pulls and deletes with a real client against
// the registry, audited through a Writer into the same SQLite store.
func TestOverRegistry(t *testing.T) {
	var w *audit.Writer
	ev := &lateEvents{}
	h, db := newRegistry(t, ev)
	w = audit.NewWriter(audit.WriterOptions{Store: db})
	ev.Events = registryaudit.New(w)
	srv := httptest.NewServer(withClient(h))
	defer srv.Close()

	host := strings.TrimPrefix(srv.URL, "http://")
	ref, err := name.ParseReference(host+"/proj/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	dg, _ := img.Digest()
	alice := remote.WithAuth(&authn.Basic{Username: "alice", Password: "pw"})
	guest := remote.WithAuth(&authn.Basic{Username: "guest", Password: "pw"})
	if err := remote.Write(ref, img, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Get(ref, guest); err != nil {
		t.Fatal(err)
	}
	other, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, other, guest); err == nil {
		t.Fatal("guest pushed")
	}
	if err := remote.Delete(ref.Context().Digest(dg.String()), alice); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	got, err := db.AuditEvents(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var summary []string
	for i := len(got) - 1; i >= 0; i-- {
		e := got[i]
		summary = append(summary, fmt.Sprintf("%s %s %s", e.Actor, e.Action, e.Outcome))
		if e.ClientIP != "127.0.0.1" || !strings.Contains(e.UserAgent, "go-containerregistry") {
			t.Errorf("event %d: client %q, agent %q; want the test client's", e.ID, e.ClientIP, e.UserAgent)
		}
		if e.Project != "proj" || !strings.HasPrefix(e.Resource, "repository:proj/app") {
			t.Errorf("event %d: project %q, resource %q", e.ID, e.Project, e.Resource)
		}
	}
	joined := strings.Join(summary, "\n")
	for _, want := range []string{"alice artifact.push success", "guest artifact.pull success", "guest artifact.push denied", "alice artifact.delete success"} {
		if !strings.Contains(joined, want) {
			t.Errorf("audit trail lacks %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "guest artifact.push success") {
		t.Errorf("a refused push was recorded as a success:\n%s", joined)
	}
	rep, err := audit.VerifyStore(context.Background(), db)
	if err != nil || !rep.OK {
		t.Errorf("VerifyStore = %+v, %v", rep, err)
	}
}

// lateEvents lets the test create the registry before the writer that
// needs its store.
type lateEvents struct{ *registryaudit.Events }

// pullSetup is a registry holding proj/app:v1, optionally audited.
type pullSetup struct {
	h  http.Handler
	db *sqlite.DB
	w  *audit.Writer // nil when not audited
}

func newPullSetup(b *testing.B, audited bool) *pullSetup {
	ev := &lateEvents{}
	var events registry.Events
	if audited {
		events = ev
	}
	h, db := newRegistry(b, events)
	s := &pullSetup{h: h, db: db}
	if audited {
		s.w = audit.NewWriter(audit.WriterOptions{Store: db})
		ev.Events = registryaudit.New(s.w)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://")+"/proj/app:v1", name.Insecure)
	if err != nil {
		b.Fatal(err)
	}
	img, err := random.Image(256, 2)
	if err != nil {
		b.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "alice", Password: "pw"})); err != nil {
		b.Fatal(err)
	}
	return s
}

// pulls GETs the manifest n times from workers goroutines and returns how
// long that took.
func (s *pullSetup) pulls(b *testing.B, n, workers int) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				r := httptest.NewRequest(http.MethodGet, "/v2/proj/app/manifests/v1", nil)
				r.SetBasicAuth("alice", "pw")
				r.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
				rw := httptest.NewRecorder()
				s.h.ServeHTTP(rw, r)
				if rw.Code != http.StatusOK {
					b.Errorf("GET manifest: %d %s", rw.Code, rw.Body)
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// drain waits until the writer has stored everything recorded (a no-op
// when not audited).
func (s *pullSetup) drain(b *testing.B) {
	if s.w == nil {
		return
	}
	for s.w.Pending() > 0 {
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkManifestPull measures in-process manifest GETs by tag on two
// registries over SQLite: one not audited, one recording every pull through
// a Writer into its own database. Each op is one pull from each; they run
// in alternating rounds so that load from elsewhere hits both alike.
//
// "saturated" runs 4 goroutines per P, so the CPUs are busy and the
// writer's work competes with pulls; "serial" runs one, so the writer has
// a CPU of its own. After each audited round the benchmark waits until the
// writer has stored the round's events, outside the timed pulls but inside
// the round's CPU time, so the writer's work is charged to the audited
// pulls and never to the plain round that follows. It reports both pull
// rates (wall time of the pulls), how much slower the audited registry
// pulled (%slower), the process CPU time per pull of each (cpu-us/pull,
// audited-cpu-us/pull, the audited one including the writer's flushes) and
// how much more CPU an audited pull costs (%cpu-more): on a saturated
// machine throughput is CPUs / CPU per pull, so %cpu-more is what auditing
// takes from the pull rate, whatever else the machine is doing.
func BenchmarkManifestPull(b *testing.B) {
	for _, c := range []struct {
		name    string
		workers func() int
	}{
		{"saturated", func() int { return 4 * runtime.GOMAXPROCS(0) }},
		{"serial", func() int { return 1 }},
	} {
		b.Run(c.name, func(b *testing.B) { benchPulls(b, c.workers()) })
	}
}

func benchPulls(b *testing.B, workers int) {
	plain, audited := newPullSetup(b, false), newPullSetup(b, true)
	const round = 1000
	var tPlain, tAudit time.Duration
	var cPlain, cAudit int64
	cpuOK := true
	cpu := func() int64 {
		n, ok := processCPU()
		cpuOK = cpuOK && ok
		return n
	}
	b.ResetTimer()
	for done := 0; done < b.N; done += round {
		n := min(round, b.N-done)
		c0 := cpu()
		tPlain += plain.pulls(b, n, workers)
		c1 := cpu()
		tAudit += audited.pulls(b, n, workers)
		audited.drain(b)
		c2 := cpu()
		cPlain += c1 - c0
		cAudit += c2 - c1
	}
	b.StopTimer()
	if err := audited.w.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/tPlain.Seconds(), "pulls/s")
	b.ReportMetric(float64(b.N)/tAudit.Seconds(), "audited-pulls/s")
	b.ReportMetric(100*(tAudit.Seconds()/tPlain.Seconds()-1), "%slower")
	if cpuOK && cPlain > 0 {
		b.ReportMetric(float64(cPlain)/1e3/float64(b.N), "cpu-us/pull")
		b.ReportMetric(float64(cAudit)/1e3/float64(b.N), "audited-cpu-us/pull")
		b.ReportMetric(100*(float64(cAudit)/float64(cPlain)-1), "%cpu-more")
	}
	got, err := audited.db.AuditEvents(context.Background(), store.AuditFilter{Action: registryaudit.ActionPull})
	if err != nil || len(got) != b.N {
		b.Fatalf("%d pulls audited (%v), want %d", len(got), err, b.N)
	}
}
