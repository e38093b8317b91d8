package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Kinds of server Start can run.
const (
	KindCustoms      = "customs"
	KindDistribution = "distribution"
)

// startTimeout bounds how long a server may take to become ready.
const startTimeout = 60 * time.Second

// stopTimeout bounds a graceful shutdown after SIGTERM.
const stopTimeout = 30 * time.Second

// maxLogDump is how much of a server's log a failed test prints (the end).
const maxLogDump = 256 << 10

// Options changes how a server is started.
type Options struct {
	// DataDir is the data directory; empty means a new temp dir of the
	// test. Reuse one to restart a server on the same data.
	DataDir string
	// Password is the administrator's password; empty means a random one.
	// Give the old one when restarting on the same DataDir.
	Password string
	// Env is added to the server's environment (KEY=VALUE). CUSTOMS_*
	// variables of the test process are never inherited.
	Env []string
	// Args are added after the harness's own `serve` flags.
	Args []string
	// HTTPS says the server serves HTTPS (Args hold --tls-generate or
	// --tls-cert/--tls-key): URL is https://, and the readiness probe and
	// CreateProject trust CAFile. Only StartCustoms supports it.
	HTTPS bool
	// CAFile, with HTTPS, is the CA certificate that verifies the server's
	// certificate; empty means <DataDir>/tls/ca.crt, where --tls-generate
	// writes it.
	CAFile string
}

// Server is a registry under test running as a child process on a loopback
// port, plain HTTP. It is stopped (SIGTERM) when the test ends, and its log
// is printed if the test failed.
type Server struct {
	// Kind is KindCustoms or KindDistribution.
	Kind string
	// Addr is the registry's host:port.
	Addr string
	// Username and Password are the administrator's credentials.
	Username, Password string
	// DataDir is the server's data directory.
	DataDir string
	// Scheme is "http", or "https" when started with Options.HTTPS.
	Scheme string
	// CAFile is the CA certificate that verifies an HTTPS server, "" for
	// plain HTTP.
	CAFile string

	cmd     *exec.Cmd
	logs    *logBuffer
	exited  chan struct{} // closed when the process has exited
	waitErr error         // the process's exit, valid once exited is closed
	stopped bool          // Stop or Kill was called
	mu      sync.Mutex
}

// Start starts the server selected by CUSTOMS_E2E_TARGET: customs unless it
// says "distribution".
func Start(t testing.TB, opts ...Options) *Server {
	t.Helper()
	switch target := os.Getenv(EnvTarget); target {
	case "", KindCustoms:
		return StartCustoms(t, opts...)
	case KindDistribution:
		return StartDistribution(t, opts...)
	default:
		t.Fatalf("%s=%q: want %q or %q", EnvTarget, target, KindCustoms, KindDistribution)
		return nil
	}
}

// StartCustoms builds (once) and starts `customs serve --addr 127.0.0.1:0`
// with the admin password in CUSTOMS_ADMIN_PASSWORD, and returns once it
// answers 200 on /readyz.
func StartCustoms(t testing.TB, opts ...Options) *Server {
	t.Helper()
	o := options(t, opts)
	bin := CustomsBinary(t)
	addrFile := filepath.Join(t.TempDir(), "addr")
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", o.DataDir, "--addr-file", addrFile}, o.Args...)
	env := append(filterEnv(os.Environ(), "CUSTOMS_"), "CUSTOMS_ADMIN_PASSWORD="+o.Password)
	env = append(env, o.Env...)
	s := &Server{Kind: KindCustoms, Username: "admin", Password: o.Password, DataDir: o.DataDir, Scheme: "http"}
	if o.HTTPS {
		s.Scheme, s.CAFile = "https", o.CAFile
		if s.CAFile == "" {
			s.CAFile = filepath.Join(o.DataDir, "tls", "ca.crt")
		}
	}
	s.start(t, bin, args, env)

	deadline := time.Now().Add(startTimeout)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && len(bytes.TrimSpace(b)) > 0 {
			addr := strings.TrimSpace(string(b))
			addr = strings.TrimPrefix(strings.TrimPrefix(addr, "http://"), "https://")
			s.Addr = addr
			break
		}
		s.checkStarting(t, deadline, "to write --addr-file")
	}
	probe := &http.Client{Timeout: 2 * time.Second}
	if s.Scheme == "https" {
		// The server writes a generated CA before it listens, so it exists
		// once the address file does.
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			t.Fatalf("harness: CA of the HTTPS server: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("harness: %s holds no PEM certificate", s.CAFile)
		}
		probe.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	for {
		if code, err := getWith(probe, s.URL()+"/readyz"); err == nil && code == http.StatusOK {
			probe.CloseIdleConnections()
			return s
		}
		s.checkStarting(t, deadline, "GET /readyz to answer 200")
	}
}

