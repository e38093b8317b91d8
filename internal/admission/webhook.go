// Package admission puts the policy engine behind Kubernetes' admission
// doors: the validating and mutating webhooks (AdmissionReview
// admission.k8s.io/v1) and the ImagePolicyWebhook (ImageReview
// imagepolicy.k8s.io/v1alpha1). Every image of an admitted object is
// resolved (customs' own registry through the store, others optionally by
// a registry HEAD request), decided by a Decider with the namespace's
// environment, and answered within the request's deadline. docs/admission.md
// is the operator's reference.
package admission

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/policy"
)

// Decider decides one use of one image (package decide implements it over
// the stored policies, scan reports and a policy.Cache). It fills in what
// it knows of the image (the scan of Input.Digest) and must be safe for
// concurrent use.
type Decider interface {
	Decide(ctx context.Context, in *policy.Input) (*policy.Decision, error)
}

// Options configures a Webhook. Decider and Resolver are required.
type Options struct {
	Decider  Decider
	Resolver Resolver
	// Environments maps namespaces to environments; nil means none.
	Environments *Environments
	// Exempt are the namespaces not checked; nil means none.
	Exempt *Exemptions
	// DefaultTimeout is the deadline of a request that does not say
	// (the API server's default webhook timeout, 10s, when zero).
	DefaultTimeout time.Duration
	Logger         *slog.Logger
	// Registerer receives the webhook's metrics
	// (customs_admission_reviews_total, ..._review_duration_seconds); nil
	// means they are not exported.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Webhook answers admission requests. It is safe for concurrent use.
type Webhook struct {
	opts    Options
	metrics *metrics
	images  parsedImages
}

// New checks opts and returns a Webhook.
func New(opts Options) (*Webhook, error) {
	if opts.Decider == nil || opts.Resolver == nil {
		return nil, fmt.Errorf("admission: Decider and Resolver are required")
	}
	if opts.Environments == nil {
		opts.Environments, _ = NewEnvironments(nil, "", nil)
	}
	if opts.Exempt == nil {
		opts.Exempt = &Exemptions{}
	}
	if opts.DefaultTimeout <= 0 {
		opts.DefaultTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Webhook{opts: opts, metrics: newMetrics(opts.Registerer)}, nil
}

// ImageDecision is the outcome for one image use.
type ImageDecision struct {
	Use ImageUse
	// Input is what was decided (nil when the reference did not parse).
	Input *policy.Input
	// Decision is nil when no decision was reached (Err says why).
	Decision *policy.Decision
	// Resolution is what the resolver said.
	Resolution Resolution
	// Err is why there is no decision: an invalid reference, a failed
	// lookup, the deadline.
	Err error
}

// Denied reports whether the image is refused: denied by its decision, or
// undecided (fail closed).
func (d *ImageDecision) Denied() bool { return d.Decision == nil || !d.Decision.Allowed() }

// where is `spec.containers[0].image (container "kuard")`.
func (d *ImageDecision) where() string {
	if d.Use.Name == "" {
		return d.Use.Field
	}
	return fmt.Sprintf("%s (%s %q)", d.Use.Field, d.Use.Role, d.Use.Name)
}

// Text is the one-image part of a message: where, the image, and why.
func (d *ImageDecision) Text() string {
	return fmt.Sprintf("%s: image %q: %s", d.where(), d.Use.Image, d.Reason())
}

// Reason is why the image is refused ("Forbidden: …"), or the decision's
// message when it is not: the policy, the rule and the details.
func (d *ImageDecision) Reason() string {
	switch {
	case d.Err != nil:
		return fmt.Sprintf("Forbidden: %v", d.Err)
	case d.Decision.Default && !d.Decision.Allowed():
		return "Forbidden: no matching image policy: " + d.Decision.Message()
	case d.Decision.Outcome == policy.Denied:
		return "Forbidden: " + d.Decision.Message()
	}
	return d.Decision.Message()
}

// useContext is where a set of images is used.
type useContext struct {
	namespace, environment string
	annotations            map[string]string
}

// decideAll decides every use (each distinct reference once) until ctx
// ends; uses not decided by then get ctx's error.
func (w *Webhook) decideAll(ctx context.Context, uses []ImageUse, uc useContext) []ImageDecision {
	out := make([]ImageDecision, len(uses))
	type result struct {
		in  *policy.Input
		res Resolution
		d   *policy.Decision
		err error
	}
	byRef := map[string][]int{}
	var order []string
	for i, u := range uses {
		out[i].Use = u
		if _, ok := byRef[u.Image]; !ok {
			order = append(order, u.Image)
		}
		byRef[u.Image] = append(byRef[u.Image], i)
	}
	results := make([]result, len(order))
	done := make(chan int, len(order))
	for j, ref := range order {
		go func() {
			r := &results[j]
			r.in, r.res, r.d, r.err = w.decideOne(ctx, ref, uc)
			done <- j
		}()
	}
	finished := make([]bool, len(order))
	for n := 0; n < len(order); n++ {
		select {
		case j := <-done:
			finished[j] = true
		case <-ctx.Done():
			n = len(order) // stop waiting
		}
	}
	// Results of goroutines still running are not read: finished[j] is
	// set only after goroutine j sent on done.
	for j, ref := range order {
		for _, i := range byRef[ref] {
			if !finished[j] {
				out[i].Err = fmt.Errorf("not decided before the request's deadline (customs answers before the API server gives up, and refuses what it could not decide)")
				continue
			}
			r := &results[j]
			out[i].Input, out[i].Resolution, out[i].Decision, out[i].Err = r.in, r.res, r.d, r.err
		}
	}
	return out
}

// decideOne parses, resolves and decides one reference.
func (w *Webhook) decideOne(ctx context.Context, ref string, uc useContext) (*policy.Input, Resolution, *policy.Decision, error) {
	img, err := w.images.parse(ref)
	if err != nil {
		return nil, Resolution{}, nil, fmt.Errorf("invalid image reference: %v", err)
	}
	res, err := w.opts.Resolver.Resolve(ctx, img)
	if err != nil {
		w.opts.Logger.Warn("admission: resolving an image failed; refused", "image", ref, "err", err)
		return nil, res, nil, fmt.Errorf("could not be resolved, failing closed: %s", w.public(err))
	}
	if res.InCustoms && res.Digest == "" {
		// Nothing to pull: deciding it would report a scan pending for an
		// image that does not exist.
		return nil, res, nil, fmt.Errorf("not found in customs (%s); push it first", res.Note)
	}
	in := &policy.Input{Image: img, Digest: res.Digest, Environment: uc.environment, Namespace: uc.namespace,
		Project: res.Project, External: !res.InCustoms, Annotations: uc.annotations}
	d, err := w.opts.Decider.Decide(ctx, in)
	if err != nil {
		w.opts.Logger.Warn("admission: deciding an image failed; refused", "image", ref, "err", err)
		return in, res, nil, fmt.Errorf("could not be decided, failing closed: %s", w.public(err))
	}
	return in, res, d, nil
}

// public is what a refusal may say about err: the deadline, or the
// caller-safe message of an application error; internal details go to the
// log only.
func (w *Webhook) public(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "the request's deadline passed"
	case apperr.Code(err) == apperr.EINTERNAL:
		return apperr.Message(err) + " (details in customs' log)"
	}
	return apperr.Message(err)
}

// deadline returns the context a request is answered within: timeout (the
// API server's, or DefaultTimeout when 0) less a margin for the answer's
// way back (a fifth, at most one second).
func (w *Webhook) deadline(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc, time.Duration) {
	if timeout <= 0 {
		timeout = w.opts.DefaultTimeout
	}
	budget := timeout - min(timeout/5, time.Second)
	c, cancel := context.WithTimeout(ctx, budget)
	return c, cancel, budget
}

// summary joins the texts of the refused images (or of the warned ones)
// into one message.
func summary(kind, object string, ds []ImageDecision, refused bool) string {
	var parts []string
	n := 0
	for i := range ds {
		d := &ds[i]
		if refused != d.Denied() {
			continue
		}
		if !refused && (d.Decision == nil || d.Decision.Outcome != policy.Warned) {
			continue
		}
		n++
		parts = append(parts, d.Text())
	}
	if len(parts) == 0 {
		return ""
	}
	verb := "refused"
	if !refused {
		verb = "warns about"
	}
	return fmt.Sprintf("customs %s %d of %d images of %s %s: %s", verb, n, len(ds), kind, object, strings.Join(parts, "; "))
}
