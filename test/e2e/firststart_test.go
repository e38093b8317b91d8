package e2e_test

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/customs-dev/customs/test/e2e/harness"
)

// TestFirstStart runs `customs serve` as the README's first command does:
// no configuration, no data directory, no CUSTOMS_ADMIN_PASSWORD. It must
// keep its data in ./customs-data (blobs on the filesystem, SQLite in WAL
// mode), print a generated admin password once — one that works, with crane
// — and not print it again on the next start; its log lines carry a request
// id (also sent as X-Request-Id); /metrics counts the push's requests,
// latency, bytes and storage.
func TestFirstStart(t *testing.T) {
	t.Parallel()
	if os.Getenv(harness.EnvTarget) == harness.KindDistribution {
		t.Skip("customs' defaults")
	}
	harness.Tool(t, "crane")
	bin := harness.CustomsBinary(t)
	work := t.TempDir()

	if out, err := exec.Command(bin, "config", "print").CombinedOutput(); err != nil ||
		!regexp.MustCompile(`(?m)^addr: ["']?:5000["']?$`).Match(out) {
		t.Errorf("customs config print: the default address is not :5000 (%v):\n%s", err, out)
	}

	first := startBare(t, bin, work)
	m := regexp.MustCompile(`customs created the user "admin" with this password[^\n]*\n\s*\n\s+(\S+)\n`).FindStringSubmatch(first.waitFor(t, "with this password", 2))
	if m == nil {
		t.Fatalf("no generated admin password printed:\n%s", first.logs())
	}
	password := m[1]
	if len(password) < 20 {
		t.Fatalf("generated password %q is short", password)
	}
	for _, f := range []string{"customs.db", "customs.db-wal", "blobs"} {
		if _, err := os.Stat(filepath.Join(work, "customs-data", f)); err != nil {
			t.Errorf("./customs-data/%s: %v", f, err)
		}
	}

	c := harness.NewClient(t)
	layout := harness.WriteLayout(t, harness.BuildImage(t, harness.Layer(t, "etc/motd", strings.Repeat("first start\n", 10000))))
	admin := harness.NewClient(t)
	admin.Env("CUSTOMS_USERNAME=admin", "CUSTOMS_PASSWORD="+password)
	admin.Must(t, bin, "project", "create", "first", "--server", "http://"+first.addr)
	c.MustInput(t, password, "crane", "auth", "login", first.addr, "-u", "admin", "--password-stdin")
	c.Must(t, "crane", "push", "--insecure", layout, first.addr+"/first/app:v1")
	// crane auth login stores without checking: the next command is what
	// must fail.
	wrong := harness.NewClient(t)
	wrong.MustInput(t, password+"x", "crane", "auth", "login", first.addr, "-u", "admin", "--password-stdin")
	if r := wrong.Run(t, "crane", "digest", "--insecure", first.addr+"/first/app:v1"); r.Err == nil {
		t.Errorf("a wrong admin password works:\n%s", r)
	}

	resp, err := http.Get("http://" + first.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if id := resp.Header.Get("X-Request-Id"); id == "" {
		t.Error("no X-Request-Id on /metrics")
	}
	for _, series := range []string{
		`customs_http_requests_total{[^}]*method="PUT"[^}]*} [1-9]`,
		`customs_http_request_duration_seconds_bucket{[^}]*le="\+Inf"[^}]*} [1-9]`,
		`customs_http_request_bytes_total{[^}]*} [1-9][0-9]{2,}`,
		`customs_http_response_bytes_total{[^}]*} [1-9]`,
		`customs_storage_blobs [1-9]`,
		`customs_storage_bytes [1-9][0-9]{2,}`,
		`customs_registry_manifest_cache_max_bytes [1-9]`,
	} {
		if !regexp.MustCompile(series).Match(metrics) {
			t.Errorf("/metrics has no series matching %s; it has:\n%s", series,
				strings.Join(regexp.MustCompile(`(?m)^`+strings.SplitN(series, "{", 2)[0]+`.*$`).FindAllString(string(metrics), 20), "\n"))
		}
	}
	if !regexp.MustCompile(`request_id=\S+`).MatchString(first.logs()) {
		t.Errorf("no log line carries a request_id:\n%.3000s", first.logs())
	}
	first.stop(t)

	second := startBare(t, bin, work)
	second.waitFor(t, "", 0)
	c.MustInput(t, password, "crane", "auth", "login", second.addr, "-u", "admin", "--password-stdin")
	c.Must(t, "crane", "digest", "--insecure", second.addr+"/first/app:v1")
	if strings.Contains(second.logs(), password) || strings.Contains(second.logs(), "with this password") {
		t.Errorf("the second start printed the admin password again:\n%s", second.logs())
	}
	second.stop(t)
}

// bareServer is `customs serve` started with nothing but a free address, in
// dir, without the harness's data dir and admin password.
type bareServer struct {
	addr string
	cmd  *exec.Cmd
	out  *strings.Builder
	mu   *sync.Mutex
	done chan struct{}
}

func (s *bareServer) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// startBare starts customs serve in dir on a free loopback port (the
// default :5000 may be taken on a shared machine) and waits for /readyz.
func startBare(t *testing.T, bin, dir string) *bareServer {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--addr-file", addrFile)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s := &bareServer{cmd: cmd, out: &strings.Builder{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.mu.Lock()
			s.out.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
		}
	}()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); pw.Close(); close(s.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			t.Logf("customs serve in %s:\n%s", dir, s.logs())
		}
	})
	deadline := time.Now().Add(time.Minute)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			s.addr = strings.TrimPrefix(strings.TrimSpace(string(b)), "http://")
			if resp, err := http.Get("http://" + s.addr + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return s
				}
			}
		}
		select {
		case <-s.done:
			t.Fatalf("customs serve exited while starting:\n%s", s.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("customs serve not ready after a minute:\n%s", s.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFor waits until the log contains marker and, after it, lines more
// lines (the server prints the password after a blank line); "" returns the
// log at once.
func (s *bareServer) waitFor(t *testing.T, marker string, lines int) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l := s.logs()
		if marker == "" {
			return l
		}
		if i := strings.Index(l, marker); i >= 0 && strings.Count(l[i:], "\n") > lines+1 {
			return l
		}
		if time.Now().After(deadline) {
			return l
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and requires a clean exit within 30 s.
func (s *bareServer) stop(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatal("customs serve did not stop within 30 s of SIGTERM")
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("customs serve exited %s after SIGTERM", strconv.Itoa(code))
	}
}
