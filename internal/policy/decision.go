package policy

import (
	"fmt"
	"strings"
	"time"
)

// Outcome is what a decision says to do with the image.
type Outcome string

// Outcomes.
const (
	// Allowed: the image may be used.
	Allowed Outcome = "allowed"
	// Denied: the image may not be used.
	Denied Outcome = "denied"
	// Warned: the image may be used, and the door shows the warnings
	// (violations of policies in warn mode).
	Warned Outcome = "warned"
)

// Rule names a rule in decisions.
type Rule string

// Rules. RuleDefault is the configured default, applied when no policy
// matches the image.
const (
	RuleRegistries      Rule = "registries"
	RuleTags            Rule = "tags"
	RuleNames           Rule = "names"
	RuleVulnerabilities Rule = "vulnerabilities"
	RuleSignatures      Rule = "signatures"
	RuleRego            Rule = "rego"
	RuleDefault         Rule = "default"
)

// PolicyRef identifies the policy a decision or violation comes from.
type PolicyRef struct {
	Name     string `json:"name"`
	Revision int64  `json:"revision,omitempty"`
	Scope    Scope  `json:"scope,omitzero"`
	// Project is true for a project policy (one with scope.projects),
	// false for a runtime policy.
	Project bool `json:"project,omitempty"`
}

// String is `policy "NAME"` with the revision when known.
func (r PolicyRef) String() string {
	if r.Revision > 0 {
		return fmt.Sprintf("policy %q (revision %d)", r.Name, r.Revision)
	}
	return fmt.Sprintf("policy %q", r.Name)
}

// Decision is the answer for one Input. Decisions are shared (cached): do
// not modify one.
type Decision struct {
	Outcome Outcome `json:"outcome"`
	// Policy and Rule are what decided: the first enforced violation of a
	// denial, the first warning of a warned decision, the policy that
	// allowed (Rule "") otherwise; nil Policy and RuleDefault when no
	// policy matched and the configured default decided.
	Policy *PolicyRef `json:"policy,omitempty"`
	Rule   Rule       `json:"rule,omitempty"`
	// Mode is the deciding policy's mode ("" for the default).
	Mode Mode `json:"mode,omitempty"`
	// Default is true when no policy matched the image.
	Default bool `json:"default,omitempty"`
	// Policies are the policies that applied, runtime first.
	Policies []PolicyRef `json:"policies,omitempty"`
	// Violations are every rule violated by every applied policy, in
	// any mode (audit included), in policy then rule order.
	Violations []Violation `json:"violations,omitempty"`
	// Notes explain what did not block: allowlist entries that allowed a
	// finding, entries that expired, a scan that was not required.
	Notes []string `json:"notes,omitempty"`
	// ValidUntil, when not zero, is when the decision may change by
	// itself: the earliest expiry of an allowlist entry it relied on.
	ValidUntil time.Time `json:"validUntil,omitzero"`
	// Image is the normalised reference the decision is about.
	Image string `json:"image"`
	// NoMutate is true when an applied policy sets spec.admission.mutate:
	// false: the mutating webhook leaves this image's reference as written.
	NoMutate bool `json:"noMutate,omitempty"`
}

// Allowed reports whether the image may be used (allowed or warned).
func (d *Decision) Allowed() bool { return d.Outcome != Denied }

// Reasons are the messages of the violations in the decision's mode: the
// enforced ones of a denial, the warnings of a warned decision; nil when
// allowed.
func (d *Decision) Reasons() []string {
	want := Enforce
	switch d.Outcome {
	case Allowed:
		return nil
	case Warned:
		want = Warn
	}
	var out []string
	for i := range d.Violations {
		if d.Violations[i].Mode == want {
			out = append(out, d.Violations[i].Message)
		}
	}
	return out
}

// Violation is one rule a policy found broken.
type Violation struct {
	Policy PolicyRef `json:"policy"`
	Mode   Mode      `json:"mode"`
	Rule   Rule      `json:"rule"`
	// Message says what is wrong, in one or two sentences; for the
	// vulnerabilities rule it is Harbor's wording followed by the
	// advisories and the remedy (see Decision.Message).
	Message string `json:"message"`
	// Remedy is the exact command or setting that would allow the image,
	// when there is one.
	Remedy string `json:"remedy,omitempty"`
	// Failed is true when the rule could not be evaluated (a Rego error or
	// timeout, signature verification not available): the policy fails
	// closed.
	Failed bool `json:"failed,omitempty"`
	// ScanPending is true when the image has no finished scan and the
	// policy requires one.
	ScanPending bool `json:"scanPending,omitempty"`
	// Threshold, Highest and Findings detail a vulnerabilities violation:
	// the policy's threshold, the highest severity counted, and each
	// finding at or above the threshold that no allowlist entry allows,
	// highest first.
	Threshold *Severity         `json:"threshold,omitempty"`
	Highest   *Severity         `json:"highest,omitempty"`
	Findings  []BlockingFinding `json:"findings,omitempty"`
}

// BlockingFinding is a finding that makes a vulnerabilities rule deny.
type BlockingFinding struct {
	// ID is the advisory id shown (a CVE alias when the advisory has one);
	// AdvisoryID the scanner's id when it differs.
	ID         string   `json:"id"`
	AdvisoryID string   `json:"advisoryID,omitempty"`
	Package    string   `json:"package"`
	Installed  string   `json:"installed"`
	Fixed      []string `json:"fixed,omitempty"`
	Severity   Severity `json:"severity"`
	// CountedAs is the severity the finding counted as when it differs
	// from Severity (an unknown severity, see unknownAs).
	CountedAs *Severity `json:"countedAs,omitempty"`
}

// Message is the text a door shows: for a denial the enforced violations
// (vulnerabilities first, in Harbor's wording: `The severity of
// vulnerability of the image: "high" is equal or higher than the threshold
// in project setting: "high". Blocked by CVE-2019-14697 (musl 1.1.20-r4,
// fixed in 1.1.20-r5). To allow, fix the image or run: customs allowlist
// add ...`); for a warned decision the warnings; for an allowed one a short
// statement of which policy allowed it.
func (d *Decision) Message() string {
	switch d.Outcome {
	case Denied, Warned:
		want := Enforce
		if d.Outcome == Warned {
			want = Warn
		}
		if d.Default {
			return d.Violations[0].Message
		}
		var parts []string
		for _, pass := range []bool{true, false} {
			for i := range d.Violations {
				v := &d.Violations[i]
				if v.Mode != want || (v.Rule == RuleVulnerabilities) != pass {
					continue
				}
				parts = append(parts, v.Text())
			}
		}
		s := strings.Join(parts, " ")
		if d.Outcome == Warned {
			s = "Warning: " + s
		}
		return s
	}
	if d.Default {
		return fmt.Sprintf("%s is allowed: no policy applies and the default is allow.", d.Image)
	}
	names := make([]string, len(d.Policies))
	for i, p := range d.Policies {
		names[i] = p.String()
	}
	return fmt.Sprintf("%s is allowed by %s.", d.Image, strings.Join(names, " and "))
}

// Text is the violation as a door shows it: the vulnerabilities message as
// is (it names its policy the Harbor way), other rules prefixed with the
// policy and rule, and the remedy.
func (v *Violation) Text() string {
	if v.Rule == RuleVulnerabilities || v.Rule == RuleDefault {
		return v.Message
	}
	s := fmt.Sprintf("%s, rule %s: %s", v.Policy.String(), v.Rule, v.Message)
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	if v.Remedy != "" {
		s += " To allow, " + v.Remedy
		if !strings.HasSuffix(s, ".") {
			s += "."
		}
	}
	return s
}
