// Package harness runs a real Kubernetes control plane for tests: Debian's
// etcd and a kube-apiserver built from the k8s.io/kubernetes module
// (scripts/kube-deps.sh), on free loopback ports with a temporary
// directory, driven with the real kubectl.
//
// The API server serves TLS with a certificate of a CA generated per run,
// authenticates an admin user (group system:masters) by a client
// certificate, authorizes with RBAC, and runs the admission plugins a
// cluster has by default — ValidatingAdmissionWebhook and
// MutatingAdmissionWebhook included — except ServiceAccount (no
// controller-manager creates the default service accounts). Optionally
// ImagePolicyWebhook, configured by an AdmissionConfiguration file. There is
// no scheduler, kubelet or controller-manager: pods are stored, never run.
//
// Startup takes seconds, so a test package starts one cluster for all its
// tests from TestMain with Main, and each test gets it with Get. Further
// API servers (another admission configuration) share its etcd under their
// own key prefix (Cluster.StartAPIServer). Every process is stopped when
// the tests end, and killed by the kernel if the test binary dies first.
//
// The binaries are looked up in PATH and in the test cache
// ($CUSTOMS_TEST_CACHE or ~/.cache/customs-test, bin/). When they are
// missing the tests skip with a message naming them and scripts/kube-deps.sh,
// unless CUSTOMS_TEST_REQUIRE_KUBE=1 (set by scripts/test.sh), where they
// fail.
package harness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// EnvRequire, when "1", turns missing Kubernetes binaries into a failure.
const EnvRequire = "CUSTOMS_TEST_REQUIRE_KUBE"

// EnvKeep, when "1", keeps the cluster's directory (logs, certificates,
// kubeconfig) after the tests, and prints where it is.
const EnvKeep = "CUSTOMS_TEST_KEEP_KUBE"

// startTimeout bounds how long etcd or an API server may take to be ready.
const startTimeout = 90 * time.Second

// Binaries names the programs a cluster needs.
var Binaries = []string{"etcd", "kube-apiserver", "kubectl"}

// Options changes how an API server is started.
type Options struct {
	// AdmissionConfigFile, when set, is passed as
	// --admission-control-config-file and ImagePolicyWebhook is enabled: the
	// file is an AdmissionConfiguration naming its kubeconfig.
	AdmissionConfigFile string
	// Args are added to the API server's command line.
	Args []string
}

// Cluster is an etcd and the first API server on it.
type Cluster struct {
	*APIServer
	// Dir holds the cluster's files: pki/, etcd data, logs, kubeconfigs.
	Dir string
	// StartupTime is how long Start took, etcd and API server included.
	StartupTime time.Duration

	etcd     *process
	etcdURL  string
	pki      *pki
	bins     map[string]string
	prefixes atomic.Int32
}

// APIServer is one kube-apiserver.
type APIServer struct {
	// URL is the API server's https://127.0.0.1:PORT.
	URL string
	// Kubeconfig is a kubeconfig file for the admin user.
	Kubeconfig string
	// CAFile is the CA certificate that verifies the API server.
	CAFile string
	// StartupTime is how long this API server took to be ready.
	StartupTime time.Duration

	proc    *process
	cluster *Cluster
	name    string
}

// findBinaries returns the path of each of Binaries, or an error naming
// the missing ones.
func findBinaries() (map[string]string, error) {
	out := map[string]string{}
	var missing []string
	for _, name := range Binaries {
		if p, err := exec.LookPath(name); err == nil {
			out[name] = p
			continue
		}
		p := filepath.Join(cacheDir(), "bin", name)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			out[name] = p
			continue
		}
		missing = append(missing, name)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s not installed (not in PATH nor in %s): run scripts/kube-deps.sh (or make test)",
			strings.Join(missing, ", "), filepath.Join(cacheDir(), "bin"))
	}
	return out, nil
}

func cacheDir() string {
	if d := os.Getenv("CUSTOMS_TEST_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "customs-test")
}

// Start starts etcd and an API server in a new temporary directory and
// returns once the API server's /readyz answers 200. On error everything
// started is stopped again.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	begin := time.Now()
	bins, err := findBinaries()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "customs-kube-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, bins: bins}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	if c.pki, err = newPKI(filepath.Join(dir, "pki")); err != nil {
		return nil, fmt.Errorf("generating certificates: %w", err)
	}
	if err := c.startEtcd(ctx); err != nil {
		return nil, err
	}
	if c.APIServer, err = c.StartAPIServer(ctx, opts); err != nil {
		return nil, err
	}
	c.StartupTime = time.Since(begin)
	ok = true
	return c, nil
}

