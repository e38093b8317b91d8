package api

import (
	"net/http"
	"time"

	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/store"
)

// The last audit of the workloads running in the cluster (package
// workloadaudit) is read by system administrators only: it lists
// namespaces, pod names and images of every team, including images no
// project of customs holds, so no project role covers it (as the system
// audit log).
func (h *handler) workloadRoutes(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/workloads/refused", h.wrap(h.refusedWorkloads))
}

// WorkloadAudit is the last workload audit in API answers.
type WorkloadAudit struct {
	// Trigger is why it ran: start, interval, policy or vulndb.
	Trigger string `json:"trigger"`
	// Started and Finished (RFC 3339) bound the run.
	Started  string `json:"started"`
	Finished string `json:"finished"`
	// PolicyRevision and VulnRevision are the revisions it decided at
	// (at least).
	PolicyRevision int64 `json:"policyRevision"`
	VulnRevision   int64 `json:"vulnRevision"`
	// Pods, Containers and Images count what was checked.
	Pods       int `json:"pods"`
	Containers int `json:"containers"`
	Images     int `json:"images"`
	// Refused and Warned are the containers concerned, by namespace, pod
	// and container.
	Refused []WorkloadContainer `json:"refused"`
	Warned  []WorkloadContainer `json:"warned"`
}

// WorkloadContainer is a running container the policy refuses or warns
// about.
type WorkloadContainer struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Container string `json:"container"`
	Kind      string `json:"kind"`
	Image     string `json:"image"`
	Digest    string `json:"digest,omitempty"`
	Reason    string `json:"reason"`
}

// ToWorkloadAudit converts a stored audit to its API form.
func ToWorkloadAudit(a *store.WorkloadAudit) WorkloadAudit {
	out := WorkloadAudit{Trigger: a.Trigger, Started: a.Started.UTC().Format(time.RFC3339Nano),
		Finished: a.Finished.UTC().Format(time.RFC3339Nano), PolicyRevision: a.PolicyRevision, VulnRevision: a.VulnRevision,
		Pods: a.Pods, Containers: a.Containers, Images: a.Images, Refused: []WorkloadContainer{}, Warned: []WorkloadContainer{}}
	for _, f := range a.Findings {
		c := WorkloadContainer{Namespace: f.Namespace, Pod: f.Pod, Container: f.Container, Kind: f.Kind, Image: f.Image,
			Digest: f.Digest, Reason: f.Reason}
		if f.Outcome == "warned" {
			out.Warned = append(out.Warned, c)
		} else {
			out.Refused = append(out.Refused, c)
		}
	}
	return out
}

func (h *handler) refusedWorkloads(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := h.requireAdmin(r, p, "", ""); err != nil {
		return err
	}
	a, err := h.opts.Workloads.LastWorkloadAudit(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ToWorkloadAudit(a))
	return nil
}
