package store

import (
	"context"
	"time"
)

// WorkloadAudit is the result of one audit of the workloads running in the
// cluster (package workloadaudit): which running containers the current
// policy refuses or warns about, and when and why the audit ran.
type WorkloadAudit struct {
	// Owner names the process that ran it (host-pid-random).
	Owner string `json:"owner"`
	// Trigger is why it ran: "start", "interval", "policy" (the policy
	// revision changed) or "vulndb" (the scan reports were matched against
	// a new vulnerability database revision).
	Trigger string `json:"trigger"`
	// Started and Finished bound the run.
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// PolicyRevision and VulnRevision are the global policy revision and
	// the vulnerability database revision the scan reports were matched
	// at, read before the run: the decisions are at least as new.
	PolicyRevision int64 `json:"policyRevision"`
	VulnRevision   int64 `json:"vulnRevision"`
	// Pods and Containers count what was checked, Images the distinct
	// (namespace, image) pairs decided.
	Pods       int `json:"pods"`
	Containers int `json:"containers"`
	Images     int `json:"images"`
	// Findings are the refused and warned containers, ordered by
	// namespace, pod and container.
	Findings []WorkloadFinding `json:"findings"`
}

// WorkloadFinding is one running container whose image the current policy
// refuses or warns about.
type WorkloadFinding struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Container string `json:"container"`
	// Kind is container, initContainer or ephemeralContainer.
	Kind  string `json:"kind"`
	Image string `json:"image"`
	// Digest is the digest the image resolved to ("" when unresolved).
	Digest string `json:"digest,omitempty"`
	// Outcome is "refused" or "warned".
	Outcome string `json:"outcome"`
	// Reason is admission's text for the image: the policy, the rule and
	// why.
	Reason string `json:"reason"`
}

// WorkloadAuditStore keeps the last workload audit, so any replica serves
// it and a restart keeps it, and the lease that lets one replica at a time
// run the audit.
type WorkloadAuditStore interface {
	// ClaimWorkloadAudit claims the audit's lease for owner until
	// now+lease unless another owner holds it unexpired; it reports
	// whether owner holds it now. An owner may claim again (renewing).
	// EINVALID if owner is empty or lease not positive.
	ClaimWorkloadAudit(ctx context.Context, owner string, lease time.Duration) (bool, error)
	// ReleaseWorkloadAudit ends owner's lease; nothing if owner does not
	// hold it.
	ReleaseWorkloadAudit(ctx context.Context, owner string) error
	// PutWorkloadAudit replaces the stored audit with a, which a.Owner ran
	// holding the lease. ECONFLICT (nothing written) if a.Owner no longer
	// holds it; EINVALID if a.Owner is empty.
	PutWorkloadAudit(ctx context.Context, a *WorkloadAudit) error
	// LastWorkloadAudit returns the stored audit; ENOTFOUND before the
	// first.
	LastWorkloadAudit(ctx context.Context) (*WorkloadAudit, error)
}
