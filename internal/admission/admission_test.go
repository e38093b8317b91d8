package admission

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/policy"
)

// TestImagesOfEveryKind: each workload kind's pod template is read, with
// field paths and JSON pointers that match its layout.
func TestImagesOfEveryKind(t *testing.T) {
	podSpec := `{"initContainers":[{"name":"i","image":"init:1"}],"containers":[{"name":"c","image":"app:1"}],` +
		`"ephemeralContainers":[{"name":"e","image":"debug:1"}],"volumes":[{"name":"v","image":{"reference":"data:1"}},{"name":"empty","emptyDir":{}}]}`
	tmpl := `{"metadata":{},"spec":` + podSpec + `}`
	for _, tc := range []struct {
		group, version, kind, object, prefix string
	}{
		{"", "v1", "Pod", `{"spec":` + podSpec + `}`, "spec"},
		{"", "v1", "ReplicationController", `{"spec":{"template":` + tmpl + `}}`, "spec.template.spec"},
		{"", "v1", "PodTemplate", `{"template":` + tmpl + `}`, "template.spec"},
		{"apps", "v1", "Deployment", `{"spec":{"template":` + tmpl + `}}`, "spec.template.spec"},
		{"apps", "v1", "ReplicaSet", `{"spec":{"template":` + tmpl + `}}`, "spec.template.spec"},
		{"apps", "v1", "StatefulSet", `{"spec":{"template":` + tmpl + `}}`, "spec.template.spec"},
		{"apps", "v1", "DaemonSet", `{"spec":{"template":` + tmpl + `}}`, "spec.template.spec"},
		{"batch", "v1", "Job", `{"spec":{"template":` + tmpl + `}}`, "spec.template.spec"},
		{"batch", "v1", "CronJob", `{"spec":{"jobTemplate":{"spec":{"template":` + tmpl + `}}}}`, "spec.jobTemplate.spec.template.spec"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			uses, err := ImagesOf(metav1.GroupVersionKind{Group: tc.group, Version: tc.version, Kind: tc.kind}, []byte(tc.object))
			if err != nil {
				t.Fatal(err)
			}
			ptr := "/" + strings.ReplaceAll(tc.prefix, ".", "/")
			want := []ImageUse{
				{Field: tc.prefix + ".initContainers[0].image", Pointer: ptr + "/initContainers/0/image", Role: "init container", Name: "i", Image: "init:1"},
				{Field: tc.prefix + ".containers[0].image", Pointer: ptr + "/containers/0/image", Role: "container", Name: "c", Image: "app:1"},
				{Field: tc.prefix + ".ephemeralContainers[0].image", Pointer: ptr + "/ephemeralContainers/0/image", Role: "ephemeral container", Name: "e", Image: "debug:1"},
				{Field: tc.prefix + ".volumes[0].image.reference", Pointer: ptr + "/volumes/0/image/reference", Role: "image volume", Name: "v", Image: "data:1"},
			}
			if !reflect.DeepEqual(uses, want) {
				t.Errorf("uses:\n%+v\nwant:\n%+v", uses, want)
			}
		})
	}
	_, err := ImagesOf(metav1.GroupVersionKind{Version: "v1", Kind: "Service"}, []byte(`{}`))
	var unknown ErrUnknownKind
	if !errors.As(err, &unknown) {
		t.Errorf("Service: %v, want ErrUnknownKind", err)
	}
	if _, err := ImagesOf(metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, nil); err == nil || !strings.Contains(err.Error(), "no object") {
		t.Errorf("no object: %v", err)
	}
	if uses, err := ImagesOf(metav1.GroupVersionKind{Version: "v1", Kind: "ReplicationController"}, []byte(`{"spec":{}}`)); err != nil || len(uses) != 0 {
		t.Errorf("RC without template: %v %v", uses, err)
	}
}

