// Package pulldoor is the registry's pull door of the policy engine: it
// turns a manifest pull (registry.Pull) into a policy.Input — the image
// reference, the manifest digest and the project — asks the Decider
// (package decide: the stored policies, the digest's stored scan, the
// system allowlist, cached decisions) and refuses a denied pull with the
// decision's message.
package pulldoor

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/decide"
	"github.com/customs-dev/customs/internal/policy"
	"github.com/customs-dev/customs/internal/registry"
)

// Options configures a Door. Decider is required.
type Options struct {
	// Decider decides; the registry's is made with RegistryOptions.
	Decider *decide.Decider
	Logger  *slog.Logger
}

// Door decides manifest pulls; it implements registry.PullGate. It is safe
// for concurrent use.
type Door struct {
	opts Options
}

var _ registry.PullGate = (*Door)(nil)

// New returns a Door. It panics when Decider is nil (a programming error,
// as in registry.New).
func New(opts Options) *Door {
	if opts.Decider == nil {
		panic("pulldoor: Options.Decider is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Door{opts: opts}
}

// Selects reports whether a stored policy applies at the registry door:
// project policies (scope.projects set: project settings and policies a
// project's admins or the cluster's scoped to projects) do; runtime
// policies (the cluster-wide default, environment and namespace policies)
// do not, because the registry does not know where the pulled image will
// run (docs/policy.md, "The registry door").
func Selects(p *policy.Policy) bool { return len(p.Spec.Scope.Projects) > 0 }

// AllowPull implements registry.PullGate: nil when the decision allows
// the pull (or warns), EDENIED with the decision's message when it denies.
func (d *Door) AllowPull(ctx context.Context, pull registry.Pull) error {
	dec, err := d.Decide(ctx, pull)
	if err != nil || dec.Allowed() {
		return err
	}
	return apperr.Errorf(apperr.EDENIED, "%s", dec.Message())
}

// Decide returns the decision about pull.
func (d *Door) Decide(ctx context.Context, pull registry.Pull) (*policy.Decision, error) {
	in, err := Input(pull)
	if err != nil {
		return nil, err
	}
	return d.opts.Decider.Decide(ctx, in)
}

// Input builds the policy input of pull: the reference as the client named
// it (host, repository, tag or digest), the manifest's digest and the
// project. EINVALID when the reference does not parse.
func Input(pull registry.Pull) (*policy.Input, error) {
	sep := ":"
	if strings.Contains(pull.Reference, ":") {
		sep = "@"
	}
	host := pull.Host
	if host == "" {
		host = "localhost"
	}
	img, err := policy.ParseImage(host + "/" + pull.Repository + sep + pull.Reference)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.EINVALID, fmt.Sprintf("image reference of %s %s", pull.Repository, pull.Reference))
	}
	return &policy.Input{Image: img, Digest: pull.Manifest.Digest.String(), Project: pull.Project}, nil
}
