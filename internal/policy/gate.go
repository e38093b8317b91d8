package policy

import "fmt"

// GatePolicyName names the policy ThresholdPolicy builds.
const GatePolicyName = "gate"

// AnnotationThresholdOf names, in a policy's metadata, where its
// vulnerability threshold was set ("customs gate --threshold high");
// decision messages then say "the threshold of customs gate --threshold
// high" instead of naming the policy or the project setting. It changes
// no outcome.
const AnnotationThresholdOf = "customs.dev/threshold-of"

// ThresholdPolicy builds the policy of a CI gate's --threshold (seed 004's
// GATE): "low", "medium", "high" or "critical" deny findings at or above
// that severity and require a finished scan; "none" checks nothing (the
// seed's Task exits 0 at once). The policy is cluster-wide, for an engine
// of its own (customs gate evaluates it offline or against the server's
// scan). The error names the bad threshold.
func ThresholdPolicy(threshold string) (*Policy, error) {
	p := &Policy{APIVersion: APIVersion, Kind: Kind, Metadata: Metadata{Name: GatePolicyName, Description: "customs gate --threshold " + threshold,
		Annotations: map[string]string{AnnotationThresholdOf: "customs gate --threshold " + threshold}}}
	if threshold == "none" {
		return p, nil
	}
	s, err := ParseSeverity(threshold)
	if err != nil || s < Low {
		return nil, fmt.Errorf("threshold %q is not one of none, low, medium, high, critical", threshold)
	}
	p.Spec.Vulnerabilities = &VulnerabilitiesRule{MaxSeverity: &s}
	return p, nil
}
