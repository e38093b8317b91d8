package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	imagepolicyv1alpha1 "k8s.io/api/imagepolicy/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/customs-dev/customs/internal/policy"
)

// MaxBodyBytes is the largest review body read: an AdmissionReview carries
// the object and, on UPDATE, the old object (each at most about 1.5 MiB in
// etcd).
const MaxBodyBytes = 8 << 20

// API versions and kinds of the reviews served.
const (
	AdmissionReviewAPIVersion = "admission.k8s.io/v1"
	ImageReviewAPIVersion     = "imagepolicy.k8s.io/v1alpha1"
)

// DecodeAdmissionReview reads an admission.k8s.io/v1 AdmissionReview
// request: one JSON object with apiVersion, kind, and a request with a
// uid, a kind and an operation. Errors name the problem.
func DecodeAdmissionReview(body []byte) (*admissionv1.AdmissionReview, error) {
	var r admissionv1.AdmissionReview
	if err := decodeOne(body, &r); err != nil {
		return nil, fmt.Errorf("AdmissionReview: %v", err)
	}
	if r.APIVersion != AdmissionReviewAPIVersion || r.Kind != "AdmissionReview" {
		return nil, fmt.Errorf("AdmissionReview: apiVersion %q kind %q is not %s AdmissionReview (set admissionReviewVersions: [v1] in the webhook configuration)", r.APIVersion, r.Kind, AdmissionReviewAPIVersion)
	}
	if r.Request == nil {
		return nil, fmt.Errorf("AdmissionReview: request is missing")
	}
	if r.Request.UID == "" {
		return nil, fmt.Errorf("AdmissionReview: request.uid is empty")
	}
	if r.Request.Kind.Kind == "" || r.Request.Kind.Version == "" {
		return nil, fmt.Errorf("AdmissionReview: request.kind is incomplete (%q)", r.Request.Kind.String())
	}
	if r.Request.Operation == "" {
		return nil, fmt.Errorf("AdmissionReview: request.operation is empty")
	}
	return &r, nil
}

// DecodeImageReview reads an imagepolicy.k8s.io/v1alpha1 ImageReview: one
// JSON object with apiVersion, kind and a spec listing at least one
// container image.
func DecodeImageReview(body []byte) (*imagepolicyv1alpha1.ImageReview, error) {
	var r imagepolicyv1alpha1.ImageReview
	if err := decodeOne(body, &r); err != nil {
		return nil, fmt.Errorf("ImageReview: %v", err)
	}
	if r.APIVersion != ImageReviewAPIVersion || r.Kind != "ImageReview" {
		return nil, fmt.Errorf("ImageReview: apiVersion %q kind %q is not %s ImageReview", r.APIVersion, r.Kind, ImageReviewAPIVersion)
	}
	if len(r.Spec.Containers) == 0 {
		return nil, fmt.Errorf("ImageReview: spec.containers is empty")
	}
	for i, c := range r.Spec.Containers {
		if c.Image == "" {
			return nil, fmt.Errorf("ImageReview: spec.containers[%d].image is empty", i)
		}
	}
	return &r, nil
}

// decodeOne decodes body, one JSON value, into into. json.Unmarshal
// accepts exactly what the Decoder below accepts (one value, whitespace
// around it) without copying the body into a buffer; only a body it
// refuses is read again, for the Decoder's clearer error.
func decodeOne(body []byte, into any) error {
	if len(body) > MaxBodyBytes {
		return fmt.Errorf("body is %d bytes, more than %d", len(body), MaxBodyBytes)
	}
	if json.Unmarshal(body, into) == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("not valid JSON: %v", err)
	}
	if dec.More() {
		return fmt.Errorf("more than one JSON value")
	}
	return nil
}

// answer makes the response review for req.
func answer(req *admissionv1.AdmissionRequest) (*admissionv1.AdmissionReview, *admissionv1.AdmissionResponse) {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	return &admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: AdmissionReviewAPIVersion, Kind: "AdmissionReview"},
		Response: resp,
	}, resp
}

// objectName names the reviewed object in messages: "Pod production/kuard".
func objectName(req *admissionv1.AdmissionRequest) string {
	n := req.Name
	if n == "" {
		n = "(new)"
	}
	if req.Namespace != "" {
		n = req.Namespace + "/" + n
	}
	return n
}

