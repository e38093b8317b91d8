package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/internal/config"
	"github.com/customs-dev/customs/internal/store"
)

// TestAdmissionListener runs customs with admission on: the webhook serves
// TLS with the CA generated into the data directory; an image pushed to
// customs is admitted in production and pinned to its pushed digest by the
// mutating webhook, an outside image is refused with "no matching image
// policy", and kube-system is exempt.
func TestAdmissionListener(t *testing.T) {
	var dataDir string
	addr, srv := startServer(t, func(c *config.Config) {
		c.Admission.Addr = "127.0.0.1:0"
		c.Admission.Environments = config.EnvironmentMap{"production": {"production", "prod-*"}}
		dataDir = c.DataDir
	})
	ctx := context.Background()
	admin := &apiclient.Client{BaseURL: "http://" + addr, Username: "admin", Password: adminPassword}
	if _, err := admin.CreateProject(ctx, "kuard", false); err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(addr+"/kuard/kuard-amd64:blue", name.Insecure)
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "admin", Password: adminPassword})); err != nil {
		t.Fatal(err)
	}
	pushed, _ := img.Digest()
	if _, err := admin.ApplyPolicy(ctx, "production", fmt.Sprintf(`apiVersion: customs.dev/v1alpha1
kind: Policy
metadata: {name: production}
spec:
  scope: {environments: [production], repositories: ["%s/**"]}
  tags: {deny: [latest]}
`, addr)); err != nil {
		t.Fatal(err)
	}

	caPEM, err := os.ReadFile(filepath.Join(dataDir, "admission-tls", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.crt holds no certificate")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()
	webhook := "https://" + srv.AdmissionAddr()
	if !strings.HasPrefix(srv.AdmissionAddr(), "127.0.0.1:") {
		t.Fatalf("admission address %q", srv.AdmissionAddr())
	}
	review := func(path, ns, image string) *admissionv1.AdmissionResponse {
		t.Helper()
		pod, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]string{"name": "kuard", "namespace": ns},
			"spec": map[string]any{"containers": []map[string]string{{"name": "kuard", "image": image}}}})
		body, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
			"uid": "u-" + ns, "kind": map[string]string{"group": "", "version": "v1", "kind": "Pod"},
			"resource":  map[string]string{"group": "", "version": "v1", "resource": "pods"},
			"namespace": ns, "name": "kuard", "operation": "CREATE", "object": json.RawMessage(pod)}})
		resp, err := client.Post(webhook+path+"?timeout=5s", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out admissionv1.AdmissionReview
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Response == nil {
			t.Fatalf("%s: status %d, %v", path, resp.StatusCode, err)
		}
		return out.Response
	}
	internal := addr + "/kuard/kuard-amd64:blue"
	if r := review("/validate", "production", internal); !r.Allowed {
		t.Errorf("customs' image refused in production: %+v", r.Result)
	}
	if r := review("/validate", "prod-eu", fmt.Sprintf("%s/kuard/kuard-amd64:latest@%s", addr, pushed)); r.Allowed || !strings.Contains(r.Result.Message, `rule tags`) {
		t.Errorf("latest tag in prod-eu: %+v", r)
	}
	if r := review("/validate", "production", addr+"/kuard/kuard-amd64:green"); r.Allowed || !strings.Contains(r.Result.Message, `not found in customs`) {
		t.Errorf("a tag customs does not have: %+v", r)
	}
	r := review("/validate", "production", "gcr.io/kuar-demo/kuard-amd64:blue")
	if r.Allowed || !strings.Contains(r.Result.Message, "no matching image policy") || !strings.Contains(r.Result.Message, `container "kuard"`) {
		t.Errorf("outside image in production: %+v", r.Result)
	}
	if r := review("/validate", "kube-system", "gcr.io/kuar-demo/kuard-amd64:blue"); !r.Allowed || r.AuditAnnotations["outcome"] != "exempt" {
		t.Errorf("kube-system: %+v", r)
	}
	m := review("/mutate", "production", internal)
	want := fmt.Sprintf(`[{"op":"replace","path":"/spec/containers/0/image","value":"%s@%s"}]`, internal, pushed)
	if !m.Allowed || string(m.Patch) != want {
		t.Errorf("mutate patch %s, want %s", m.Patch, want)
	}
	resp, err := client.Get(webhook + "/healthz")
	if err != nil || resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("healthz: %v %v, want 200 over HTTP/2", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`customs_admission_reviews_total{door="validate",outcome="allowed"} 1`,
		`customs_admission_reviews_total{door="validate",outcome="denied"} 3`, `customs_admission_reviews_total{door="validate",outcome="exempt"} 1`,
		`customs_admission_reviews_total{door="mutate",outcome="patched"} 1`, `customs_admission_review_duration_seconds_count{door="validate"} 5`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// BenchmarkAdmissionWebhook measures a warm validating review through the
// webhook the server builds (runtime decider over SQLite, resolver cache),
// without TLS and HTTP transport: seed 002's image enforcer policy, an
// allowed and a denied outside image alternating.
func BenchmarkAdmissionWebhook(b *testing.B) {
	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	cfg.Addr = "127.0.0.1:0"
	cfg.GC.Interval = 0
	cfg.Scan.Workers = 0
	cfg.Admission.Environments = config.EnvironmentMap{"production": {"production"}}
	ctx := context.Background()
	srv, err := New(ctx, cfg, Options{Logger: slog.New(slog.DiscardHandler), AdminPassword: adminPassword})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Store.PutPolicy(ctx, &store.PolicyDocument{Name: "image-enforcer", Document: `apiVersion: customs.dev/v1alpha1
kind: Policy
metadata: {name: image-enforcer}
spec:
  scope: {environments: [production]}
  registries: {allowed: [registry.corp.example]}
  tags: {deny: [latest]}
  names: {pattern: '[a-z0-9-]+/[a-z0-9-]+'}
`}); err != nil {
		b.Fatal(err)
	}
	wh, err := srv.newWebhook(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000})
	if err != nil {
		b.Fatal(err)
	}
	h := wh.Handler()
	var bodies [][]byte
	for i, img := range []string{"registry.corp.example/openpolicyagent/opa:0.4.9", "docker.io/library/wordpress:latest"} {
		pod, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]string{"name": "web", "namespace": "production"},
			"spec": map[string]any{"containers": []map[string]string{{"name": "web", "image": img}}}})
		body, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
			"uid": fmt.Sprint("u", i), "kind": map[string]string{"group": "", "version": "v1", "kind": "Pod"},
			"resource":  map[string]string{"group": "", "version": "v1", "resource": "pods"},
			"namespace": "production", "name": "web", "operation": "CREATE", "object": json.RawMessage(pod)}})
		bodies = append(bodies, body)
	}
	serve := func(i int) {
		req := httptest.NewRequest(http.MethodPost, "/validate?timeout=5s", bytes.NewReader(bodies[i%2]))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 || strings.Contains(rec.Body.String(), `"allowed":true`) != (i%2 == 0) {
			b.Fatalf("answer %d: %s", rec.Code, rec.Body)
		}
	}
	serve(0)
	serve(1)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		serve(i)
		i++
	}
}
