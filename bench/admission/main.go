// Command admission benchmarks customs' admission webhook against OPA's
// server answering the same ImageReviews with seed-002-style Rego: warm
// throughput and p50/p99 latency at several concurrencies, both servers
// started fresh on loopback in the same run. See bench/README.md.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/customs-dev/customs/internal/apiclient"
)

// The rules both servers apply (seed 002's image enforcer: naming
// conventions, no latest, production uses the internal registry).
const customsPolicy = `apiVersion: customs.dev/v1alpha1
kind: Policy
metadata: {name: image-enforcer}
spec:
  scope: {environments: [production]}
  registries: {allowed: [registry.corp.example]}
  tags: {deny: [latest]}
  names: {pattern: '[a-z0-9-]+/[a-z0-9-]+'}
`

const opaPolicy = `package io.k8s.image_policy

verify := {
	"apiVersion": "imagepolicy.k8s.io/v1alpha1",
	"kind": "ImageReview",
	"status": {"allowed": count(deny) == 0, "reason": concat("; ", deny)},
}

deny contains msg if {
	some c in input.spec.containers
	not startswith(c.image, "registry.corp.example/")
	msg := sprintf("%s: production must use the internal registry", [c.image])
}

deny contains msg if {
	some c in input.spec.containers
	endswith(c.image, ":latest")
	msg := sprintf("%s: the latest tag is not allowed", [c.image])
}

deny contains msg if {
	some c in input.spec.containers
	not regex.match("^[^/]+/[a-z0-9-]+/[a-z0-9-]+(:[A-Za-z0-9._-]+)?$", c.image)
	msg := sprintf("%s: repositories must be named ORG/NAME", [c.image])
}
`

// The two images every row alternates: one allowed, one denied.
var images = []struct {
	ref     string
	allowed bool
}{
	{"registry.corp.example/openpolicyagent/opa:0.4.9", true},
	{"docker.io/library/wordpress:latest", false},
}

func imageReview(image string) []byte {
	b, _ := json.Marshal(map[string]any{"apiVersion": "imagepolicy.k8s.io/v1alpha1", "kind": "ImageReview",
		"spec": map[string]any{"containers": []map[string]string{{"image": image}}, "namespace": "production"}})
	return b
}

func admissionReview(image string, i int) []byte {
	pod := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "web", "namespace": "production"},
		"spec": map[string]any{"containers": []map[string]string{{"name": "web", "image": image}}}}
	b, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
		"uid": fmt.Sprintf("bench-%d", i), "kind": map[string]string{"group": "", "version": "v1", "kind": "Pod"},
		"resource":  map[string]string{"group": "", "version": "v1", "resource": "pods"},
		"namespace": "production", "name": "web", "operation": "CREATE", "object": pod}})
	return b
}

// target is one row's server and request form.
type target struct {
	label  string
	url    string
	client *http.Client
	bodies [][]byte
	want   []bool
	// allowed reads the answer's verdict.
	allowed func([]byte) (bool, error)
	// protoMajor is the HTTP major version every answer must come in
	// (1 or 2).
	protoMajor int
}

func imageReviewAllowed(b []byte) (bool, error) {
	var r struct {
		Status struct {
			Allowed bool `json:"allowed"`
		} `json:"status"`
	}
	err := json.Unmarshal(b, &r)
	return r.Status.Allowed, err
}