// TestEnvironments: labels win over the mapping; exact names over globs;
// the most literal glob wins; a labeler failure falls back to the mapping.
func TestEnvironments(t *testing.T) {
	labels := labelerFunc(func(ctx context.Context, ns string) (map[string]string, error) {
		switch ns {
		case "payments":
			return map[string]string{"env": "production"}, nil
		case "broken":
			return nil, fmt.Errorf("API server down")
		}
		return map[string]string{}, nil
	})
	e, err := NewEnvironments(map[string][]string{
		"production":  {"prod-*", "payments-legacy"},
		"development": {"dev-*", "*"},
		"staging":     {"prod-staging", "broken"},
		"eu":          {"prod-eu-*"},
	}, "env", labels)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ns, env, source string }{
		{"payments", "production", "label"},
		{"payments-legacy", "production", "mapping"},
		{"prod-web", "production", "mapping"},
		{"prod-staging", "staging", "mapping"},
		{"prod-eu-1", "eu", "mapping"},
		{"dev-alice", "development", "mapping"},
		{"anything", "development", "mapping"},
		{"", "", ""},
	} {
		env, src, err := e.Of(context.Background(), tc.ns)
		if env != tc.env || src != tc.source || err != nil {
			t.Errorf("%q: %q %q %v, want %q %q", tc.ns, env, src, err, tc.env, tc.source)
		}
	}
	env, _, err := e.Of(context.Background(), "broken")
	if env != "staging" || err == nil {
		t.Errorf("broken labeler: %q %v, want the mapping's staging and the error", env, err)
	}
	for _, bad := range []map[string][]string{
		{"p": {"Prod"}}, {"p": {"a["}}, {"p": {}}, {"p": {"x"}, "q": {"x"}}, {"": {"x"}},
	} {
		if _, err := NewEnvironments(bad, "", nil); err == nil {
			t.Errorf("mapping %v accepted", bad)
		}
	}
	x, err := NewExemptions([]string{"kube-system", "customs", "ops-*"})
	if err != nil {
		t.Fatal(err)
	}
	for ns, want := range map[string]bool{"kube-system": true, "customs": true, "ops-a": true, "kube-public": false, "": false, "customs-x": false} {
		if got, _ := x.Exempt(ns); got != want {
			t.Errorf("Exempt(%q) = %v, want %v", ns, got, want)
		}
	}
}

type labelerFunc func(ctx context.Context, ns string) (map[string]string, error)

func (f labelerFunc) NamespaceLabels(ctx context.Context, ns string) (map[string]string, error) {
	return f(ctx, ns)
}

// TestExternalImagesModes: images outside customs are decided by registry
// rules and the policy's externalImages setting, and say so.
func TestExternalImagesModes(t *testing.T) {
	ps, err := policy.Parse("p.yaml", []byte(`apiVersion: customs.dev/v1alpha1
kind: Policy
metadata: {name: strict}
spec:
  scope: {namespaces: [strict]}
  vulnerabilities: {maxSeverity: critical}
---
apiVersion: customs.dev/v1alpha1
kind: Policy
metadata: {name: lenient}
spec:
  scope: {namespaces: [lenient]}
  vulnerabilities: {maxSeverity: critical}
  externalImages: warn
---
apiVersion: customs.dev/v1alpha1
kind: Policy
metadata: {name: open}
spec:
  scope: {namespaces: [open]}
  vulnerabilities: {maxSeverity: critical}
  externalImages: allow
`))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := policy.Compile(ps, policy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	dec := &engineDecider{eng: eng, cache: policy.NewCache(policy.CacheConfig{})}
	w, err := New(Options{Decider: dec, Resolver: &RegistryResolver{Store: newTagMap(), Hosts: []string{registryHost}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ns      string
		allowed bool
		text    string
	}{
		{"strict", false, "is not in customs, so its vulnerabilities cannot be checked, and policy \"strict\" requires a scan"},
		{"lenient", true, "Warning: docker.io/library/nginx is not in customs"},
		{"open", true, ""},
	} {
		t.Run(tc.ns, func(t *testing.T) {
			out := w.Validate(context.Background(), 0, podReview(t, tc.ns, "nginx:1.27"))
			r := out.Response
			if r.Allowed != tc.allowed {
				t.Fatalf("allowed %v, want %v: %+v", r.Allowed, tc.allowed, r.Result)
			}
			text := strings.Join(r.Warnings, " ")
			if r.Result != nil {
				text += r.Result.Message
			}
			if !strings.Contains(text, tc.text) {
				t.Errorf("answer %q lacks %q", text, tc.text)
			}
			if tc.ns == "open" && text != "" {
				t.Errorf("allow mode should answer silently, got %q", text)
			}
		})
	}
}

// podReview is a CREATE review of a Pod with one container per image.
func podReview(t testing.TB, ns string, images ...string) *admissionv1.AdmissionReview {
	t.Helper()
	var cs []map[string]string
	for i, img := range images {
		cs = append(cs, map[string]string{"name": fmt.Sprintf("c%d", i), "image": img})
	}
	obj, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]string{"name": "p", "namespace": ns},
		"spec": map[string]any{"containers": cs}})
	return &admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: AdmissionReviewAPIVersion, Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "uid-1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: ns, Name: "p",
			Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: obj}},
	}
}

