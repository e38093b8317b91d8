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

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/decide"
	"github.com/customs-dev/customs/internal/policy"
	"github.com/customs-dev/customs/internal/registry"
	"github.com/customs-dev/customs/internal/store"
)

// Manifests is what the door reads about a repository's manifests.
type Manifests interface {
	// ManifestsWithBlob and Manifest: see store.RegistryStore.
	ManifestsWithBlob(ctx context.Context, repo string, d digest.Digest, limit int) ([]digest.Digest, error)
	Manifest(ctx context.Context, repo string, d digest.Digest) (*store.Manifest, error)
}

// Options configures a Door. Decider and Manifests are required.
type Options struct {
	// Decider decides; the registry's selects project policies (Selects)
	// and has the configured registry default.
	Decider   *decide.Decider
	Manifests Manifests
	Logger    *slog.Logger
}

// maxBlobManifests bounds the manifests asked about per blob GET: a blob
// referenced by more manifests of one repository is served when one of
// the first maxBlobManifests (by digest) is allowed.
const maxBlobManifests = 64

// Door decides manifest pulls; it implements registry.PullGate. It is safe
// for concurrent use.
type Door struct {
	opts Options
}

var _ registry.PullGate = (*Door)(nil)

// New returns a Door. It panics when Decider is nil (a programming error,
// as in registry.New).
func New(opts Options) *Door {
	if opts.Decider == nil || opts.Manifests == nil {
		panic("pulldoor: Options.Decider and Options.Manifests are required")
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

// Decide returns the decision about pull. An image index is judged by
// every child manifest it references (the platform images a client may
// pull through it) and then by itself: the index is denied when any child
// is, with that child's message naming the platform manifest, so the
// refusal says which platform is blocked rather than repeating the
// index's summary.
func (d *Door) Decide(ctx context.Context, pull registry.Pull) (*policy.Decision, error) {
	in, err := Input(pull)
	if err != nil {
		return nil, err
	}
	return d.decide(ctx, in, pull.Manifest, d.opts.Decider.Decide)
}

// decide decides in (whose manifest is m) with fn, children first for an
// index.
func (d *Door) decide(ctx context.Context, in *policy.Input, m *store.Manifest, fn func(context.Context, *policy.Input) (*policy.Decision, error)) (*policy.Decision, error) {
	if m != nil && isIndex(m.MediaType) {
		for _, r := range m.References {
			if r.Kind != store.RefManifest {
				continue
			}
			child := *in
			child.Image.Tag, child.Image.Digest = "", r.Digest.String()
			child.Digest, child.Scan = r.Digest.String(), nil
			cd, err := fn(ctx, &child)
			if err != nil {
				return nil, err
			}
			if !cd.Allowed() {
				return indexDecision(cd, r.Digest), nil
			}
		}
	}
	return fn(ctx, in)
}

// Complete returns in completed as the door's decisions complete it (see
// decide.Decider.Complete); with DecideWith the door is the what-if view's
// registry evaluator.
func (d *Door) Complete(ctx context.Context, in *policy.Input) (*policy.Input, error) {
	return d.opts.Decider.Complete(ctx, in)
}

// DecideWith decides in as a pull of in.Image.Repository at in.Digest
// would be decided, with extra policies (see decide.Decider.DecideWith):
// when the repository holds that digest as an image index, its platform
// manifests are judged as Decide judges them.
func (d *Door) DecideWith(ctx context.Context, in *policy.Input, extra []*policy.Policy) (*policy.Decision, error) {
	fn := func(ctx context.Context, in *policy.Input) (*policy.Decision, error) {
		return d.opts.Decider.DecideWith(ctx, in, extra)
	}
	var m *store.Manifest
	if dg, err := digest.Parse(in.Digest); err == nil {
		m, err = d.opts.Manifests.Manifest(ctx, in.Image.Repository, dg)
		if err != nil && !apperr.Is(err, apperr.ENOTFOUND) {
			return nil, err
		}
	}
	return d.decide(ctx, in, m, fn)
}

// indexDecision is a child's denial as the index's: the same decision
// with each violation's message naming the platform manifest.
func indexDecision(cd *policy.Decision, child digest.Digest) *policy.Decision {
	out := *cd
	out.Violations = make([]policy.Violation, len(cd.Violations))
	for i, v := range cd.Violations {
		v.Message = fmt.Sprintf("Platform manifest %s of the index: %s", child, v.Message)
		out.Violations[i] = v
	}
	return &out
}

// isIndex reports whether mediaType is an OCI image index or a Docker
// manifest list.
func isIndex(mediaType string) bool {
	return mediaType == "application/vnd.oci.image.index.v1+json" ||
		mediaType == "application/vnd.docker.distribution.manifest.list.v2+json"
}

// AllowBlob implements registry.PullGate: a blob is served unless every
// manifest of the repository referencing it is denied (a base layer
// shared with an allowed image stays servable; a blob no manifest
// references — a push in progress — is served). The refusal carries the
// first denied manifest's message. Decisions are the cached ones of
// manifest pulls by digest.
func (d *Door) AllowBlob(ctx context.Context, b registry.BlobPull) error {
	eng, err := d.opts.Decider.Engine(ctx)
	if err != nil || eng == nil {
		return err // nothing to decide: no policies, the default allows
	}
	ms, err := d.opts.Manifests.ManifestsWithBlob(ctx, b.Repository, b.Digest, maxBlobManifests)
	if err != nil || len(ms) == 0 {
		return err
	}
	var denied *policy.Decision
	for _, m := range ms {
		in, err := Input(registry.Pull{Host: b.Host, Repository: b.Repository, Project: b.Project,
			Reference: m.String(), Manifest: &store.Manifest{Repository: b.Repository, Digest: m}})
		if err != nil {
			return err
		}
		dec, err := d.opts.Decider.Decide(ctx, in)
		if err != nil {
			return err
		}
		if dec.Allowed() {
			return nil
		}
		if denied == nil {
			denied = dec
		}
	}
	return apperr.Errorf(apperr.EDENIED, "Blob %s belongs only to images you may not pull. %s", b.Digest, denied.Message())
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