// startEtcd starts a single-member etcd on free loopback ports.
func (c *Cluster) startEtcd(ctx context.Context) error {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		client, err1 := freePort()
		peer, err2 := freePort()
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		clientURL := fmt.Sprintf("http://127.0.0.1:%d", client)
		peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
		data := filepath.Join(c.Dir, fmt.Sprintf("etcd-%d", attempt))
		args := []string{
			"--name", "customs-test",
			"--data-dir", data,
			"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
			"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
			"--initial-cluster", "customs-test=" + peerURL,
			"--initial-cluster-state", "new",
			// A test cluster: small, and no need to survive a power cut.
			"--snapshot-count", "10000",
			"--quota-backend-bytes", fmt.Sprint(1 << 30),
			"--logger", "zap", "--log-level", "warn",
		}
		// ETCD_* variables of the caller would override the flags.
		env := filterEnv(os.Environ(), "ETCD_")
		p, err := startProcess("etcd", c.bins["etcd"], args, env, filepath.Join(c.Dir, "etcd.log"))
		if err != nil {
			return err
		}
		if err := waitReady(ctx, p, func() bool {
			code, err := httpGet(http.DefaultClient, clientURL+"/health")
			return err == nil && code == http.StatusOK
		}); err != nil {
			p.Stop(5 * time.Second)
			lastErr = err
			if strings.Contains(err.Error(), "address already in use") {
				continue
			}
			return err
		}
		c.etcd, c.etcdURL = p, clientURL
		return nil
	}
	return lastErr
}

// StartAPIServer starts another API server on the cluster's etcd, under a
// key prefix of its own (so it sees none of the other servers' objects),
// and returns once its /readyz answers 200. The caller stops it.
func (c *Cluster) StartAPIServer(ctx context.Context, opts Options) (*APIServer, error) {
	begin := time.Now()
	n := c.prefixes.Add(1)
	name := fmt.Sprintf("apiserver-%d", n)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		plugins := "NamespaceLifecycle,LimitRanger,DefaultStorageClass,DefaultTolerationSeconds,PodSecurity," +
			"MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,ResourceQuota"
		if opts.AdmissionConfigFile != "" {
			plugins += ",ImagePolicyWebhook"
		}
		args := []string{
			"--etcd-servers", c.etcdURL,
			"--etcd-prefix", "/" + name,
			"--bind-address", "127.0.0.1",
			"--advertise-address", "127.0.0.1",
			// The kubernetes Service's endpoints would be the loopback
			// address, which the reconciler refuses; nothing here needs them.
			"--endpoint-reconciler-type", "none",
			"--secure-port", fmt.Sprint(port),
			"--tls-cert-file", c.pki.ServingCertFile,
			"--tls-private-key-file", c.pki.ServingKeyFile,
			"--client-ca-file", c.pki.CAFile,
			"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file", c.pki.SAPubFile,
			"--service-account-signing-key-file", c.pki.SAKeyFile,
			"--service-cluster-ip-range", "10.0.0.0/24",
			"--authorization-mode", "RBAC",
			"--enable-admission-plugins", plugins,
			// No controller-manager creates the default service accounts.
			"--disable-admission-plugins", "ServiceAccount",
			"--allow-privileged",
			"--profiling=false",
			// Less work per start: no OpenAPI v2 aggregation for kubectl
			// explain, no log spam.
			"--v", "1",
		}
		if opts.AdmissionConfigFile != "" {
			args = append(args, "--admission-control-config-file", opts.AdmissionConfigFile)
		}
		args = append(args, opts.Args...)
		env := filterEnv(os.Environ(), "KUBECONFIG=")
		p, err := startProcess(name, c.bins["kube-apiserver"], args, env, filepath.Join(c.Dir, name+".log"))
		if err != nil {
			return nil, err
		}
		s := &APIServer{
			URL:     fmt.Sprintf("https://127.0.0.1:%d", port),
			CAFile:  c.pki.CAFile,
			proc:    p,
			cluster: c,
			name:    name,
		}
		client, err := s.httpClient()
		if err != nil {
			p.Stop(5 * time.Second)
			return nil, err
		}
		err = waitReady(ctx, p, func() bool {
			code, err := httpGet(client, s.URL+"/readyz")
			return err == nil && code == http.StatusOK
		})
		client.CloseIdleConnections()
		if err != nil {
			p.Stop(10 * time.Second)
			lastErr = err
			if strings.Contains(err.Error(), "address already in use") {
				continue
			}
			return nil, err
		}
		if s.Kubeconfig, err = c.writeKubeconfig(name, s.URL); err != nil {
			p.Stop(10 * time.Second)
			return nil, err
		}
		s.StartupTime = time.Since(begin)
		return s, nil
	}
	return nil, lastErr
}

// httpClient is an HTTP client authenticated as the admin user.
func (s *APIServer) httpClient() (*http.Client, error) {
	p := s.cluster.pki
	cert, err := tls.LoadX509KeyPair(p.AdminCertFile, p.AdminKeyFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.caCert)
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}},
	}, nil
}

