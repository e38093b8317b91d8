package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/policy"
	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/test/e2e/harness"
)

// TestGateUsageErrors: what customs gate can tell without a server exits
// 2 naming the problem; --threshold none alone exits 0 without asking.
func TestGateUsageErrors(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	server := "--server=http://127.0.0.1:1" // nothing listens
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad threshold", []string{"gate", "p/app:1", "--threshold", "severe"}, 2, `threshold "severe"`},
		{"unknown threshold", []string{"gate", "p/app:1", "--threshold", "unknown"}, 2, `threshold "unknown"`},
		{"no threshold nor policy", []string{"gate", "p/app:1"}, 2, "give --threshold"},
		{"bad format", []string{"gate", "p/app:1", "--threshold", "high", "--format", "xml"}, 2, `--format "xml"`},
		{"negative wait", []string{"gate", "p/app:1", "--threshold", "high", "--wait", "-1s"}, 2, "negative"},
		{"unknown flag", []string{"gate", "p/app:1", "--threshold", "high", "--bogus"}, 2, "unknown flag"},
		{"two images", []string{"gate", "p/a:1", "p/b:1", "--threshold", "high"}, 2, "one IMAGE"},
		{"no project", []string{"gate", "app:1", "--threshold", "high"}, 2, "PROJECT/REPOSITORY"},
		{"bad reference", []string{"gate", "p/App:1", "--threshold", "high"}, 2, "not an image reference"},
		{"bad digest", []string{"gate", "sha256:zz", "--threshold", "high"}, 2, "not a digest"},
		{"missing policy file", []string{"gate", "p/app:1", "--policy", "/nonexistent/p.yaml"}, 2, "no such file"},
		{"server unreachable", []string{"gate", "p/app:1", "--threshold", "high"}, 2, "cannot reach customs"},
		{"threshold none", []string{"gate", "p/app:1", "--threshold", "none"}, 0, ""},
	} {
		_, err := run(t, "", append(tc.args, server)...)
		if code := exitCode(err); code != tc.code || (tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want))) {
			t.Errorf("%s: exit %d, %v; want %d with %q", tc.name, code, err, tc.code, tc.want)
		}
	}
}

// TestGateJUnit: denied findings are failing cases, a warn-mode violation
// a passing case with the warning, an allowing policy a passing case.
func TestGateJUnit(t *testing.T) {
	high := policy.High
	res := &gateResult{Image: "h/p/app:1@sha256:x", Digest: "sha256:x", Outcome: policy.Denied, ExitCode: gateDeny,
		Report: &report.Report{Status: report.StatusDone},
		Decisions: []gateDecision{
			{Source: "--threshold high", Decision: &policy.Decision{Outcome: policy.Denied, Violations: []policy.Violation{{
				Policy: policy.PolicyRef{Name: "project-p"}, Mode: policy.Enforce, Rule: policy.RuleVulnerabilities, Message: "blocked",
				Threshold: &high, Findings: []policy.BlockingFinding{
					{ID: "CVE-1", Package: "musl", Installed: "1", Fixed: []string{"2"}, Severity: policy.Critical},
					{ID: "CVE-2", Package: "zlib", Installed: "3", Severity: policy.High}}}}}},
			{Source: "--policy a.yaml", Decision: &policy.Decision{Outcome: policy.Warned, Violations: []policy.Violation{{
				Policy: policy.PolicyRef{Name: "tags"}, Mode: policy.Warn, Rule: policy.RuleTags, Message: "latest is discouraged"}}}},
			{Source: "--policy b.yaml", Decision: &policy.Decision{Outcome: policy.Allowed, Policy: &policy.PolicyRef{Name: "ok"}}},
		}}
	var buf bytes.Buffer
	if err := writeGateJUnit(&buf, res); err != nil {
		t.Fatal(err)
	}
	ju, err := harness.ParseJUnit(&buf)
	if err != nil {
		t.Fatal(err)
	}
	fails := ju.Failures()
	if len(ju.Cases) != 4 || len(fails) != 2 || fails[0].Name != "CVE-1 musl 1" || !strings.Contains(fails[0].Message, "fixed in 2") ||
		!strings.Contains(fails[1].Message, "no fix available") || ju.Count("passed") != 2 {
		t.Fatalf("junit cases %+v", ju.Cases)
	}
	for _, c := range ju.Cases {
		if c.Name == "tags tags" && !strings.Contains(c.Out, "warn: latest is discouraged") {
			t.Errorf("warn case %+v", c)
		}
	}
}

// FuzzGateImageRef: no IMAGE panics; an accepted one is a bare digest or
// a reference the policy engine parses.
func FuzzGateImageRef(f *testing.F) {
	for _, s := range []string{"p/app:1", "registry.example.com/p/app:1", "localhost:5000/p/app@sha256:" + strings.Repeat("a", 64),
		"sha256:" + strings.Repeat("b", 64), "app", "p/App:1", ":", "@", "p/app@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, ref, err := gateImageRef(s)
		if err != nil {
			return
		}
		if strings.HasPrefix(ref, "sha256:") || strings.HasPrefix(ref, "sha512:") {
			if _, err := digest.Parse(ref); err != nil || ref != s || host != "" {
				t.Fatalf("gateImageRef(%q) = %q, %q", s, host, ref)
			}
			return
		}
		if _, err := policy.ParseImage("localhost/" + ref); err != nil {
			t.Fatalf("gateImageRef(%q) = %q, which does not parse: %v", s, ref, err)
		}
	})
}