// checked says whether admission reads the images of req: CREATE and
// UPDATE of an object (not of a subresource, except a Pod's ephemeral
// containers).
func checked(req *admissionv1.AdmissionRequest) bool {
	switch req.Operation {
	case admissionv1.Create, admissionv1.Update:
	default:
		return false
	}
	return req.SubResource == "" || (req.SubResource == "ephemeralcontainers" && req.Kind.Kind == "Pod" && req.Kind.Group == "")
}

// prepared is what validate and mutate share: the uses and the context.
type prepared struct {
	uses []ImageUse
	uc   useContext
}

// prepare reads the images of req and the namespace's environment. done
// is true when resp is final (not checked, exempt, unknown kind, or an
// object that does not decode).
func (w *Webhook) prepare(ctx context.Context, req *admissionv1.AdmissionRequest, resp *admissionv1.AdmissionResponse, door string) (p prepared, done bool) {
	if !checked(req) {
		return p, true
	}
	if ok, by := w.opts.Exempt.Exempt(req.Namespace); ok {
		resp.AuditAnnotations = map[string]string{"outcome": "exempt", "exempt-by": by}
		return p, true
	}
	if req.Operation == admissionv1.Update && beingDeleted(req.Object.Raw) {
		// An object being deleted only loses finalizers and the like; its
		// containers are stopping. Refusing would leave it stuck
		// terminating after a policy tightened.
		resp.AuditAnnotations = map[string]string{"outcome": "deleting"}
		return p, true
	}
	uses, annotations, err := readObject(req.Kind, req.Object.Raw)
	var unknown ErrUnknownKind
	switch {
	case asUnknown(err, &unknown):
		// Only kinds the webhook configuration registers reach here; an
		// unknown one is a configuration customs was not built for. It
		// holds no pod spec customs can read, so it is allowed, loudly.
		w.opts.Logger.Warn("admission: kind not checked, allowed", "door", door, "kind", req.Kind.String(), "object", objectName(req))
		resp.Warnings = []string{unknown.Error() + "; allowed without a check"}
		resp.AuditAnnotations = map[string]string{"outcome": "unchecked-kind"}
		return p, true
	case err != nil:
		resp.Allowed = false
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: 400, Reason: metav1.StatusReasonBadRequest,
			Message: fmt.Sprintf("customs could not read the images of %s %s, refused (failing closed): %v", req.Kind.Kind, objectName(req), err)}
		resp.AuditAnnotations = map[string]string{"outcome": "denied"}
		return p, true
	}
	kept := uses[:0]
	for _, u := range uses {
		if u.Image != "" {
			kept = append(kept, u)
		}
	}
	return prepared{uses: kept, uc: w.useContext(ctx, req.Namespace, annotations)}, false
}

// beingDeleted reports whether raw is an object with a deletionTimestamp.
func beingDeleted(raw []byte) bool {
	var o struct {
		Metadata struct {
			DeletionTimestamp *metav1.Time `json:"deletionTimestamp"`
		} `json:"metadata"`
	}
	return json.Unmarshal(raw, &o) == nil && o.Metadata.DeletionTimestamp != nil
}

func asUnknown(err error, into *ErrUnknownKind) bool {
	u, ok := err.(ErrUnknownKind)
	if ok {
		*into = u
	}
	return ok
}

// Validate answers a validating AdmissionReview: refused when any image is
// denied (or could not be decided before the deadline), with one message
// naming each refused image and why; warnings for images a policy in warn
// mode flags; audit annotations recording the decisions. The pod's (or
// pod template's) `*.image-policy.k8s.io/*` annotations are given to
// policies as the ImagePolicyWebhook gives them. timeout is the API
// server's (0: DefaultTimeout).
func (w *Webhook) Validate(ctx context.Context, timeout time.Duration, review *admissionv1.AdmissionReview) *admissionv1.AdmissionReview {
	req := review.Request
	out, resp := answer(req)
	defer w.observe("validate", resp, time.Now())
	ctx, cancel, _ := w.deadline(ctx, timeout)
	defer cancel()
	p, done := w.prepare(ctx, req, resp, "validate")
	if done {
		return out
	}
	ds := w.decideAll(ctx, p.uses, p.uc)
	outcome := "allowed"
	if msg := summary(req.Kind.Kind, objectName(req), ds, true); msg != "" {
		outcome = "denied"
		resp.Allowed = false
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: 403, Reason: metav1.StatusReasonForbidden, Message: msg}
	}
	for i := range ds {
		d := &ds[i]
		if d.Decision != nil && d.Decision.Outcome == policy.Warned {
			resp.Warnings = append(resp.Warnings, d.Text())
			if outcome == "allowed" {
				outcome = "warned"
			}
		}
	}
	resp.AuditAnnotations = auditAnnotations(outcome, p.uc, ds)
	w.log("validate", req.Kind.Kind, objectName(req), outcome, p.uc, ds)
	return out
}

