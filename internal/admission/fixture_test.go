package admission

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/policy"
	"github.com/customs-dev/customs/internal/store"
)

// registryHost is customs' registry in the fixtures.
const registryHost = "registry.local:5000"

var (
	vulnerableDigest = "sha256:" + strings.Repeat("a", 64)
	cleanDigest      = "sha256:" + strings.Repeat("b", 64)
	remoteDigest     = "sha256:" + strings.Repeat("c", 64)
)

// fixturePolicies are seed 000's environments (development open, staging
// trusting gcr.io, production taking only customs' images under a
// threshold), a warn-mode namespace and a GitOps namespace that opts out of
// mutation.
const fixturePolicies = `apiVersion: customs.dev/v1alpha1
kind: Policy
metadata: {name: development}
spec:
  scope: {environments: [development]}
---
apiVersion: customs.dev/v1alpha1
kind: Policy
metadata: {name: staging}
spec:
  scope: {environments: [staging]}
  registries: {allowed: [gcr.io, registry.local:5000]}
---
apiVersion: customs.dev/v1alpha1
kind: Policy
metadata: {name: production}
spec:
  scope: {environments: [production], repositories: ["registry.local:5000/**"]}
  vulnerabilities: {maxSeverity: high}
---
apiVersion: customs.dev/v1alpha1
kind: Policy
metadata: {name: warned}
spec:
  scope: {namespaces: [warned]}
  tags: {deny: [latest], mode: warn}
---
apiVersion: customs.dev/v1alpha1
kind: Policy
metadata: {name: gitops}
spec:
  scope: {namespaces: [argo]}
  admission: {mutate: false}
---
apiVersion: customs.dev/v1alpha1
kind: Policy
metadata: {name: image-enforcer}
spec:
  scope: {namespaces: [ipw]}
  rego:
    modules:
      - name: enforcer.rego
        source: |
          package customs

          deny contains msg if {
            input.image.tag == "latest"
            not input.annotations["break-glass.image-policy.k8s.io/ticket"]
            msg := sprintf("%s: the latest tag is not allowed (break glass with a break-glass.image-policy.k8s.io/ticket annotation)", [input.image.reference])
          }
`

// engineDecider decides with a compiled engine, a policy.Cache and fixed
// scans: what package decide does over the store, without the store.
type engineDecider struct {
	eng   *policy.Engine
	cache *policy.Cache
	scans map[string]*policy.ScanSummary
	calls atomic.Int64
	delay time.Duration
}

func (d *engineDecider) Decide(ctx context.Context, in *policy.Input) (*policy.Decision, error) {
	d.calls.Add(1)
	if d.delay > 0 {
		select {
		case <-time.After(d.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	full := *in
	if full.Digest != "" {
		full.Scan = d.scans[full.Digest]
	}
	return d.cache.Evaluate(ctx, d.eng, &full)
}

func newEngineDecider(t testing.TB) *engineDecider {
	t.Helper()
	ps, err := policy.Parse("fixture.yaml", []byte(fixturePolicies))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := policy.Compile(ps, policy.Config{Now: func() time.Time { return time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	return &engineDecider{eng: eng, cache: policy.NewCache(policy.CacheConfig{}), scans: map[string]*policy.ScanSummary{
		vulnerableDigest: {Status: policy.ScanDone, VulnDBRevision: 1, Findings: []policy.Finding{{
			ID: "ALPINE-CVE-2019-14697", Aliases: []string{"CVE-2019-14697"}, Package: "musl", Installed: "1.1.20-r4",
			Fixed: []string{"1.1.20-r5"}, Severity: policy.High}}},
		cleanDigest: {Status: policy.ScanDone, VulnDBRevision: 1, Findings: []policy.Finding{}},
	}}
}

// tagMap is a TagStore over a map of "repo:tag" to digest.
type tagMap struct {
	mu     sync.Mutex
	tags   map[string]string
	lookup atomic.Int64
}

func (m *tagMap) Tag(ctx context.Context, repo, tag string) (*store.Tag, error) {
	m.lookup.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.tags[repo+":"+tag]
	if !ok {
		return nil, apperr.Errorf(apperr.ENOTFOUND, "tag %s:%s not found", repo, tag)
	}
	return &store.Tag{Repository: repo, Name: tag, Digest: digest.Digest(d)}, nil
}

func newTagMap() *tagMap {
	return &tagMap{tags: map[string]string{
		"kuard/kuar-demo/kuard-amd64:blue": vulnerableDigest,
		"kuard/kuard-clean:1":              cleanDigest,
		"kuard/kuard-clean:latest":         cleanDigest,
	}}
}

// newFixtureWebhook is the webhook of the golden tests.
func newFixtureWebhook(t testing.TB) (*Webhook, *engineDecider, *tagMap) {
	t.Helper()
	envs, err := NewEnvironments(map[string][]string{
		"development": {"development", "dev-*"},
		"staging":     {"staging", "test"},
		"production":  {"production", "prod-*"},
	}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := NewExemptions([]string{"kube-system", "customs"})
	if err != nil {
		t.Fatal(err)
	}
	dec := newEngineDecider(t)
	tags := newTagMap()
	w, err := New(Options{Decider: dec, Resolver: &RegistryResolver{Store: tags, Hosts: []string{registryHost}},
		Environments: envs, Exempt: ex})
	if err != nil {
		t.Fatal(err)
	}
	return w, dec, tags
}

func ptrf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
