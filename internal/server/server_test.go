package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/config"
)

const adminPassword = "s3cret-for-tests"

// startServer runs a Server on a loopback port and returns its address.
func startServer(t *testing.T, mutate func(*config.Config)) (string, *Server) {
	t.Helper()
	return startServerLogging(t, mutate, io.Discard, slog.LevelInfo)
}

// startServerLogging is startServer with the server's logs, from level on,
// written to logs.
func startServerLogging(t *testing.T, mutate func(*config.Config), logs io.Writer, level slog.Level) (string, *Server) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Addr = "127.0.0.1:0"
	cfg.GC.Interval = 0
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))
	ctx, cancel := context.WithCancel(context.Background())
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
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		srv.Close()
	})
	addr := ln.Addr().String()
	waitReady(t, "http://"+addr)
	return addr, srv
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("server never became ready")
}

func TestHealthReadyMetrics(t *testing.T) {
	addr, _ := startServer(t, nil)
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": "customs_storage_blobs"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d %q, want 200 containing %q", path, resp.StatusCode, body, want)
		}
		if resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s: no X-Request-Id", path)
		}
	}
}

func TestProjectsAndPushPull(t *testing.T) {
	addr, _ := startServer(t, nil)
	ctx := context.Background()
	admin := &apiclient.Client{BaseURL: "http://" + addr, Username: "admin", Password: adminPassword}
	anon := &apiclient.Client{BaseURL: "http://" + addr}
	wrong := &apiclient.Client{BaseURL: "http://" + addr, Username: "admin", Password: "nope"}

	if _, err := anon.CreateProject(ctx, "demo", false); !apperr.Is(err, apperr.EUNAUTHORIZED) {
		t.Fatalf("anonymous create: %v", err)
	}
	if _, err := wrong.CreateProject(ctx, "demo", false); !apperr.Is(err, apperr.EUNAUTHORIZED) {
		t.Fatalf("wrong password create: %v", err)
	}
	if _, err := admin.CreateProject(ctx, "Bad Name", false); !apperr.Is(err, apperr.EINVALID) {
		t.Fatalf("bad name: %v", err)
	}

	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(addr+"/demo/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	auth := remote.WithAuth(&authn.Basic{Username: "admin", Password: adminPassword})
	// Pushing into a project that does not exist says how to create it.
	err = remote.Write(ref, img, auth)
	if err == nil || !strings.Contains(err.Error(), "customs project create demo") {
		t.Fatalf("push into missing project: %v", err)
	}
	if _, err := admin.CreateProject(ctx, "demo", false); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateProject(ctx, "demo", false); !apperr.Is(err, apperr.ECONFLICT) {
		t.Fatalf("duplicate create: %v", err)
	}
	if err := remote.Write(ref, img, auth); err != nil {
		t.Fatalf("push: %v", err)
	}
	want, _ := img.Digest()
	desc, err := remote.Get(ref, auth)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != want {
		t.Fatalf("pulled %s, pushed %s", desc.Digest, want)
	}
	// Private project: anonymous pull refused, public: allowed.
	if _, err := remote.Get(ref); err == nil {
		t.Fatal("anonymous pull of a private project succeeded")
	}
	if _, err := admin.SetProjectPublic(ctx, "demo", true); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Get(ref); err != nil {
		t.Fatalf("anonymous pull of a public project: %v", err)
	}
	if err := admin.DeleteProject(ctx, "demo"); !apperr.Is(err, apperr.ECONFLICT) {
		t.Fatalf("deleting a non-empty project: %v", err)
	}
	ps, err := anon.Projects(ctx)
	if err != nil || len(ps) != 1 || ps[0].Name != "demo" {
		t.Fatalf("anonymous list: %v %v", ps, err)
	}
}
