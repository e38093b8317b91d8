package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// fakeCustomsEnv makes the test binary act as a stand-in for the customs
// binary, so the benchmark's customs path (addr file, project creation, the
// token flow) is tested without the real server.
const fakeCustomsEnv = "BENCH_REGISTRY_FAKE_CUSTOMS"

func TestMain(m *testing.M) {
	if os.Getenv(fakeCustomsEnv) == "1" {
		if err := fakeCustoms(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "fake customs:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fakeCustoms implements `serve --addr --data-dir --addr-file` and
// `project create NAME --server URL` the way the benchmark calls customs.
func fakeCustoms(args []string) error {
	switch {
	case len(args) >= 1 && args[0] == "serve":
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		addr := fs.String("addr", "", "")
		dataDir := fs.String("data-dir", "", "")
		addrFile := fs.String("addr-file", "", "")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		pw := os.Getenv("CUSTOMS_ADMIN_PASSWORD")
		if pw == "" || *dataDir == "" || *addrFile == "" {
			return fmt.Errorf("serve needs CUSTOMS_ADMIN_PASSWORD, --data-dir and --addr-file")
		}
		l, err := net.Listen("tcp", *addr)
		if err != nil {
			return err
		}
		if err := os.WriteFile(*addrFile, []byte(l.Addr().String()+"\n"), 0o644); err != nil {
			return err
		}
		reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithBlobHandler(registry.NewDiskBlobHandler(*dataDir)))
		return http.Serve(l, newTokenGate(reg, "admin", pw))
	case len(args) >= 4 && args[0] == "project" && args[1] == "create" && args[3] == "--server":
		req, err := http.NewRequest(http.MethodPost, args[4]+"/fake/projects/"+args[2], nil)
		if err != nil {
			return err
		}
		req.SetBasicAuth(os.Getenv("CUSTOMS_USERNAME"), os.Getenv("CUSTOMS_PASSWORD"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("project create: %s", resp.Status)
		}
		return nil
	}
	return fmt.Errorf("unexpected arguments %q", args)
}

// tokenGate puts the Docker token flow and projects in front of a registry:
// /v2/ requests need a Bearer token from /service/token (Basic auth), and
// repositories must live in a created project.
type tokenGate struct {
	next       http.Handler
	user, pw   string
	tokens     atomic.Int64 // tokens issued
	mu         sync.Mutex
	projects   map[string]bool
	validToken map[string]bool
}

// newTokenGate wraps next with token auth for user:pw.
func newTokenGate(next http.Handler, user, pw string) *tokenGate {
	return &tokenGate{next: next, user: user, pw: pw, projects: map[string]bool{}, validToken: map[string]bool{}}
}

// ServeHTTP implements the token endpoint, project creation and the gate.
func (g *tokenGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u, p, basic := r.BasicAuth()
	basicOK := basic && u == g.user && p == g.pw
	switch {
	case r.URL.Path == "/service/token":
		if !basicOK {
			http.Error(w, "bad credentials", http.StatusUnauthorized)
			return
		}
		tok := fmt.Sprintf("tok-%d", g.tokens.Add(1))
		g.mu.Lock()
		g.validToken[tok] = true
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"token": tok})
		return
	case strings.HasPrefix(r.URL.Path, "/fake/projects/") && r.Method == http.MethodPost:
		if !basicOK {
			http.Error(w, "bad credentials", http.StatusUnauthorized)
			return
		}
		g.mu.Lock()
		g.projects[strings.TrimPrefix(r.URL.Path, "/fake/projects/")] = true
		g.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		return
	}
	tok, isBearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	g.mu.Lock()
	authed := isBearer && g.validToken[tok]
	project, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v2/"), "/")
	known := r.URL.Path == "/v2/" || g.projects[project]
	g.mu.Unlock()
	if !authed {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/service/token",service="fake"`, r.Host))
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
		return
	}
	if !known {
		http.Error(w, `{"errors":[{"code":"NAME_UNKNOWN","message":"no such project"}]}`, http.StatusNotFound)
		return
	}
	g.next.ServeHTTP(w, r)
}