// Mutate answers a mutating AdmissionReview: allowed, with a JSON patch
// rewriting each image written as a tag (or nothing) into
// `name:tag@digest` when its digest resolved and no applied policy opts
// out (spec.admission.mutate: false). On UPDATE only the references the
// update changes or adds are rewritten. It never refuses for a policy
// reason (that is Validate's job); what it cannot resolve in time it
// leaves as written.
func (w *Webhook) Mutate(ctx context.Context, timeout time.Duration, review *admissionv1.AdmissionReview) *admissionv1.AdmissionReview {
	req := review.Request
	out, resp := answer(req)
	defer w.observe("mutate", resp, time.Now())
	ctx, cancel, _ := w.deadline(ctx, timeout)
	defer cancel()
	p, done := w.prepare(ctx, req, resp, "mutate")
	if done {
		return out
	}
	// On UPDATE only references the update writes are pinned: rewriting
	// an unchanged image would restart a running container (or roll out a
	// workload) for a label change, and a Pod's ephemeralcontainers
	// subresource may change nothing but its ephemeral containers.
	var before map[string]string
	if req.Operation == admissionv1.Update && len(req.OldObject.Raw) > 0 {
		if old, _, err := readObject(req.Kind, req.OldObject.Raw); err == nil {
			before = make(map[string]string, len(old))
			for _, u := range old {
				before[u.Field] = u.Image
			}
		}
	}
	var todo []ImageUse
	for _, u := range p.uses {
		if strings.Contains(u.Image, "@") {
			continue
		}
		if prev, ok := before[u.Field]; ok && prev == u.Image {
			continue
		}
		todo = append(todo, u)
	}
	if len(todo) == 0 {
		return out
	}
	ds := w.decideAll(ctx, todo, p.uc)
	type op struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value string `json:"value"`
	}
	var ops []op
	pinned := map[string]string{}
	for i := range ds {
		d := &ds[i]
		if d.Err != nil || d.Resolution.Digest == "" || d.Decision == nil || d.Decision.NoMutate {
			continue
		}
		ref := d.Use.Image
		if d.Input.Image.Tag == "" {
			ref += ":latest"
		}
		ref += "@" + d.Resolution.Digest
		ops = append(ops, op{Op: "replace", Path: d.Use.Pointer, Value: ref})
		pinned[d.Use.Field] = ref
	}
	if len(ops) > 0 {
		patch, _ := json.Marshal(ops)
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = patch, &pt
		b, _ := json.Marshal(pinned)
		resp.AuditAnnotations = map[string]string{"pinned": string(b)}
	}
	return out
}

// observe counts an admission answer by its outcome: the "outcome" audit
// annotation, "patched" for a mutation with a patch, "unchecked" for a
// request not checked (DELETE, a subresource).
func (w *Webhook) observe(door string, resp *admissionv1.AdmissionResponse, start time.Time) {
	outcome := resp.AuditAnnotations["outcome"]
	switch {
	case resp.Patch != nil:
		outcome = "patched"
	case outcome == "":
		outcome = "unchecked"
		if door == "mutate" && resp.Allowed {
			outcome = "unchanged"
		}
	}
	w.metrics.observe(door, outcome, start)
}

// ImageAnnotationSuffix ends the domain of the annotations the
// ImagePolicyWebhook passes on (`*.image-policy.k8s.io/*`).
const ImageAnnotationSuffix = ".image-policy.k8s.io"

// imagePolicyAnnotations returns the annotations whose key's domain ends
// in ImageAnnotationSuffix (what the ImagePolicyWebhook passes on), nil
// when there are none.
func imagePolicyAnnotations(all map[string]string) map[string]string {
	var ann map[string]string
	for k, v := range all {
		if dom, _, ok := strings.Cut(k, "/"); ok && strings.HasSuffix(dom, ImageAnnotationSuffix) {
			if ann == nil {
				ann = map[string]string{}
			}
			ann[k] = v
		}
	}
	return ann
}

