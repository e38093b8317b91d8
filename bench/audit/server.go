package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is one running `customs serve`.
type server struct {
	bin, dataDir, logPath, addr string
	pgDSN                       string // with search_path; "" on SQLite
	dropSchema                  func()
	cmd                         *exec.Cmd
	done                        chan struct{}
	waitErr                     error
}

func (s *server) base() string { return "http://" + s.addr }

// startServer starts customs serve with a fresh data directory (and, on
// PostgreSQL, a fresh schema), pulls recorded or skipped as audited says,
// and returns once it answers /readyz.
func startServer(ctx context.Context, o options, workDir string, audited bool) (*server, error) {
	label := "skip"
	if audited {
		label = "audited"
	}
	dir, err := os.MkdirTemp(workDir, label+"-")
	if err != nil {
		return nil, err
	}
	s := &server{bin: o.customs, dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "serve.log"), done: make(chan struct{})}
	env := append(os.Environ(),
		"CUSTOMS_ADMIN_PASSWORD="+password,
		"CUSTOMS_GC_INTERVAL=0",
		"CUSTOMS_VULNDB_UPDATE_INTERVAL=0",
		"CUSTOMS_AUTH_TOKEN_TTL=1h",
		"CUSTOMS_LOG_LEVEL=warn",
	)
	if !audited {
		env = append(env, "CUSTOMS_AUDIT_SKIP=artifact.pull")
	}
	if o.store == "postgres" {
		if s.pgDSN, s.dropSchema, err = newSchema(ctx, o.pgDSN, "bench_audit_"+label+"_"); err != nil {
			return nil, err
		}
		env = append(env, "CUSTOMS_DATABASE_DRIVER=postgres", "CUSTOMS_DATABASE_DSN="+s.pgDSN)
	}
	logf, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	addrFile := filepath.Join(dir, "addr")
	s.cmd = exec.Command(s.bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", s.dataDir, "--addr-file", addrFile)
	s.cmd.Env = env
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.waitErr = s.cmd.Wait(); close(s.done) }()
	if err := s.waitReady(ctx, addrFile); err != nil {
		s.stop()
		return nil, fmt.Errorf("customs serve did not become ready: %w (log: %s)", err, s.logPath)
	}
	return s, nil
}

// newSchema creates a schema on the PostgreSQL server at dsn and returns a
// DSN using it and a function dropping it.
func newSchema(ctx context.Context, dsn, prefix string) (string, func(), error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, fmt.Errorf("-postgres %q is not a postgres:// URL", dsn)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return "", nil, err
	}
	schema := prefix + strings.ToLower(rand.Text()[:10])
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("creating schema %s: %w", schema, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), func() {
		_, _ = db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		db.Close()
	}, nil
}

func (s *server) waitReady(ctx context.Context, addrFile string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		select {
		case <-s.done:
			return fmt.Errorf("exited: %v", s.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if s.addr == "" {
			b, err := os.ReadFile(addrFile)
			if err != nil || strings.TrimSpace(string(b)) == "" {
				continue
			}
			s.addr = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(string(b)), "http://"), "/")
		}
		resp, err := http.Get(s.base() + "/readyz")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
	}
}

// cpu returns the user + system CPU time the server process has used.
func (s *server) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which is in parentheses): state is
	// field 3, utime 14, stime 15, in clock ticks (100 per second on Linux).
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc stat: %q", b)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// waitDrained waits until customs_audit_queue_length is 0.
func (s *server) waitDrained(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(s.base() + "/metrics")
		if err != nil {
			return err
		}
		v, ok := readMetric(resp.Body, "customs_audit_queue_length")
		resp.Body.Close()
		if !ok {
			return errors.New("no customs_audit_queue_length in /metrics")
		}
		if v == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("audit queue still holds %v events after %s", v, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// terminate stops the server with SIGTERM (a graceful shutdown, which
// stores the audit queue) and waits for it to exit.
func (s *server) terminate(timeout time.Duration) error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(timeout):
		s.stop()
		return fmt.Errorf("customs serve did not exit within %s of SIGTERM (log: %s)", timeout, s.logPath)
	}
	if s.waitErr != nil {
		return fmt.Errorf("customs serve exited with %v (log: %s)", s.waitErr, s.logPath)
	}
	return nil
}

// stop kills the server if it still runs and drops its schema.
func (s *server) stop() {
	select {
	case <-s.done:
	default:
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	if s.dropSchema != nil {
		s.dropSchema()
		s.dropSchema = nil
	}
}