// slowResolver counts lookups and takes its time.
type slowResolver struct {
	calls atomic.Int64
	delay time.Duration
	res   Resolution
}

func (s *slowResolver) Resolve(ctx context.Context, img policy.Image) (Resolution, error) {
	s.calls.Add(1)
	time.Sleep(s.delay)
	return s.res, nil
}

// TestCachingResolverSingleflight: concurrent requests for one reference
// share one lookup; the result is kept for the TTL, an unresolved one for
// the negative TTL.
func TestCachingResolverSingleflight(t *testing.T) {
	next := &slowResolver{delay: 50 * time.Millisecond, res: Resolution{InCustoms: true, Project: "kuard", Digest: cleanDigest}}
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := NewCachingResolver(next, time.Minute, 5*time.Second, clock)
	img, _ := policy.ParseImage("registry.local:5000/kuard/kuard-clean:1")
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.Resolve(context.Background(), img)
			if err != nil || r.Digest != cleanDigest {
				t.Errorf("resolve: %+v %v", r, err)
			}
		}()
	}
	wg.Wait()
	if n := next.calls.Load(); n != 1 {
		t.Errorf("%d lookups for 32 concurrent requests, want 1", n)
	}
	c.Resolve(context.Background(), img)
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	c.Resolve(context.Background(), img)
	if n := next.calls.Load(); n != 2 {
		t.Errorf("%d lookups after the TTL, want 2", n)
	}
	next.res = Resolution{Note: "not found"}
	other, _ := policy.ParseImage("registry.local:5000/kuard/missing:1")
	c.Resolve(context.Background(), other)
	mu.Lock()
	now = now.Add(6 * time.Second)
	mu.Unlock()
	c.Resolve(context.Background(), other)
	if n := next.calls.Load(); n != 4 {
		t.Errorf("%d lookups, want 4 (an unresolved tag is kept only the negative TTL)", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	next.delay = 200 * time.Millisecond
	third, _ := policy.ParseImage("registry.local:5000/kuard/slow:1")
	if _, err := c.Resolve(ctx, third); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a caller past its deadline got %v", err)
	}
}

// TestMissingTagRefused: an image of customs' registry whose tag customs
// does not have is refused with that reason, not as "scan pending".
func TestMissingTagRefused(t *testing.T) {
	w, _, _ := newFixtureWebhook(t)
	out := w.Validate(context.Background(), 0, podReview(t, "production", "registry.local:5000/kuard/kuard-clean:2"))
	if out.Response.Allowed || !strings.Contains(out.Response.Result.Message, `not found in customs (customs has no tag "2" in kuard/kuard-clean); push it first`) {
		t.Errorf("answer %+v", out.Response.Result)
	}
}