func admissionAllowed(b []byte) (bool, error) {
	var r struct {
		Response *struct {
			Allowed bool `json:"allowed"`
		} `json:"response"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Response == nil {
		return false, fmt.Errorf("not an AdmissionReview response: %.200s", b)
	}
	return r.Response.Allowed, nil
}

// result is one measured row.
type result struct {
	label       string
	concurrency int
	n           int64
	elapsed     time.Duration
	p50, p99    time.Duration
	cpu         time.Duration // server process CPU during the row
}

func (r result) rps() float64 { return float64(r.n) / r.elapsed.Seconds() }

// run sends t's requests from c workers for d (after a warm-up) and
// checks every verdict.
func run(ctx context.Context, t target, c int, d time.Duration, cpu func() time.Duration) (result, error) {
	once := func(i int) (time.Duration, error) {
		j := i % len(t.bodies)
		start := time.Now()
		resp, err := t.client.Post(t.url, "application/json", bytes.NewReader(t.bodies[j]))
		if err != nil {
			return 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("%s: %s: %.300s", t.label, resp.Status, body)
		}
		if resp.ProtoMajor != t.protoMajor {
			return 0, fmt.Errorf("%s: answered over %s, want HTTP/%d", t.label, resp.Proto, t.protoMajor)
		}
		ok, err := t.allowed(body)
		if err != nil {
			return 0, err
		}
		if ok != t.want[j] {
			return 0, fmt.Errorf("%s: request %d answered allowed=%v, want %v: %.300s", t.label, j, ok, t.want[j], body)
		}
		return took, nil
	}
	// Warm-up: every body answered once per worker (caches, connections).
	warm := func(stop time.Time, record bool) ([][]time.Duration, int64, error) {
		lat := make([][]time.Duration, c)
		var n atomic.Int64
		var wg sync.WaitGroup
		var firstErr error
		var mu sync.Mutex
		for w := range c {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; time.Now().Before(stop) && ctx.Err() == nil; i += c {
					took, err := once(i)
					if err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						return
					}
					n.Add(1)
					if record {
						lat[w] = append(lat[w], took)
					}
				}
			}()
		}
		wg.Wait()
		return lat, n.Load(), firstErr
	}
	if _, _, err := warm(time.Now().Add(time.Second), false); err != nil {
		return result{}, err
	}
	cpu0 := cpu()
	start := time.Now()
	lat, n, err := warm(start.Add(d), true)
	elapsed := time.Since(start)
	if err != nil {
		return result{}, err
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	r := result{label: t.label, concurrency: c, n: n, elapsed: elapsed, cpu: cpu() - cpu0}
	if len(all) > 0 {
		r.p50 = all[len(all)/2]
		r.p99 = all[min(len(all)-1, len(all)*99/100)]
	}
	return r, nil
}

// procCPU returns the user+system CPU time of process pid so far.
func procCPU(pid int) func() time.Duration {
	return func() time.Duration {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(fields) < 13 {
			return 0
		}
		ut, _ := strconv.ParseInt(fields[11], 10, 64)
		st, _ := strconv.ParseInt(fields[12], 10, 64)
		return time.Duration(ut+st) * (time.Second / 100) // USER_HZ is 100 on Linux
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitFor(ctx context.Context, what string, timeout time.Duration, ok func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ok()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s did not come up: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// process is a started server.
type process struct {
	cmd *exec.Cmd
}

func start(dir, name, bin string, env []string, args ...string) (*process, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() { cmd.Wait(); logf.Close() }()
	return &process{cmd: cmd}, nil
}

func (p *process) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { p.cmd.Process.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
	}
}

func main() {
	customsBin := flag.String("customs", "customs", "customs binary")
	opaBin := flag.String("opa", "opa", "opa binary")
	duration := flag.Duration("duration", 5*time.Second, "measured time per row")
	concs := flag.String("concurrency", "1,16,64", "comma-separated client concurrencies")
	out := flag.String("out", "", "write the markdown report here (default stdout)")
	flag.Parse()
	if err := mainErr(*customsBin, *opaBin, *duration, *concs, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench/admission:", err)
		os.Exit(1)
	}
}

func mainErr(customsBin, opaBin string, d time.Duration, concs, out string) error {
	ctx := context.Background()
	var cs []int
	for _, s := range strings.Split(concs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-concurrency %q: %q is not a positive number", concs, s)
		}
		cs = append(cs, n)
	}
	dir, err := os.MkdirTemp("", "bench-admission-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// customs, with its admission listener and the policy.
	const password = "bench-admin-password"
	port, err := freePort()
	if err != nil {
		return err
	}
	admAddr := fmt.Sprintf("127.0.0.1:%d", port)
	dataDir := filepath.Join(dir, "customs-data")
	addrFile := filepath.Join(dir, "addr")
	cust, err := start(dir, "customs", customsBin, []string{"CUSTOMS_ADMIN_PASSWORD=" + password,
		"CUSTOMS_ADMISSION_ADDR=" + admAddr, "CUSTOMS_ADMISSION_ENVIRONMENTS=production=production", "CUSTOMS_LOG_LEVEL=warn"},
		"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--addr-file", addrFile)
	if err != nil {
		return err
	}
	defer cust.stop()
	var apiAddr string
	if err := waitFor(ctx, "customs", 60*time.Second, func() error {
		b, err := os.ReadFile(addrFile)
		if err != nil || len(bytes.TrimSpace(b)) == 0 {
			return fmt.Errorf("no address file yet")
		}
		apiAddr = strings.TrimSpace(string(b))
		resp, err := http.Get("http://" + apiAddr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %s", resp.Status)
		}
		return nil
	}); err != nil {
		return err
	}
	admin := &apiclient.Client{BaseURL: "http://" + apiAddr, Username: "admin", Password: password}
	if _, err := admin.ApplyPolicy(ctx, "image-enforcer", customsPolicy); err != nil {
		return fmt.Errorf("applying the policy: %w", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dataDir, "admission-tls", "ca.crt"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)

	// OPA's server with the Rego policy.
	opaPort, err := freePort()
	if err != nil {
		return err
	}
	regoFile := filepath.Join(dir, "image_policy.rego")
	if err := os.WriteFile(regoFile, []byte(opaPolicy), 0o644); err != nil {
		return err
	}
	opaAddr := fmt.Sprintf("127.0.0.1:%d", opaPort)
	opa, err := start(dir, "opa", opaBin, nil, "run", "--server", "--addr", opaAddr, "--log-level", "error", regoFile)
	if err != nil {
		return err
	}
	defer opa.stop()
	if err := waitFor(ctx, "opa", 30*time.Second, func() error {
		resp, err := http.Get("http://" + opaAddr + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}); err != nil {
		return err
	}
	// And OPA serving the same over TLS with customs' admission
	// certificate, so that both pay for TLS in one pair of rows.
	opaTLSPort, err := freePort()
	if err != nil {
		return err
	}
	opaTLSAddr := fmt.Sprintf("127.0.0.1:%d", opaTLSPort)
	tlsDir := filepath.Join(dataDir, "admission-tls")
	opaTLS, err := start(dir, "opa-tls", opaBin, nil, "run", "--server", "--addr", opaTLSAddr, "--log-level", "error",
		"--tls-cert-file", filepath.Join(tlsDir, "tls.crt"), "--tls-private-key-file", filepath.Join(tlsDir, "tls.key"), regoFile)
	if err != nil {
		return err
	}
	defer opaTLS.stop()
	healthClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if err := waitFor(ctx, "opa (TLS)", 30*time.Second, func() error {
		resp, err := healthClient.Get("https://" + opaTLSAddr + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}); err != nil {
		return err
	}
	opaVersion, _ := exec.Command(opaBin, "version").Output()

	var irs, ars [][]byte
	var want []bool
	for i, img := range images {
		irs = append(irs, imageReview(img.ref))
		ars = append(ars, admissionReview(img.ref, i))
		want = append(want, img.allowed)
	}
	mkClient := func(c int, tlsCfg *tls.Config, h2 bool) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg,
			MaxIdleConns: c * 2, MaxIdleConnsPerHost: c * 2, ForceAttemptHTTP2: h2}}
	}
	var results []result
	for _, c := range cs {
		tlsCfg := &tls.Config{RootCAs: pool}
		// The API server's webhook client speaks HTTP/2 to a TLS webhook
		// that offers it; both are measured.
		targets := []target{
			{label: "customs AdmissionReview (validate, TLS, HTTP/1.1)", url: "https://" + admAddr + "/validate?timeout=5s", client: mkClient(c, tlsCfg, false), bodies: ars, want: want, allowed: admissionAllowed, protoMajor: 1},
			{label: "customs AdmissionReview (validate, TLS, HTTP/2)", url: "https://" + admAddr + "/validate?timeout=5s", client: mkClient(c, tlsCfg.Clone(), true), bodies: ars, want: want, allowed: admissionAllowed, protoMajor: 2},
			{label: "customs ImageReview (TLS, HTTP/1.1)", url: "https://" + admAddr + "/imagereview", client: mkClient(c, tlsCfg.Clone(), false), bodies: irs, want: want, allowed: imageReviewAllowed, protoMajor: 1},
			{label: "OPA ImageReview (Rego, TLS, HTTP/1.1)", url: "https://" + opaTLSAddr + "/v0/data/io/k8s/image_policy/verify", client: mkClient(c, tlsCfg.Clone(), false), bodies: irs, want: want, allowed: imageReviewAllowed, protoMajor: 1},
			{label: "OPA ImageReview (Rego, plain HTTP/1.1)", url: "http://" + opaAddr + "/v0/data/io/k8s/image_policy/verify", client: mkClient(c, nil, false), bodies: irs, want: want, allowed: imageReviewAllowed, protoMajor: 1},
		}
		pids := []int{cust.cmd.Process.Pid, cust.cmd.Process.Pid, cust.cmd.Process.Pid, opaTLS.cmd.Process.Pid, opa.cmd.Process.Pid}
		for i, t := range targets {
			r, err := run(ctx, t, c, d, procCPU(pids[i]))
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "%-50s c=%-3d %8.0f req/s  p50 %8s  p99 %8s\n", r.label, c, r.rps(), r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond))
			results = append(results, r)
			t.client.CloseIdleConnections()
		}
	}
	report := renderReport(results, d, strings.TrimSpace(firstLine(string(opaVersion))))
	if out == "" {
		fmt.Print(report)
		return nil
	}
	return os.WriteFile(out, []byte(report), 0o644)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func renderReport(rs []result, d time.Duration, opaVersion string) string {
	var b strings.Builder
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&b, "| server | concurrency | reviews/s | p50 | p99 | server CPU µs/review |\n|---|---:|---:|---:|---:|---:|\n")
	for _, r := range rs {
		cpuPer := "–"
		if r.n > 0 && r.cpu > 0 {
			cpuPer = fmt.Sprintf("%.0f", float64(r.cpu.Microseconds())/float64(r.n))
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f | %s | %s | %s |\n", r.label, r.concurrency, r.rps(), fmtDur(r.p50), fmtDur(r.p99), cpuPer)
	}
	fmt.Fprintf(&b, "\n%s per row after a 1 s warm-up; half the requests allowed, half denied; %s; load average at the end: %s\n",
		d, opaVersion, strings.TrimSpace(string(load)))
	return b.String()
}

func fmtDur(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%.0f µs", float64(d.Microseconds()))
	}
	return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000)
}
