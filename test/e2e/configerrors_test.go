package e2e_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/test/e2e/harness"
)

// TestConfigErrorsNameTheKey starts the real `customs serve` with a bad
// setting in each place a setting comes from (the YAML file, a CUSTOMS_*
// variable, a flag) and requires it to refuse to start, at once, with an
// error naming the bad key (and the variable or line it came from), never
// a stack trace, and without listening (its --addr-file is never written).
func TestConfigErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	if os.Getenv(harness.EnvTarget) == harness.KindDistribution {
		t.Skip("customs' configuration")
	}
	bin := harness.CustomsBinary(t)
	tests := []struct {
		name string
		yaml string   // the config file, if any
		env  []string // CUSTOMS_* variables
		args []string // more flags
		want []string // all in the error
	}{
		{name: "unknown key in the file", yaml: "gc:\n  intervl: 1h\n", want: []string{"line 2 (gc.intervl)"}},
		{name: "misspelt top-level key", yaml: "addr: \":5000\"\nlisten: x\n", want: []string{"listen", "line 2"}},
		{name: "bad duration in the file", yaml: "gc:\n  interval: soon\n", want: []string{"line 2 (gc.interval)", "soon"}},
		{name: "bad number in the file", yaml: "registry:\n  maxManifestBytes: lots\n", want: []string{"registry.maxManifestBytes"}},
		{name: "out of range in the file", yaml: "auth:\n  tokenTTL: 1s\n", want: []string{"auth.tokenTTL"}},
		{name: "several bad keys named together", yaml: "auth:\n  tokenTTL: 1s\nlog:\n  level: loud\n",
			want: []string{"auth.tokenTTL", "log.level", "loud"}},
		{name: "bad value in the environment", env: []string{"CUSTOMS_LOG_LEVEL=loud"}, want: []string{"log.level", "loud"}},
		{name: "bad type in the environment", env: []string{"CUSTOMS_TLS_GENERATE=perhaps"},
			want: []string{"CUSTOMS_TLS_GENERATE", "tls.generate"}},
		{name: "bad flag", args: []string{"--db-driver", "mysql"}, want: []string{"database.driver", "mysql"}},
		{name: "postgres without a DSN", args: []string{"--db-driver", "postgres"}, want: []string{"database.dsn"}},
		{name: "certificate without a key", args: []string{"--tls-cert", "/nonexistent/cert.pem"}, want: []string{"tls."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			addrFile := filepath.Join(dir, "addr")
			args := []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--addr-file", addrFile}
			if tc.yaml != "" {
				path := filepath.Join(dir, "customs.yaml")
				if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", path)
			}
			args = append(args, tc.args...)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, args...)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "CUSTOMS_ADMIN_PASSWORD=config-test-pw"}, tc.env...)
			start := time.Now()
			out, err := cmd.CombinedOutput()
			msg := string(out)
			t.Logf("customs %s (env %v) after %s: %v\n%s", strings.Join(args, " "), tc.env, time.Since(start).Round(time.Millisecond), err, msg)
			if ctx.Err() != nil {
				t.Fatal("customs serve did not stop on a bad setting: it was still running after a minute")
			}
			if err == nil {
				t.Fatal("customs serve exited 0 with a bad setting")
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("the error does not name %q", w)
				}
			}
			for _, bad := range []string{"panic", "goroutine ", ".go:"} {
				if strings.Contains(msg, bad) {
					t.Errorf("the error contains %q (a crash, not a message)", bad)
				}
			}
			if _, err := os.Stat(addrFile); err == nil {
				t.Error("customs serve wrote its listening address despite the bad setting")
			}
		})
	}
}
