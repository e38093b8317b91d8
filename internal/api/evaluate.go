package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/policy"
	"github.com/customs-dev/customs/internal/store"
)

// Evaluator decides an image with the stored policies and extra ones (the
// what-if view); package decide's Decider is one.
type Evaluator interface {
	// Complete returns in with what the store knows filled in (the scan
	// of its digest, the system allowlist).
	Complete(ctx context.Context, in *policy.Input) (*policy.Input, error)
	// DecideWith decides in with the stored policies and extra.
	DecideWith(ctx context.Context, in *policy.Input, extra []*policy.Policy) (*policy.Decision, error)
}

// Evaluators are the doors the what-if view can ask.
type Evaluators struct {
	// Registry decides as the registry's pull door (project policies,
	// policy.registryDefault); Runtime where images run (every policy,
	// policy.default).
	Registry, Runtime Evaluator
	// Hosts are registry host[:port] names that also name this server
	// (its externalURL's host, admission.registryHosts), besides the
	// request's own Host.
	Hosts []string
	// Tags resolves a customs image's tag to its digest.
	Tags interface {
		Tag(ctx context.Context, repo, tag string) (*store.Tag, error)
	}
}

// Doors of the what-if view.
const (
	DoorRegistry = "registry"
	DoorRuntime  = "runtime"
)

// EvaluateRequest is the body of POST /api/v1/policies/evaluate.
type EvaluateRequest struct {
	// Image is the reference to decide. An image of this server (its
	// registry host is the one the request was sent to, or one of
	// Evaluators.Hosts) has its tag
	// resolved to a digest and is decided with its stored scan.
	Image string `json:"image"`
	// Environment, Namespace and Project are where the image is used; a
	// customs image's project is its first path component unless given.
	Environment string `json:"environment,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	Project     string `json:"project,omitempty"`
	// Door is "registry" (the pull door) or "runtime" (where images run);
	// empty means runtime when Environment or Namespace is set, registry
	// otherwise.
	Door string `json:"door,omitempty"`
	// Policies are policy documents (YAML) evaluated with the stored ones,
	// replacing stored policies of the same name.
	Policies []string `json:"policies,omitempty"`
}

// EvaluateResult is the answer of POST /api/v1/policies/evaluate.
type EvaluateResult struct {
	Door string `json:"door"`
	// Input is what was decided (the resolved digest, the project and the
	// scan included).
	Input    *policy.Input    `json:"input"`
	Decision *policy.Decision `json:"decision"`
	// Message is the decision's message as the door shows it.
	Message string `json:"message"`
}

func (h *handler) evaluateRoutes(mux *http.ServeMux) {
	mux.Handle("POST /api/v1/policies/evaluate", h.wrap(h.evaluate))
}

func (h *handler) evaluate(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if p.Kind == auth.KindAnonymous {
		return apperr.Errorf(apperr.EUNAUTHORIZED, "log in to evaluate policies")
	}
	var req EvaluateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	img, err := policy.ParseImage(req.Image)
	if err != nil {
		return apperr.Errorf(apperr.EINVALID, "image: %v", err)
	}
	door := req.Door
	switch door {
	case "":
		door = DoorRegistry
		if req.Environment != "" || req.Namespace != "" {
			door = DoorRuntime
		}
	case DoorRegistry, DoorRuntime:
	default:
		return apperr.Errorf(apperr.EINVALID, "door: %q is not one of registry, runtime", req.Door)
	}
	var extra []*policy.Policy
	for i, doc := range req.Policies {
		ps, err := policy.Parse("policies["+strconv.Itoa(i)+"]", []byte(doc))
		if err != nil {
			return apperr.Errorf(apperr.EINVALID, "%v", err)
		}
		extra = append(extra, ps...)
	}
	in := &policy.Input{Image: img, Environment: req.Environment, Namespace: req.Namespace, Project: req.Project, Digest: img.Digest}
	if h.ownHost(r, img.Registry) {
		// An image of this server: its project, its digest.
		if in.Project == "" {
			in.Project, _, _ = strings.Cut(img.Repository, "/")
		}
		if in.Digest == "" && img.Tag != "" {
			t, err := h.opts.Evaluators.Tags.Tag(r.Context(), img.Repository, img.Tag)
			if err != nil {
				return apperr.Wrap(err, apperr.Code(err), "image "+req.Image)
			}
			in.Digest = t.Digest.String()
		}
	}
	if in.Project != "" {
		may, err := h.mayReadPolicy(r, p, in.Project)
		if err != nil {
			return err
		}
		if !may {
			return apperr.Errorf(apperr.ENOTFOUND, "project %q not found", in.Project)
		}
	}
	ev := h.opts.Evaluators.Registry
	if door == DoorRuntime {
		ev = h.opts.Evaluators.Runtime
	}
	full, err := ev.Complete(r.Context(), in)
	if err != nil {
		return err
	}
	dec, err := ev.DecideWith(r.Context(), full, extra)
	if err != nil {
		return err
	}
	in = full
	writeJSON(w, http.StatusOK, EvaluateResult{Door: door, Input: in, Decision: dec, Message: dec.Message()})
	return nil
}

// ownHost reports whether host names this server: the request's Host or
// one of Evaluators.Hosts (case-insensitive).
func (h *handler) ownHost(r *http.Request, host string) bool {
	if strings.EqualFold(host, r.Host) {
		return true
	}
	for _, o := range h.opts.Evaluators.Hosts {
		if strings.EqualFold(host, o) {
			return true
		}
	}
	return false
}
