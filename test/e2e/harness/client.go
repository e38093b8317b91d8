package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// DefaultTimeout bounds one client command unless Client.Timeout says
// otherwise.
const DefaultTimeout = 3 * time.Minute

// Client runs registry clients (skopeo, crane, oras, regctl, ...) as a user
// would, in a sandbox: its own HOME, Docker/containers auth files and XDG
// directories in a temp dir of the test, so a login in one test is never
// seen by another nor by the user running the tests.
type Client struct {
	// Home is the client's HOME directory.
	Home string
	// Dir is the working directory of commands (default Home).
	Dir string
	// Timeout bounds each command (default DefaultTimeout).
	Timeout time.Duration

	env []string
}

// NewClient returns a client sandbox living as long as t (its subtests may
// use it too: the commands take the test they run for).
func NewClient(t testing.TB) *Client {
	t.Helper()
	home := t.TempDir()
	for _, d := range []string{".docker", ".config", "run"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	env := filterEnv(os.Environ(), "HOME=", "DOCKER_CONFIG=", "REGISTRY_AUTH_FILE=", "XDG_RUNTIME_DIR=",
		"XDG_CONFIG_HOME=", "XDG_DATA_HOME=", "XDG_CACHE_HOME=", "REGCTL_", "ORAS_", "OCI_", "CUSTOMS_")
	env = append(env,
		"HOME="+home,
		"DOCKER_CONFIG="+filepath.Join(home, ".docker"),
		"REGISTRY_AUTH_FILE="+filepath.Join(home, "auth.json"),
		"XDG_RUNTIME_DIR="+filepath.Join(home, "run"),
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
	)
	return &Client{Home: home, Dir: home, env: env}
}

// Env adds KEY=VALUE variables to the environment of later commands.
func (c *Client) Env(kv ...string) { c.env = append(c.env, kv...) }

// Result is what one command did.
type Result struct {
	// Cmd is the command line, for messages.
	Cmd string
	// Stdout and Stderr are the command's outputs.
	Stdout, Stderr string
	// ExitCode is the exit status, -1 if it did not exit normally.
	ExitCode int
	// Err is nil when the command exited 0; otherwise why not (exit
	// status, timeout, not started).
	Err error
}

// String describes the result for a test message: command, outcome and
// both outputs.
func (r Result) String() string {
	outcome := "ok"
	if r.Err != nil {
		outcome = r.Err.Error()
	}
	return fmt.Sprintf("$ %s\n-> %s\n--- stdout:\n%s\n--- stderr:\n%s", r.Cmd, outcome, r.Stdout, r.Stderr)
}

// Run runs the program args[0] (found with Tool, so a missing one skips or
// fails the test) with args[1:], and returns what happened without judging
// it.
func (c *Client) Run(t testing.TB, args ...string) Result {
	t.Helper()
	return c.RunInput(t, "", args...)
}

// RunInput is Run with stdin as the command's standard input.
func (c *Client) RunInput(t testing.TB, stdin string, args ...string) Result {
	t.Helper()
	if len(args) == 0 {
		t.Fatal("harness: Run with no command")
	}
	bin := Tool(t, args[0])
	timeout := c.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args[1:]...)
	cmd.Dir = c.Dir
	cmd.Env = c.env
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	r := Result{Cmd: strings.Join(args, " "), Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: -1, Err: err}
	if cmd.ProcessState != nil {
		r.ExitCode = cmd.ProcessState.ExitCode()
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		r.Err = fmt.Errorf("timed out after %s: %v", timeout, err)
	}
	t.Logf("$ %s (%s, exit %d)", r.Cmd, time.Since(start).Round(time.Millisecond), r.ExitCode)
	return r
}

// Must runs the command and fails the test, with its output, unless it
// exits 0; it returns stdout.
func (c *Client) Must(t testing.TB, args ...string) string {
	t.Helper()
	return c.MustInput(t, "", args...)
}

// MustInput is Must with stdin as the command's standard input.
func (c *Client) MustInput(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	r := c.RunInput(t, stdin, args...)
	if r.Err != nil {
		t.Fatalf("command failed:\n%s", r)
	}
	return r.Stdout
}