// TestDecisionsShared: concurrent reviews of the same image share one
// evaluation (the Decider's cache) and one tag lookup (the resolver
// cache).
func TestDecisionsShared(t *testing.T) {
	w, dec, tags := newFixtureWebhook(t)
	w.opts.Resolver = NewCachingResolver(w.opts.Resolver, time.Minute, time.Second, nil)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := w.Validate(context.Background(), 0, podReview(t, "production", "registry.local:5000/kuard/kuard-clean:1"))
			if !out.Response.Allowed {
				t.Errorf("refused: %+v", out.Response.Result)
			}
		}()
	}
	wg.Wait()
	if n := tags.lookup.Load(); n != 1 {
		t.Errorf("%d tag lookups for 64 concurrent reviews, want 1", n)
	}
	if n := dec.cache.Len(); n != 1 {
		t.Errorf("%d cached decisions, want 1", n)
	}
}

// TestDeadline: a review whose decision does not come in time is refused
// before the API server's timeout, naming the image; the mutating webhook
// lets it through unpatched.
func TestDeadline(t *testing.T) {
	w, dec, _ := newFixtureWebhook(t)
	dec.delay = 5 * time.Second
	start := time.Now()
	out := w.Validate(context.Background(), 500*time.Millisecond, podReview(t, "production", "registry.local:5000/kuard/kuard-clean:1"))
	took := time.Since(start)
	if out.Response.Allowed || !strings.Contains(out.Response.Result.Message, "not decided before the request's deadline") ||
		!strings.Contains(out.Response.Result.Message, "kuard-clean:1") {
		t.Errorf("answer %+v", out.Response.Result)
	}
	if took >= 500*time.Millisecond {
		t.Errorf("answered after %v, not before the 500ms timeout", took)
	}
	m := w.Mutate(context.Background(), 500*time.Millisecond, podReview(t, "production", "registry.local:5000/kuard/kuard-clean:1"))
	if !m.Response.Allowed || m.Response.Patch != nil {
		t.Errorf("mutate past the deadline: %+v", m.Response)
	}
}

// TestHandlerErrors: bad requests get a clear 4xx naming the problem.
func TestHandlerErrors(t *testing.T) {
	w, _, _ := newFixtureWebhook(t)
	h := w.Handler()
	for _, tc := range []struct {
		name, method, path, ctype, body string
		code                            int
		want                            string
	}{
		{"not JSON", "POST", "/validate", "application/json", "{", 400, "not valid JSON"},
		{"v1beta1", "POST", "/validate", "application/json", `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}`, 400, "admissionReviewVersions: [v1]"},
		{"no request", "POST", "/mutate", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, 400, "request is missing"},
		{"no uid", "POST", "/validate", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"kind":{"version":"v1","kind":"Pod"},"operation":"CREATE"}}`, 400, "request.uid is empty"},
		{"empty image review", "POST", "/imagereview", "application/json", `{"apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"ImageReview","spec":{}}`, 400, "spec.containers is empty"},
		{"wrong content type", "POST", "/validate", "text/plain", "{}", 415, "not application/json"},
		{"charset is fine", "POST", "/imagereview", "application/json; charset=utf-8", `{"apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"ImageReview","spec":{"containers":[{"image":"nginx"}]}}`, 200, `"allowed":false`},
		{"bad timeout", "POST", "/validate?timeout=soon", "application/json", "{}", 400, `timeout "soon"`},
		{"too big", "POST", "/validate", "application/json", strings.Repeat(" ", MaxBodyBytes+1), 413, "more than"},
		{"GET validate", "GET", "/validate", "", "", 405, ""},
		{"healthz", "GET", "/healthz", "", "", 200, "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
				t.Errorf("%d %q, want %d with %q", rec.Code, rec.Body.String(), tc.code, tc.want)
			}
		})
	}
}