// writeKubeconfig writes an admin kubeconfig for url and returns its path.
func (c *Cluster) writeKubeconfig(name, url string) (string, error) {
	read := func(p string) (string, error) {
		b, err := os.ReadFile(p)
		return string(b), err
	}
	ca, err1 := read(c.pki.CAFile)
	cert, err2 := read(c.pki.AdminCertFile)
	key, err3 := read(c.pki.AdminKeyFile)
	if err := errors.Join(err1, err2, err3); err != nil {
		return "", err
	}
	path := filepath.Join(c.Dir, name+".kubeconfig")
	return path, os.WriteFile(path, []byte(Kubeconfig(name, url, ca, cert, key)), 0o600)
}

// Kubeconfig returns a kubeconfig with one cluster, user and context, all
// called name; the certificates and key are PEM text, embedded.
func Kubeconfig(name, server, caPEM, certPEM, keyPEM string) string {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: %[1]s
  cluster:
    server: %[2]s
    certificate-authority-data: %[3]s
users:
- name: %[1]s
  user:
    client-certificate-data: %[4]s
    client-key-data: %[5]s
contexts:
- name: %[1]s
  context:
    cluster: %[1]s
    user: %[1]s
current-context: %[1]s
`, name, server, b64(caPEM), b64(certPEM), b64(keyPEM))
}

// Stop stops the API server (SIGTERM, then SIGKILL after 10 s).
func (s *APIServer) Stop() {
	if s != nil && s.proc != nil {
		s.proc.Stop(10 * time.Second)
	}
}

// Logs returns the end of the API server's log (at most n bytes).
func (s *APIServer) Logs(n int) string { return s.proc.tail.last(n) }

// Stop stops the API server and etcd and removes the cluster's directory
// (kept under CUSTOMS_TEST_KEEP_KUBE=1). It is safe to call more than once.
func (c *Cluster) Stop() {
	if c == nil {
		return
	}
	c.APIServer.Stop()
	if c.etcd != nil {
		c.etcd.Stop(10 * time.Second)
	}
	if c.Dir == "" {
		return
	}
	if os.Getenv(EnvKeep) == "1" {
		fmt.Fprintf(os.Stderr, "kube harness: kept %s\n", c.Dir)
		return
	}
	os.RemoveAll(c.Dir)
}

// waitReady polls ready every 50 ms until it is true, the process exits,
// ctx ends or startTimeout passes.
func waitReady(ctx context.Context, p *process, ready func() bool) error {
	deadline := time.Now().Add(startTimeout)
	for {
		if ready() {
			return nil
		}
		if err := p.running(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s:\n%s", p.name, startTimeout, p.tail.last(16<<10))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func httpGet(c *http.Client, url string) (int, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// filterEnv returns environ without the variables whose names start with
// one of prefixes.
func filterEnv(environ []string, prefixes ...string) []string {
	var out []string
next:
	for _, kv := range environ {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

// the package's cluster, started by Main.
var pkg struct {
	cluster *Cluster
	err     error // why there is no cluster
}

// Main starts a cluster, runs the tests with run (m.Run, or a wrapper of
// it such as the e2e harness's Main), stops the cluster and returns the
// exit code. Missing binaries skip the tests that call Get (a failure under
// CUSTOMS_TEST_REQUIRE_KUBE=1); a cluster that does not start fails them.
// Use as
//
//	func TestMain(m *testing.M) { os.Exit(harness.Main(m.Run, harness.Options{})) }
func Main(run func() int, opts Options) int {
	if _, err := findBinaries(); err != nil {
		pkg.err = err
		return run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*startTimeout)
	c, err := Start(ctx, opts)
	cancel()
	if err != nil {
		pkg.err = fmt.Errorf("starting the test cluster: %w", err)
		fmt.Fprintln(os.Stderr, "kube harness:", pkg.err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "kube harness: etcd and kube-apiserver ready at %s in %s (%s)\n",
		c.URL, c.StartupTime.Round(time.Millisecond), c.Dir)
	pkg.cluster = c
	defer c.Stop()
	return run()
}

// Get returns the cluster Main started. Without one it skips the test
// (binaries missing) or fails it (CUSTOMS_TEST_REQUIRE_KUBE=1, or the
// cluster did not start). When the test fails, the end of the API server's
// log is printed.
func Get(t testing.TB) *Cluster {
	t.Helper()
	if pkg.cluster == nil {
		err := pkg.err
		if err == nil {
			err = errors.New("no cluster: call harness.Main from TestMain")
		}
		if !isMissingBinaries(err) {
			t.Fatal(err)
		}
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%v (%s=1: missing Kubernetes binaries fail)", err, EnvRequire)
		}
		t.Skipf("%v; set %s=1 to make this a failure", err, EnvRequire)
	}
	c := pkg.cluster
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kube-apiserver log (end):\n%s", c.Logs(32<<10))
		}
	})
	return c
}

func isMissingBinaries(err error) bool {
	return strings.Contains(err.Error(), "not installed")
}
