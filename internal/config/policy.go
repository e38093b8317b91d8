package config

// Policy configures the policy engine's defaults (package policy): the
// outcome for an image no policy matches, per door.
type Policy struct {
	// RegistryDefault is the outcome of a pull at the registry door when
	// no project policy matches the image: "allow" (default: only
	// policies refuse pulls) or "deny" (every project needs a policy
	// before its images can be pulled by clients without push rights).
	RegistryDefault string `yaml:"registryDefault"`
	// Default is the outcome where the image will run (the what-if view
	// with an environment or namespace, admission) when no policy
	// matches: "deny" (default, as issue 6 asks) or "allow".
	Default string `yaml:"default"`
}

func defaultPolicy() Policy { return Policy{RegistryDefault: "allow", Default: "deny"} }

// validatePolicy checks the policy keys.
func (c *Config) validatePolicy(bad func(key, format string, args ...any)) {
	for _, kv := range [][2]string{{"policy.registryDefault", c.Policy.RegistryDefault}, {"policy.default", c.Policy.Default}} {
		switch kv[1] {
		case "allow", "deny":
		default:
			bad(kv[0], "%q is not one of allow, deny", kv[1])
		}
	}
}