// TestEnsureTLS: the generated CA and certificate serve TLS a client
// trusting ca.crt accepts; they are kept across calls, and the serving
// certificate (not the CA) is issued again when it nears expiry or the
// names change.
func TestEnsureTLS(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	g, err := EnsureTLS(dir, nil, now)
	if err != nil || !g.Issued || !g.CAIssued {
		t.Fatalf("first call: %+v %v", g, err)
	}
	if fi, err := os.Stat(g.KeyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v", fi.Mode(), err)
	}
	ca1, _ := os.ReadFile(g.CAFile)
	g2, err := EnsureTLS(dir, nil, now.Add(time.Hour))
	if err != nil || g2.Issued || g2.CAIssued {
		t.Errorf("second call issued again: %+v %v", g2, err)
	}
	g3, err := EnsureTLS(dir, nil, now.AddDate(0, 11, 5))
	if err != nil || !g3.Issued || g3.CAIssued {
		t.Errorf("near the certificate's expiry: %+v %v, want a new certificate under the same CA", g3, err)
	}
	g4, err := EnsureTLS(dir, []string{"localhost", "127.0.0.1", "webhook.example"}, now.AddDate(0, 11, 5))
	if err != nil || !g4.Issued {
		t.Errorf("new names: %+v %v", g4, err)
	}
	if ca2, _ := os.ReadFile(g.CAFile); string(ca1) != string(ca2) {
		t.Error("the CA changed although it is valid for years")
	}
	if g5, err := EnsureTLS(dir, nil, now.AddDate(9, 11, 15)); err != nil || !g5.CAIssued {
		t.Errorf("near the CA's expiry: %+v %v", g5, err)
	}

	// Serve the webhook with the generated certificate; a client trusting
	// only ca.crt reaches it as 127.0.0.1 and localhost.
	dir = t.TempDir()
	g, err = EnsureTLS(dir, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(g.CertFile, g.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	w, _, _ := newFixtureWebhook(t)
	srv := httptest.NewUnstartedServer(w.Handler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	caPEM, _ := os.ReadFile(g.CAFile)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.crt holds no certificate")
	}
	if blk, _ := pem.Decode(caPEM); blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatal("ca.crt is not a PEM certificate")
	}
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	body, _ := json.Marshal(podReview(t, "production", "gcr.io/kuar-demo/kuard-amd64:blue"))
	for _, host := range []string{"127.0.0.1", "localhost"} {
		resp, err := client.Post(fmt.Sprintf("https://%s:%d/validate?timeout=5s", host, port), "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		var out admissionv1.AdmissionReview
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if out.Response == nil || out.Response.Allowed || !strings.Contains(out.Response.Result.Message, "no matching image policy") {
			t.Errorf("%s: %+v", host, out.Response)
		}
	}
	// A client that does not trust the CA is refused.
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get(fmt.Sprintf("https://127.0.0.1:%d/healthz", port)); err == nil {
		t.Error("a client without the CA connected")
	}
}

// failingDecider fails every decision with an internal error.
type failingDecider struct{ err error }

func (f failingDecider) Decide(context.Context, *policy.Input) (*policy.Decision, error) {
	return nil, f.err
}

// TestFailuresFailClosed: a decider or store failure refuses the image
// with a caller-safe message; the internal detail stays in the log.
func TestFailuresFailClosed(t *testing.T) {
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"internal", fmt.Errorf("sqlite: disk I/O error at page 42"), "could not be decided, failing closed: internal error (details in customs' log)"},
		{"wrapped", apperr.Wrap(fmt.Errorf("parse error at line 3"), apperr.EINTERNAL, `stored policy "x" does not parse`), `could not be decided, failing closed: stored policy "x" does not parse (details in customs' log)`},
		{"invalid input", apperr.Errorf(apperr.EINVALID, "input image: registry is not a host"), "could not be decided, failing closed: input image: registry is not a host"},
		{"deadline", context.DeadlineExceeded, "could not be decided, failing closed: the request's deadline passed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := New(Options{Decider: failingDecider{tc.err}, Resolver: &RegistryResolver{Store: newTagMap(), Hosts: []string{registryHost}}, Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			out := w.Validate(context.Background(), 0, podReview(t, "web", "nginx:1"))
			if out.Response.Allowed || !strings.Contains(out.Response.Result.Message, tc.want) {
				t.Errorf("answer %+v, want %q", out.Response.Result, tc.want)
			}
		})
	}
	if !strings.Contains(logs.String(), "disk I/O error") {
		t.Errorf("the internal error is not in the log:\n%s", logs.String())
	}
}
