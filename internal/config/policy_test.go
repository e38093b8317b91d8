package config

import (
	"strings"
	"testing"
)

func TestPolicyDefaults(t *testing.T) {
	c := Default()
	if c.Policy.RegistryDefault != "allow" || c.Policy.Default != "deny" {
		t.Fatalf("defaults = %+v, want registryDefault allow, default deny", c.Policy)
	}
	for _, tc := range []struct {
		name, registry, runtime, want string
	}{
		{"deny at the registry", "deny", "deny", ""},
		{"allow everywhere", "allow", "allow", ""},
		{"bad registry default", "block", "deny", `policy.registryDefault: "block" is not one of allow, deny`},
		{"bad default", "allow", "", `policy.default: "" is not one of allow, deny`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Policy = Policy{RegistryDefault: tc.registry, Default: tc.runtime}
			err := c.Validate()
			if tc.want == "" && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
}