// StartDistribution starts the CNCF distribution registry with filesystem
// storage, deletes enabled and htpasswd authentication for admin, and
// returns once it answers on /v2/.
func StartDistribution(t testing.TB, opts ...Options) *Server {
	t.Helper()
	o := options(t, opts)
	bin := Tool(t, "registry")
	hash, err := bcrypt.GenerateFromPassword([]byte(o.Password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfgDir := t.TempDir()
	htpasswd := filepath.Join(cfgDir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("admin:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %q
  secret: %q
auth:
  htpasswd:
    realm: customs-e2e
    path: %q
`, o.DataDir, addr, randomHex(16), htpasswd)
	cfgPath := filepath.Join(cfgDir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(filterEnv(os.Environ(), "REGISTRY_", "OTEL_"), o.Env...)
	// The registry exports traces by default; there is nowhere to send them.
	env = append(env, "OTEL_TRACES_EXPORTER=none")
	if o.HTTPS {
		t.Fatal("harness: Options.HTTPS is only supported for customs")
	}
	s := &Server{Kind: KindDistribution, Addr: addr, Username: "admin", Password: o.Password, DataDir: o.DataDir, Scheme: "http"}
	s.start(t, bin, append([]string{"serve", cfgPath}, o.Args...), env)
	deadline := time.Now().Add(startTimeout)
	for {
		if code, err := get("http://" + addr + "/v2/"); err == nil && code == http.StatusUnauthorized {
			return s
		}
		s.checkStarting(t, deadline, "GET /v2/ to answer 401")
	}
}

func options(t testing.TB, opts []Options) Options {
	var o Options
	if len(opts) > 1 {
		t.Fatal("harness: at most one Options")
	}
	if len(opts) == 1 {
		o = opts[0]
	}
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.Password == "" {
		o.Password = randomHex(16)
	}
	return o
}

// start launches the process and registers its cleanup: stop, then (if
// the test failed) print the log.
func (s *Server) start(t testing.TB, bin string, args, env []string) {
	t.Helper()
	s.logs = &logBuffer{}
	s.exited = make(chan struct{})
	s.cmd = exec.Command(bin, args...)
	s.cmd.Env = env
	s.cmd.Stdout = s.logs
	s.cmd.Stderr = s.logs
	// Its own process group, so a signal meant for the test binary (^C)
	// does not reach it before the harness stops it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Cleanups run last-registered first: the log is printed after Stop so
	// it includes the shutdown.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s %s log (%s):\n%s", s.Kind, s.Addr, strings.Join(args, " "), s.logs.tail(maxLogDump))
		}
	})
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() { s.Stop(t) })
}

// checkStarting fails the test if the process exited or the deadline
// passed while waiting for what, and otherwise sleeps a little.
func (s *Server) checkStarting(t testing.TB, deadline time.Time, what string) {
	t.Helper()
	select {
	case <-s.exited:
		t.Fatalf("%s exited while starting (%v), waiting for %s", s.Kind, s.waitErr, what)
	default:
	}
	if time.Now().After(deadline) {
		t.Fatalf("%s not ready after %s, waiting for %s", s.Kind, startTimeout, what)
	}
	time.Sleep(20 * time.Millisecond)
}

// URL returns the server's base URL, Scheme://Addr.
func (s *Server) URL() string {
	if s.Scheme == "" {
		return "http://" + s.Addr
	}
	return s.Scheme + "://" + s.Addr
}

// Logs returns everything the server wrote to stdout and stderr so far.
func (s *Server) Logs() string { return s.logs.String() }

// Stop sends SIGTERM and waits for a graceful exit. It fails the test if the
// server had exited on its own, does not stop within 30 s (it is then
// killed), or exits with an error. Calling it again does nothing.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	select {
	case <-s.exited:
		t.Errorf("%s %s exited before the test stopped it: %v", s.Kind, s.Addr, s.waitErr)
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
		t.Errorf("%s %s did not stop within %s of SIGTERM; killed", s.Kind, s.Addr, stopTimeout)
		return
	}
	if s.waitErr != nil && s.Kind == KindCustoms {
		t.Errorf("%s %s exited with %v after SIGTERM; a graceful shutdown exits 0", s.Kind, s.Addr, s.waitErr)
	}
}

// Kill stops the server with SIGKILL (a crash) and waits for it to be gone.
// Calling Stop afterwards does nothing.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// CreateProject creates project name on a customs server with the CLI,
// `customs project create NAME [--public] --server URL`, as the
// administrator. On the CNCF registry, which has no projects, it does
// nothing.
func (s *Server) CreateProject(t testing.TB, name string, public bool) {
	t.Helper()
	if s.Kind != KindCustoms {
		return
	}
	args := []string{"project", "create", name, "--server", s.URL()}
	if public {
		args = append(args, "--public")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, CustomsBinary(t), args...)
	cmd.Env = append(filterEnv(os.Environ(), "CUSTOMS_"), "CUSTOMS_USERNAME="+s.Username, "CUSTOMS_PASSWORD="+s.Password)
	if s.CAFile != "" {
		cmd.Env = append(filterEnv(cmd.Env, "SSL_CERT_FILE="), "SSL_CERT_FILE="+s.CAFile)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("customs %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// get returns the status code of a GET of url.
func get(url string) (int, error) {
	return getWith(&http.Client{Timeout: 2 * time.Second}, url)
}

// getWith returns the status code of a GET of url with c.
func getWith(c *http.Client, url string) (int, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// freeAddr returns a loopback address with a port that was free a moment
// ago, for servers that cannot report the port they bound.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// logBuffer is a goroutine-safe buffer for a process's output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tail returns at most the last n bytes, marking a cut.
func (b *logBuffer) tail(n int) string {
	s := b.String()
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("[... %d bytes cut ...]\n%s", len(s)-n, s[len(s)-n:])
}
