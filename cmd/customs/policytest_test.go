package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyTestCLI runs seed 002's image enforcer (ported to Rego, and
// as built-in rules) on the seed's mock reviews offline, as `opa eval` is
// used there: the allowed review exits 0, the denied one 1 naming
// wordpress, bad policies and inputs 2 with the file named.
func TestPolicyTestCLI(t *testing.T) {
	dir := filepath.Join("..", "..", "internal", "policy", "testdata", "seed002")
	code := func(err error) int { return exitCode(err) }
	for _, pol := range []string{"rego.yaml", "builtin.yaml"} {
		p := filepath.Join(dir, pol)
		out, err := run(t, "", "policy", "test", p, "--input", filepath.Join(dir, "allowed.json"))
		if code(err) != 0 || !strings.Contains(out, ": allowed ") {
			t.Errorf("%s on the allowed review: exit %d\n%s", pol, code(err), out)
		}
		out, err = run(t, "", "policy", "test", p, "-i", filepath.Join(dir, "denied.json"))
		if code(err) != 1 || !strings.Contains(out, "denied.json[1]: denied registry.corp.example/library/wordpress:4-apache") ||
			!strings.Contains(out, "denied.json[0]: allowed") {
			t.Errorf("%s on the denied review: exit %d\n%s", pol, code(err), out)
		}
		out, err = run(t, "", "policy", "test", p, "-i", filepath.Join(dir, "denied.json"), "--format", "json")
		var res []struct {
			Input    string `json:"input"`
			Decision struct {
				Outcome string `json:"outcome"`
			} `json:"decision"`
		}
		if code(err) != 1 || json.Unmarshal([]byte(out), &res) != nil || len(res) != 2 || res[1].Decision.Outcome != "denied" {
			t.Errorf("%s --format json: exit %d, %+v\n%s", pol, code(err), res, out)
		}
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: customs.dev/v1alpha1\nkind: Policy\nmetadata:\n  name: x\nspec:\n  vulnerabilities:\n    maxSeverity: hgih\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := run(t, "", "policy", "test", bad, "-i", filepath.Join(dir, "allowed.json"))
	if code(err) != 2 || !strings.Contains(err.Error(), "bad.yaml:7") {
		t.Errorf("a bad policy: exit %d, %v; want 2 naming bad.yaml:7", code(err), err)
	}
	badIn := filepath.Join(t.TempDir(), "in.json")
	if err := os.WriteFile(badIn, []byte(`{"image": "x", "surprise": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = run(t, "", "policy", "test", filepath.Join(dir, "builtin.yaml"), "-i", badIn)
	if code(err) != 2 || !strings.Contains(err.Error(), "in.json") || !strings.Contains(err.Error(), "surprise") {
		t.Errorf("a bad input: exit %d, %v; want 2 naming in.json and the field", code(err), err)
	}
}
