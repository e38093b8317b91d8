package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/config"
	"github.com/customs-dev/customs/internal/store"
)

// waitEvents polls the audit API until q returns at least n events.
func waitEvents(t *testing.T, c *apiclient.Client, q apiclient.AuditQuery, n int) []audit.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		page, err := c.AuditEvents(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) >= n {
			return page.Events
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit query %+v: %d events after 10 s, want %d: %+v", q, len(page.Events), n, page.Events)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAuditTrail goes through the audit API of a real server: registry
// events with client and user agent, query filters and pages, permissions,
// export, verify and purge.
func TestAuditTrail(t *testing.T) {
	addr, _ := startServer(t, nil)
	ctx := context.Background()
	base := "http://" + addr
	admin := &apiclient.Client{BaseURL: base, Username: "admin", Password: adminPassword}
	if _, err := admin.CreateProject(ctx, "demo", false); err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(addr+"/demo/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{remote.WithAuth(&authn.Basic{Username: "admin", Password: adminPassword}), remote.WithUserAgent("audit-test/1.0")}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Get(ref, opts...); err != nil {
		t.Fatal(err)
	}

	events := waitEvents(t, admin, apiclient.AuditQuery{Action: "artifact"}, 2)
	byAction := map[string]audit.Event{}
	for _, e := range events {
		byAction[e.Action] = e
	}
	for _, action := range []string{"artifact.push", "artifact.pull"} {
		e, ok := byAction[action]
		if !ok {
			t.Fatalf("no %s event in %+v", action, events)
		}
		if e.Actor != "admin" || e.ActorKind != "user" || e.Outcome != audit.Success || e.ClientIP != "127.0.0.1" ||
			!strings.Contains(e.UserAgent, "audit-test/1.0") || e.Project != "demo" || !strings.HasPrefix(e.Resource, "repository:demo/app@sha256:") {
			t.Errorf("%s event %+v", action, e)
		}
	}
	waitEvents(t, admin, apiclient.AuditQuery{Action: "project.create", Project: "demo"}, 1)

	// Pages: one event at a time, newest first, down to the oldest.
	all := waitEvents(t, admin, apiclient.AuditQuery{N: 1000}, 3)
	var paged []int64
	q := apiclient.AuditQuery{N: 2}
	for {
		page, err := admin.AuditEvents(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			paged = append(paged, e.ID)
		}
		if page.Next == "" {
			break
		}
		if _, err := json.Number(page.Next).Int64(); err != nil {
			t.Fatalf("next %q", page.Next)
		}
		q.Last, _ = json.Number(page.Next).Int64()
	}
	if len(paged) < len(all) || paged[0] != all[0].ID || paged[len(all)-1] != all[len(all)-1].ID {
		t.Errorf("paged ids %v, all %d events from %d to %d", paged, len(all), all[0].ID, all[len(all)-1].ID)
	}
	if _, err := admin.AuditEvents(ctx, apiclient.AuditQuery{Outcome: "maybe"}); !apperr.Is(err, apperr.EINVALID) {
		t.Errorf("bad outcome: %v", err)
	}

	// Only administrators; refusals are on record.
	if _, err := admin.CreateUser(ctx, api.CreateUserRequest{Name: "dev", Password: "dev-password-1"}); err != nil {
		t.Fatal(err)
	}
	dev := &apiclient.Client{BaseURL: base, Username: "dev", Password: "dev-password-1"}
	anon := &apiclient.Client{BaseURL: base}
	if _, err := dev.AuditEvents(ctx, apiclient.AuditQuery{}); !apperr.Is(err, apperr.EDENIED) {
		t.Errorf("non-admin query: %v, want denied", err)
	}
	if _, err := dev.AuditPurge(ctx, "1d"); !apperr.Is(err, apperr.EDENIED) {
		t.Errorf("non-admin purge: %v, want denied", err)
	}
	if _, err := anon.AuditVerify(ctx); !apperr.Is(err, apperr.EUNAUTHORIZED) {
		t.Errorf("anonymous verify: %v, want unauthorized", err)
	}
	if _, err := dev.AuditExport(ctx, io.Discard); !apperr.Is(err, apperr.EDENIED) {
		t.Errorf("non-admin export: %v, want denied", err)
	}
	denied := waitEvents(t, admin, apiclient.AuditQuery{Actor: "dev", Outcome: "denied"}, 3)
	for _, e := range denied {
		if e.Action != "audit.read" && e.Action != audit.PurgeAction {
			t.Errorf("unexpected denied event %+v", e)
		}
	}

	// Export: every event, oldest first, chained.
	var buf bytes.Buffer
	if _, err := admin.AuditExport(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	var exported []audit.Event
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e audit.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		exported = append(exported, e)
	}
	if len(exported) < len(all) {
		t.Fatalf("exported %d events, the API listed %d", len(exported), len(all))
	}
	for i, e := range exported {
		if e.ID != int64(i+1) || e.Hash != audit.Hash(e) || (i > 0 && e.PrevHash != exported[i-1].Hash) {
			t.Fatalf("exported event %d (line %d) does not chain: %+v", e.ID, i+1, e)
		}
	}
	waitEvents(t, admin, apiclient.AuditQuery{Action: "audit.export", Actor: "admin"}, 1)

	// Verify and purge.
	rep, err := admin.AuditVerify(ctx)
	if err != nil || !rep.OK {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	if _, err := admin.AuditPurge(ctx, "0d"); !apperr.Is(err, apperr.EINVALID) {
		t.Errorf("purge of age 0: %v, want invalid", err)
	}
	if _, err := admin.AuditPurge(ctx, "soon"); !apperr.Is(err, apperr.EINVALID) {
		t.Errorf("purge of age 'soon': %v, want invalid", err)
	}
	res, err := admin.AuditPurge(ctx, "1h")
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != 0 || res.Event.Action != audit.PurgeAction || res.Event.Actor != "admin" || res.Event.ClientIP != "127.0.0.1" {
		t.Errorf("purge result %+v", res)
	}
	if rep, err := admin.AuditVerify(ctx); err != nil || !rep.OK || rep.LastID < res.Event.ID {
		t.Errorf("verify after the purge: %+v, %v", rep, err)
	}
}

// TestAuditFlushedOnShutdown: events of requests served just before a
// graceful shutdown are stored by the time Serve returns.
func TestAuditFlushedOnShutdown(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Addr = "127.0.0.1:0"
	cfg.GC.Interval = 0
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := New(ctx, cfg, Options{Logger: logger, AdminPassword: adminPassword, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	waitReady(t, base)
	admin := &apiclient.Client{BaseURL: base, Username: "admin", Password: adminPassword}
	if _, err := admin.CreateProject(context.Background(), "demo", false); err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(ln.Addr().String()+"/demo/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	auth := remote.WithAuth(&authn.Basic{Username: "admin", Password: adminPassword})
	if err := remote.Write(ref, img, auth); err != nil {
		t.Fatal(err)
	}
	const pulls = 300
	var wg sync.WaitGroup
	hc := &http.Client{}
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range pulls / 10 {
				req, _ := http.NewRequest(http.MethodGet, base+"/v2/demo/app/manifests/v1", nil)
				req.SetBasicAuth("admin", adminPassword)
				req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json")
				resp, err := hc.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("pull: %s", resp.Status)
				}
			}
		}()
	}
	wg.Wait()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	st, err := OpenStore(context.Background(), cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.AuditEvents(context.Background(), store.AuditFilter{Action: "artifact.pull"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != pulls {
		t.Errorf("%d pulls audited after shutdown, want %d", len(got), pulls)
	}
	if rep, err := audit.VerifyStore(context.Background(), st); err != nil || !rep.OK {
		t.Errorf("verify after shutdown: %+v, %v", rep, err)
	}
}

// TestAuditSkip: with audit.skip [artifact.pull] a successful pull leaves no
// event, a push and a refused pull do; the setting itself is an
// audit.settings event, recorded again only when it changes; the chain
// verifies throughout.
func TestAuditSkip(t *testing.T) {
	dataDir := t.TempDir()
	ctx := context.Background()
	settings := func(t *testing.T, c *apiclient.Client) []audit.Event {
		t.Helper()
		page, err := c.AuditEvents(ctx, apiclient.AuditQuery{Action: "audit.settings"})
		if err != nil {
			t.Fatal(err)
		}
		return page.Events
	}
	run := func(skip []string, fn func(base string, admin *apiclient.Client)) {
		addr, srv := startServer(t, func(c *config.Config) { c.DataDir = dataDir; c.Audit.Skip = skip })
		base := "http://" + addr
		fn(addr, &apiclient.Client{BaseURL: base, Username: "admin", Password: adminPassword})
		srv.Audit.Close(ctx) // stores what is queued; Serve's shutdown closes it again
	}
	run([]string{"artifact.pull"}, func(addr string, admin *apiclient.Client) {
		if _, err := admin.CreateProject(ctx, "demo", false); err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(addr+"/demo/app:v1", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		img, err := random.Image(64, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "admin", Password: adminPassword})); err != nil {
			t.Fatal(err)
		}
		if _, err := remote.Get(ref, remote.WithAuth(&authn.Basic{Username: "admin", Password: adminPassword})); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.CreateUser(ctx, api.CreateUserRequest{Name: "dev", Password: "dev-password-1"}); err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/demo/app/manifests/v1", nil)
		req.SetBasicAuth("dev", "dev-password-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("a non-member's pull from a private project succeeded")
		}
		events := waitEvents(t, admin, apiclient.AuditQuery{Action: "artifact"}, 2)
		time.Sleep(200 * time.Millisecond) // a wrongly stored pull would be flushed by now
		events = waitEvents(t, admin, apiclient.AuditQuery{Action: "artifact"}, 2)
		var got []string
		for _, e := range events {
			got = append(got, e.Action+"/"+string(e.Outcome))
		}
		if strings.Join(got, " ") != "artifact.pull/denied artifact.push/success" {
			t.Fatalf("artifact events %v, want the refused pull and the push only", got)
		}
		s := settings(t, admin)
		if len(s) != 1 || s[0].Details["skip"] != "artifact.pull" || s[0].ActorKind != audit.ActorSystem || s[0].Actor != "customs" {
			t.Fatalf("audit.settings events %+v, want one naming artifact.pull", s)
		}
	})
	run([]string{"artifact.pull"}, func(_ string, admin *apiclient.Client) {
		if s := settings(t, admin); len(s) != 1 {
			t.Fatalf("restarted with the same audit.skip: %d audit.settings events, want still 1", len(s))
		}
	})
	run(nil, func(_ string, admin *apiclient.Client) {
		s := waitEvents(t, admin, apiclient.AuditQuery{Action: "audit.settings"}, 2)
		if s[0].Details["skip"] != "" {
			t.Fatalf("newest audit.settings after audit.skip was emptied: %+v", s[0])
		}
		rep, err := admin.AuditVerify(ctx)
		if err != nil || !rep.OK {
			t.Fatalf("verify: %+v, %v", rep, err)
		}
	})
}
