package policybench

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/policy"
)

// builtinRules and regoRules decide alike: images from the internal
// registry only, no latest, ORG/NAME names, no finding at or above high
// unless allowlisted (by id or alias), and a finished scan.
const builtinRules = `
registries:
  allowed: [registry.corp.example]
tags:
  deny: [latest]
names:
  pattern: '[a-z0-9-]+/[a-z0-9-]+'
vulnerabilities:
  maxSeverity: high
  unknownAs: critical
  useSystemAllowlist: false
  allowlist:
    - {id: CVE-2024-1000, reason: bench}
    - {id: CVE-2024-1001, reason: bench}
    - {id: CVE-2024-1002, reason: bench}
`

const regoRules = `
rego:
  modules:
    - name: rules.rego
      source: |
        package customs

        rank := {"none": 1, "low": 2, "medium": 3, "high": 4, "critical": 5, "unknown": 5}
        allowlist := {"CVE-2024-1000", "CVE-2024-1001", "CVE-2024-1002"}

        deny contains msg if {
          input.image.registry != "registry.corp.example"
          msg := sprintf("%s is not from an allowed registry", [input.image.name])
        }

        deny contains msg if {
          input.image.tag == "latest"
          msg := "tag \"latest\" is denied"
        }

        deny contains msg if {
          not regex.match("^[a-z0-9-]+/[a-z0-9-]+$", input.image.repository)
          msg := sprintf("repository %q does not match the naming convention", [input.image.repository])
        }

        deny contains "scan pending" if input.scan == null

        allowed(f) if allowlist[f.id]
        allowed(f) if {
          some a in f.aliases
          allowlist[a]
        }

        deny contains msg if {
          some f in input.scan.findings
          rank[f.severity] >= 4
          not allowed(f)
          msg := sprintf("%s (%s %s)", [f.id, f["package"], f.installed])
        }
`

// policies is a realistic set around the measured policy: a cluster
// default, environments, namespaces and 200 project settings policies.
func policies(b *testing.B, rules string) []*policy.Policy {
	var docs strings.Builder
	add := func(name, spec string) {
		fmt.Fprintf(&docs, "apiVersion: customs.dev/v1alpha1\nkind: Policy\nmetadata:\n  name: %s\nspec:\n%s\n---\n", name, indent(spec))
	}
	add("default", "registries: {allowed: ['*.corp.example']}")
	add("development", "scope: {environments: [development]}")
	add("staging", "scope: {environments: [staging]}\nregistries: {allowed: [gcr.io, registry.corp.example]}")
	add("production", "scope: {environments: [production]}\n"+rules)
	for _, ns := range []string{"kube-system", "payments", "web", "batch"} {
		add("ns-"+ns, "scope: {namespaces: ["+ns+"], environments: [development]}")
	}
	ps, err := policy.Parse("bench.yaml", []byte(docs.String()))
	if err != nil {
		b.Fatal(err)
	}
	for i := range 200 {
		s := policy.DefaultProjectSettings(fmt.Sprintf("project-%03d", i))
		s.PreventVulnerable, s.Severity = true, policy.Critical
		p, err := policy.ProjectPolicy(s)
		if err != nil {
			b.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

func indent(s string) string {
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n")
}

// input is a pod in production running an image of project-042 with 60
// findings: 3 high ones allowlisted, the rest below high (allowed), or
// with one more high finding (denied).
func input(b *testing.B, denied bool) *policy.Input {
	img, err := policy.ParseImage("registry.corp.example/project-042/payments-api:1.4.2")
	if err != nil {
		b.Fatal(err)
	}
	var fs []policy.Finding
	sevs := []policy.Severity{policy.Low, policy.Medium, policy.None, policy.Medium}
	for i := range 60 {
		f := policy.Finding{
			ID: fmt.Sprintf("DEBIAN-CVE-2024-%04d", 2000+i), Aliases: []string{fmt.Sprintf("CVE-2024-%04d", 2000+i)},
			Package: fmt.Sprintf("lib%02d", i), Installed: "1.0-1", Fixed: []string{"1.0-2"}, Severity: sevs[i%len(sevs)], Status: policy.Fixed,
		}
		if i < 3 {
			f.Aliases[0] = fmt.Sprintf("CVE-2024-%04d", 1000+i)
			f.Severity = policy.High
		}
		fs = append(fs, f)
	}
	if denied {
		fs[10].Severity = policy.Critical
	}
	return &policy.Input{
		Image: img, Digest: "sha256:" + strings.Repeat("a", 64),
		Environment: "production", Namespace: "payments", Project: "project-042",
		Scan: &policy.ScanSummary{Status: policy.ScanDone, VulnDBRevision: 42, MatchedAt: time.Unix(1700000000, 0), Findings: fs},
	}
}

func engine(b *testing.B, rules string) *policy.Engine {
	e, err := policy.Compile(policies(b, rules), policy.Config{})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func run(b *testing.B, e *policy.Engine, in *policy.Input, want policy.Outcome) {
	ctx := context.Background()
	d, err := e.Evaluate(ctx, in) // warm
	if err != nil {
		b.Fatal(err)
	}
	if d.Outcome != want {
		b.Fatalf("outcome %s, want %s: %s", d.Outcome, want, d.Message())
	}
	b.ReportAllocs()
	b.ResetTimer()
	measureCPU(b, func() {
		for b.Loop() {
			if _, err := e.Evaluate(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// measureCPU runs loop and reports CPU time per operation (GC included)
// beside the wall time: the machine is shared.
func measureCPU(b *testing.B, loop func()) {
	cpu0, ok := processCPU()
	loop()
	if cpu1, ok1 := processCPU(); ok && ok1 {
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkBuiltin: built-in rules, warm engine (target: < 20 µs).
func BenchmarkBuiltin(b *testing.B) {
	b.Run("allowed", func(b *testing.B) { run(b, engine(b, builtinRules), input(b, false), policy.Allowed) })
	b.Run("denied", func(b *testing.B) { run(b, engine(b, builtinRules), input(b, true), policy.Denied) })
}

// BenchmarkRego: the same rules in Rego, evaluated by OPA through the
// engine (input conversion included).
func BenchmarkRego(b *testing.B) {
	b.Run("allowed", func(b *testing.B) { run(b, engine(b, regoRules), input(b, false), policy.Allowed) })
	b.Run("denied", func(b *testing.B) { run(b, engine(b, regoRules), input(b, true), policy.Denied) })
}

// BenchmarkCached: decisions served by the cache (target: < 1 µs).
func BenchmarkCached(b *testing.B) {
	e := engine(b, builtinRules)
	in := input(b, false)
	c := policy.NewCache(policy.CacheConfig{AllowTTL: time.Hour})
	ctx := context.Background()
	if _, err := c.Evaluate(ctx, e, in); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	measureCPU(b, func() {
		for b.Loop() {
			if _, err := c.Evaluate(ctx, e, in); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCachedParallel: cache hits from every core at once.
func BenchmarkCachedParallel(b *testing.B) {
	e := engine(b, builtinRules)
	in := input(b, false)
	c := policy.NewCache(policy.CacheConfig{AllowTTL: time.Hour})
	ctx := context.Background()
	if _, err := c.Evaluate(ctx, e, in); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	measureCPU(b, func() {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Evaluate(ctx, e, in); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkCompile: compiling the 208 policies, Rego included (done once
// per policy revision, not per evaluation).
func BenchmarkCompile(b *testing.B) {
	ps := policies(b, regoRules)
	b.ReportAllocs()
	measureCPU(b, func() {
		for b.Loop() {
			if _, err := policy.Compile(ps, policy.Config{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
