package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(Main(m.Run, Options{})) }

// TestCluster checks what the kube tests rely on: kubectl reaches the API
// server as an administrator, the built-in namespaces carry the
// kubernetes.io/metadata.name label the webhook namespaceSelector uses, a
// pod is stored without a service account (none is created by a
// controller-manager here) and the webhook admission plugins are on.
func TestCluster(t *testing.T) {
	c := Get(t)
	t.Logf("cluster started in %s", c.StartupTime)
	if v := c.Kubectl(t, "version", "-o", "json"); !strings.Contains(v, `"gitVersion": "v1.37.2"`) {
		t.Errorf("kubectl version does not show v1.37.2 on both sides:\n%s", v)
	}
	if out := c.Kubectl(t, "auth", "can-i", "*", "*"); strings.TrimSpace(out) != "yes" {
		t.Fatalf("the admin user may not do everything: %q", out)
	}
	if out := c.Kubectl(t, "get", "ns", "kube-system", "-o", "jsonpath={.metadata.labels.kubernetes\\.io/metadata\\.name}"); out != "kube-system" {
		t.Fatalf("kube-system's kubernetes.io/metadata.name label: %q", out)
	}
	c.Kubectl(t, "create", "namespace", "harness-test")
	c.Kubectl(t, "run", "-n", "harness-test", "--restart=Never", "--image=registry.example/app:1", "app")
	if out := c.Kubectl(t, "get", "pod", "-n", "harness-test", "app", "-o", "jsonpath={.spec.containers[0].image}"); out != "registry.example/app:1" {
		t.Fatalf("stored pod's image: %q", out)
	}
	// An empty webhook configuration is accepted: the admissionregistration
	// API is served.
	c.KubectlInput(t, `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: harness-test}
webhooks: []
`, "apply", "-f", "-")
	c.Kubectl(t, "delete", "validatingwebhookconfiguration", "harness-test")
}

// TestSecondAPIServer starts another API server on the same etcd: it has a
// key prefix of its own, so it does not see the first one's namespaces,
// and stopping it leaves the first one serving.
func TestSecondAPIServer(t *testing.T) {
	c := Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := c.StartAPIServer(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second API server started in %s", s.StartupTime)
	c.Kubectl(t, "create", "namespace", "only-on-first")
	if r := s.Run(t, "", "get", "namespace", "only-on-first"); r.Err == nil || !strings.Contains(r.Stderr, "NotFound") {
		t.Fatalf("the second API server sees the first one's namespace:\n%s", r)
	}
	s.Stop()
	if err := s.proc.running(); err == nil {
		t.Fatal("the second API server still runs after Stop")
	}
	c.Kubectl(t, "get", "namespace", "only-on-first")
}

// envOrphanChild makes TestOrphanChild write the cluster's process ids to
// the named file and wait to be killed.
const envOrphanChild = "CUSTOMS_KUBE_HARNESS_ORPHAN_CHILD"

// TestOrphanChild is TestNoOrphans' child; it does nothing otherwise.
func TestOrphanChild(t *testing.T) {
	out := os.Getenv(envOrphanChild)
	if out == "" {
		t.Skip("run by TestNoOrphans")
	}
	c := Get(t)
	pids := fmt.Sprintf("%s %d %d\n", c.Dir, c.etcd.cmd.Process.Pid, c.proc.cmd.Process.Pid)
	if err := os.WriteFile(out, []byte(pids), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Minute)
}

// TestNoOrphans kills (SIGKILL, no cleanup runs) a test binary whose
// cluster is up, and requires its etcd and kube-apiserver to be gone soon
// after: the kernel kills them (Pdeathsig).
func TestNoOrphans(t *testing.T) {
	Get(t)
	pidFile := filepath.Join(t.TempDir(), "pids")
	cmd := exec.Command(os.Args[0], "-test.run=^TestOrphanChild$", "-test.v")
	cmd.Env = append(os.Environ(), envOrphanChild+"="+pidFile)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	var pids []int
	deadline := time.Now().Add(3 * time.Minute)
	for len(pids) == 0 {
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			f := strings.Fields(string(b))
			// The child's directory: its cleanup does not run.
			t.Cleanup(func() { os.RemoveAll(f[0]) })
			for _, f := range f[1:] {
				n, err := strconv.Atoi(f)
				if err != nil {
					t.Fatal(err)
				}
				pids = append(pids, n)
			}
			break
		}
		select {
		case <-exited:
			t.Fatalf("the child exited before its cluster was up:\n%s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the child's cluster did not come up:\n%s", out.String())
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	for _, pid := range pids {
		gone := false
		for i := 0; i < 100 && !gone; i++ {
			// Gone, or a zombie waiting for a reaper (a container's
			// PID 1 may not reap): either way it no longer runs.
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			gone = err != nil || strings.Contains(string(stat), ") Z ")
			if !gone {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if !gone {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("process %d outlived the killed test binary", pid)
		}
	}
}