// ReviewImages answers an ImageReview: allowed when every image is, with
// the refused images and why as the reason, and audit annotations. The
// review's `*.image-policy.k8s.io/*` annotations are given to policies
// (Input.Annotations; Rego's input.annotations).
func (w *Webhook) ReviewImages(ctx context.Context, timeout time.Duration, review *imagepolicyv1alpha1.ImageReview) *imagepolicyv1alpha1.ImageReview {
	out := &imagepolicyv1alpha1.ImageReview{TypeMeta: metav1.TypeMeta{APIVersion: ImageReviewAPIVersion, Kind: "ImageReview"}}
	out.Status.Allowed = true
	defer func(start time.Time) {
		outcome := out.Status.AuditAnnotations["outcome"]
		w.metrics.observe("imagereview", outcome, start)
	}(time.Now())
	ctx, cancel, _ := w.deadline(ctx, timeout)
	defer cancel()
	ns := review.Spec.Namespace
	if ok, by := w.opts.Exempt.Exempt(ns); ok {
		out.Status.AuditAnnotations = map[string]string{"outcome": "exempt", "exempt-by": by}
		return out
	}
	uses := make([]ImageUse, len(review.Spec.Containers))
	for i, c := range review.Spec.Containers {
		uses[i] = ImageUse{Field: fmt.Sprintf("spec.containers[%d].image", i), Role: "container", Image: c.Image}
	}
	uc := w.useContext(ctx, ns, review.Spec.Annotations)
	ds := w.decideAll(ctx, uses, uc)
	outcome := "allowed"
	object := "a pod"
	if ns != "" {
		object = "a pod in namespace " + ns
	}
	if msg := summary("ImageReview", "of "+object, ds, true); msg != "" {
		outcome = "denied"
		out.Status.Allowed = false
		out.Status.Reason = msg
	} else if msg := summary("ImageReview", "of "+object, ds, false); msg != "" {
		outcome = "warned"
		out.Status.Reason = msg
	}
	out.Status.AuditAnnotations = auditAnnotations(outcome, uc, ds)
	w.log("imagereview", "ImageReview", ns, outcome, uc, ds)
	return out
}

// auditRecord is one image in the "images" audit annotation.
type auditRecord struct {
	Field   string `json:"field"`
	Image   string `json:"image"`
	Digest  string `json:"digest,omitempty"`
	Outcome string `json:"outcome"`
	Policy  string `json:"policy,omitempty"`
	Rule    string `json:"rule,omitempty"`
	Error   string `json:"error,omitempty"`
}

// maxAuditImages bounds the images listed in audit annotations.
const maxAuditImages = 50

func auditAnnotations(outcome string, uc useContext, ds []ImageDecision) map[string]string {
	m := map[string]string{"outcome": outcome}
	if uc.environment != "" {
		m["environment"] = uc.environment
	}
	recs := make([]auditRecord, 0, min(len(ds), maxAuditImages))
	for i := range ds {
		if i == maxAuditImages {
			break
		}
		d := &ds[i]
		r := auditRecord{Field: d.Use.Field, Image: d.Use.Image, Digest: d.Resolution.Digest}
		switch {
		case d.Err != nil:
			r.Outcome, r.Error = "denied", d.Err.Error()
		default:
			r.Outcome = string(d.Decision.Outcome)
			if d.Decision.Policy != nil {
				r.Policy = d.Decision.Policy.Name
			}
			r.Rule = string(d.Decision.Rule)
		}
		recs = append(recs, r)
	}
	b, _ := json.Marshal(recs)
	m["images"] = string(b)
	return m
}

// log records an answer: refusals at info with each refused image and
// why, the rest at debug.
func (w *Webhook) log(door, kind, object, outcome string, uc useContext, ds []ImageDecision) {
	level := slog.LevelDebug
	if outcome == "denied" {
		level = slog.LevelInfo
	}
	if !w.opts.Logger.Enabled(context.Background(), level) {
		return
	}
	attrs := []any{"door", door, "kind", kind, "object", object, "outcome", outcome, "environment", uc.environment, "images", len(ds)}
	if outcome == "denied" {
		var refused []string
		for i := range ds {
			if ds[i].Denied() {
				refused = append(refused, ds[i].Text())
			}
		}
		attrs = append(attrs, "refused", refused)
	}
	w.opts.Logger.Log(context.Background(), level, "admission decision", attrs...)
}
