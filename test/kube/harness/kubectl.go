package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// kubectlTimeout bounds one kubectl command.
const kubectlTimeout = 2 * time.Minute

// Result is what one kubectl command did.
type Result struct {
	// Cmd is the command line, for messages.
	Cmd string
	// Stdout and Stderr are the command's outputs.
	Stdout, Stderr string
	// ExitCode is the exit status, -1 if it did not exit normally.
	ExitCode int
	// Err is nil when the command exited 0; otherwise why not.
	Err error
}

// String describes the result for a test message.
func (r Result) String() string {
	outcome := "ok"
	if r.Err != nil {
		outcome = r.Err.Error()
	}
	return fmt.Sprintf("$ %s\n-> %s\n--- stdout:\n%s\n--- stderr:\n%s", r.Cmd, outcome, r.Stdout, r.Stderr)
}

// Run runs kubectl with the admin kubeconfig and args, with stdin as its
// input, and returns what happened without judging it.
func (s *APIServer) Run(t testing.TB, stdin string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.cluster.bins["kubectl"], args...)
	// A private HOME: kubectl's discovery cache stays out of the user's.
	cmd.Env = append(filterEnv(os.Environ(), "KUBECONFIG=", "HOME="), "KUBECONFIG="+s.Kubeconfig, "HOME="+t.TempDir())
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := Result{Cmd: "kubectl " + strings.Join(args, " "), Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: -1, Err: err}
	if cmd.ProcessState != nil {
		r.ExitCode = cmd.ProcessState.ExitCode()
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		r.Err = fmt.Errorf("timed out after %s: %v", kubectlTimeout, err)
	}
	t.Logf("$ %s (%s, exit %d)", r.Cmd, time.Since(start).Round(time.Millisecond), r.ExitCode)
	return r
}

// Kubectl runs kubectl with args and fails the test, with its output,
// unless it exits 0; it returns stdout.
func (s *APIServer) Kubectl(t testing.TB, args ...string) string {
	t.Helper()
	return s.KubectlInput(t, "", args...)
}

// KubectlInput is Kubectl with stdin as the command's input (for
// `kubectl apply -f -`).
func (s *APIServer) KubectlInput(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	r := s.Run(t, stdin, args...)
	if r.Err != nil {
		t.Fatalf("kubectl failed:\n%s", r)
	}
	return r.Stdout
}
