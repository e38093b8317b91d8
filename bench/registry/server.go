package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// serverKind names a registry implementation the benchmark can start.
type serverKind string

// The registry implementations the benchmark knows how to start.
const (
	kindCustoms      serverKind = "customs"
	kindDistribution serverKind = "distribution"
)

// serverSpec says how to start one of the compared servers.
type serverSpec struct {
	label string     // column label in the report, unique per run
	kind  serverKind // implementation
	bin   string     // path of its binary
}

// credentials are the user and password the client authenticates with
// (customs); distribution runs without auth and ignores them.
type credentials struct {
	user, password string
}

// server is one running registry process with a fresh data directory.
type server struct {
	spec    serverSpec
	addr    string // host:port on loopback
	dataDir string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	waitErr error
}

// pid returns the process id of the server, whose /proc entries give its RSS.
func (s *server) pid() int { return s.cmd.Process.Pid }

// baseURL returns the http URL of the server.
func (s *server) baseURL() string { return "http://" + s.addr }

// startServer starts spec with a fresh data dir under workDir and returns once
// the registry answers /v2/ (and, for customs, project "bench" exists).
func startServer(ctx context.Context, spec serverSpec, workDir string, cred credentials) (*server, error) {
	dir, err := os.MkdirTemp(workDir, spec.label+"-")
	if err != nil {
		return nil, err
	}
	s := &server{spec: spec, dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "server.log"), done: make(chan struct{})}
	if err := os.Mkdir(s.dataDir, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()

	var addrFile string
	switch spec.kind {
	case kindCustoms:
		addrFile = filepath.Join(dir, "addr")
		s.cmd = exec.Command(spec.bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", s.dataDir, "--addr-file", addrFile)
		s.cmd.Env = append(os.Environ(), "CUSTOMS_ADMIN_PASSWORD="+cred.password)
	case kindDistribution:
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s.addr = fmt.Sprintf("127.0.0.1:%d", port)
		cfg := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfg, []byte(distributionConfig(s.dataDir, s.addr)), 0o644); err != nil {
			return nil, err
		}
		s.cmd = exec.Command(spec.bin, "serve", cfg)
		// v3 would otherwise try to export traces to an OTLP collector.
		s.cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	default:
		return nil, fmt.Errorf("unknown server kind %q", spec.kind)
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.label, err)
	}
	go func() { s.waitErr = s.cmd.Wait(); close(s.done) }()

	if err := s.waitReady(ctx, addrFile); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s did not become ready: %w (log: %s)", spec.label, err, s.logPath)
	}
	if spec.kind == kindCustoms {
		if err := s.createProject(ctx, cred); err != nil {
			s.stop()
			return nil, err
		}
	}
	return s, nil
}

// distributionConfig is the configuration shipped in distribution's container
// image (/etc/distribution/config.yml), pointed at dataDir and addr.
func distributionConfig(dataDir, addr string) string {
	return fmt.Sprintf(`version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: %s
http:
  addr: %s
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`, dataDir, addr)
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// parseAddrFile extracts host:port from the contents of customs' --addr-file,
// accepting an optional http:// prefix and surrounding whitespace.
func parseAddrFile(b []byte) (string, error) {
	s := strings.TrimSpace(string(b))
	s = strings.TrimPrefix(s, "http://")
	s = strings.TrimSuffix(s, "/")
	host, port, err := net.SplitHostPort(s)
	if err != nil || port == "" || strings.ContainsAny(s, "/ \t\r\n") {
		return "", fmt.Errorf("addr file holds %q, want host:port", s)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// waitReady waits until the address is known and /v2/ answers 200 or 401.
func (s *server) waitReady(ctx context.Context, addrFile string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		select {
		case <-s.done:
			return fmt.Errorf("exited: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
		if s.addr == "" {
			b, err := os.ReadFile(addrFile)
			if err != nil || len(strings.TrimSpace(string(b))) == 0 {
				last = fmt.Errorf("no address in %s yet", addrFile)
				continue
			}
			if s.addr, err = parseAddrFile(b); err != nil {
				return err
			}
		}
		resp, err := client.Get(s.baseURL() + "/v2/")
		if err != nil {
			last = err
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
			return nil
		}
		last = fmt.Errorf("GET /v2/: %s", resp.Status)
	}
}

// createProject runs `customs project create bench` against the server.
func (s *server) createProject(ctx context.Context, cred credentials) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.spec.bin, "project", "create", benchProject, "--server", s.baseURL())
	cmd.Env = append(os.Environ(), "CUSTOMS_USERNAME="+cred.user, "CUSTOMS_PASSWORD="+cred.password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("customs project create %s: %w: %s", benchProject, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// stop terminates the server (SIGTERM, then SIGKILL after 15 s) and waits.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = syscall.Kill(-s.pid(), syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-s.pid(), syscall.SIGKILL)
		<-s.done
	}
}

// alive reports an error if the server process has exited.
func (s *server) alive() error {
	select {
	case <-s.done:
		return fmt.Errorf("%s exited: %v (log: %s)", s.spec.label, s.waitErr, s.logPath)
	default:
		return nil
	}
}

// remove stops the server, deletes its data dir and flushes the page cache's
// dirty pages, so that the next server starts on a quiet disk.
func (s *server) remove() error {
	s.stop()
	err := os.RemoveAll(s.dataDir)
	syscall.Sync()
	return err
}
