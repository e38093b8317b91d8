// Package kubeaudit checks what already runs in a Kubernetes cluster
// against the current policy: it lists the pods that are not finished and
// asks, for every image in them, what customs' admission door would answer
// today (seed 003's live scan) — after a new CVE or a policy change an
// image admitted yesterday may be refused now.
//
// The decision is the admission door's own: each image is sent to customs'
// validating webhook as a dry-run AdmissionReview of a one-container pod in
// its namespace, so environments, exempt namespaces, project policies and
// the decision cache apply exactly as at admission.
package kubeaudit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/customs-dev/customs/internal/apperr"
)

// Container is one container of a pod, as audited.
type Container struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	// Container is the container's name; Kind is container,
	// initContainer or ephemeralContainer.
	Container string `json:"container"`
	Kind      string `json:"kind"`
	// Image is the image as the pod spec names it.
	Image string `json:"image"`
}

// Finding is a container whose image the current policy would not admit
// as it is (refused) or admits with warnings.
type Finding struct {
	Container
	// Outcome is "refused" or "warned".
	Outcome string `json:"outcome"`
	// Message is customs' answer: why the image is refused, or the
	// warnings.
	Message string `json:"message"`
}

// Report is the result of an audit.
type Report struct {
	// Pods and Containers count what was checked.
	Pods       int `json:"pods"`
	Containers int `json:"containers"`
	// Images counts the distinct (namespace, image) pairs decided.
	Images int `json:"images"`
	// Refused and Warned list the containers concerned, by namespace, pod
	// and container.
	Refused []Finding `json:"refused"`
	Warned  []Finding `json:"warned"`
}

// Reviewer answers what admission would say about pod (one container).
type Reviewer interface {
	Review(ctx context.Context, pod *corev1.Pod) (*admissionv1.AdmissionResponse, error)
}

// Pods lists the pods of namespace ("" for all) that are not finished
// (phase Pending, Running or Unknown): what runs, or is about to.
func Pods(ctx context.Context, client kubernetes.Interface, namespace string) ([]corev1.Pod, error) {
	var out []corev1.Pod
	opts := metav1.ListOptions{Limit: 500}
	for {
		list, err := client.CoreV1().Pods(namespace).List(ctx, opts)
		if err != nil {
			return nil, apperr.Wrap(err, apperr.EUNAVAILABLE, fmt.Sprintf("listing pods: %v", err))
		}
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue
			}
			out = append(out, p)
		}
		if list.Continue == "" {
			return out, nil
		}
		opts.Continue = list.Continue
	}
}

// Containers returns every container of the pods, init and ephemeral
// containers included.
func Containers(pods []corev1.Pod) []Container {
	var out []Container
	for _, p := range pods {
		for _, c := range p.Spec.InitContainers {
			out = append(out, Container{p.Namespace, p.Name, c.Name, "initContainer", c.Image})
		}
		for _, c := range p.Spec.Containers {
			out = append(out, Container{p.Namespace, p.Name, c.Name, "container", c.Image})
		}
		for _, c := range p.Spec.EphemeralContainers {
			out = append(out, Container{p.Namespace, p.Name, c.Name, "ephemeralContainer", c.Image})
		}
	}
	return out
}

// Audit decides every image of pods with r, once per namespace and image,
// and returns the containers whose image is refused or warned. A review
// that fails is an error (the audit cannot say the cluster is clean).
func Audit(ctx context.Context, pods []corev1.Pod, r Reviewer) (*Report, error) {
	rep := &Report{Pods: len(pods), Refused: []Finding{}, Warned: []Finding{}}
	type key struct{ ns, image string }
	type answer struct {
		outcome, message string
	}
	answers := map[key]answer{}
	byName := map[string]*corev1.Pod{}
	for i := range pods {
		byName[pods[i].Namespace+"/"+pods[i].Name] = &pods[i]
	}
	containers := Containers(pods)
	rep.Containers = len(containers)
	for _, c := range containers {
		k := key{c.Namespace, c.Image}
		a, ok := answers[k]
		if !ok {
			resp, err := r.Review(ctx, singleContainerPod(byName[c.Namespace+"/"+c.Pod], c))
			if err != nil {
				return nil, err
			}
			switch {
			case !resp.Allowed:
				a.outcome = "refused"
				if resp.Result != nil {
					a.message = resp.Result.Message
				}
			case len(resp.Warnings) > 0:
				a.outcome, a.message = "warned", strings.Join(resp.Warnings, "; ")
			}
			answers[k] = a
		}
		switch a.outcome {
		case "refused":
			rep.Refused = append(rep.Refused, Finding{c, a.outcome, a.message})
		case "warned":
			rep.Warned = append(rep.Warned, Finding{c, a.outcome, a.message})
		}
	}
	rep.Images = len(answers)
	for _, l := range [][]Finding{rep.Refused, rep.Warned} {
		sort.SliceStable(l, func(i, j int) bool {
			a, b := l[i], l[j]
			if a.Namespace != b.Namespace {
				return a.Namespace < b.Namespace
			}
			if a.Pod != b.Pod {
				return a.Pod < b.Pod
			}
			return a.Container.Container < b.Container.Container
		})
	}
	return rep, nil
}

// singleContainerPod is the pod as admission would see it with c as its
// only container (metadata kept: labels and annotations may matter to
// policies).
func singleContainerPod(p *corev1.Pod, c Container) *corev1.Pod {
	out := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Name, Namespace: p.Namespace, Labels: p.Labels, Annotations: p.Annotations,
			OwnerReferences: p.OwnerReferences,
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: c.Container, Image: c.Image}}},
	}
	return out
}

// Doer sends HTTP requests (an *http.Client trusting customs' CA).
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// WebhookReviewer asks customs' validating webhook (POST URL/validate) with
// dry-run AdmissionReviews, as the API server would.
type WebhookReviewer struct {
	// URL is the admission listener's base URL (https://host:port).
	URL string
	// Client sends the requests.
	Client Doer
	// User is who the review says asks (audit logs); default
	// "customs-audit".
	User string
}

// maxResponse bounds an AdmissionReview response body.
const maxResponse = 1 << 20

// Review implements Reviewer.
func (w *WebhookReviewer) Review(ctx context.Context, pod *corev1.Pod) (*admissionv1.AdmissionResponse, error) {
	raw, err := json.Marshal(pod)
	if err != nil {
		return nil, err
	}
	uid := make([]byte, 16)
	if _, err := rand.Read(uid); err != nil {
		return nil, err
	}
	dry := true
	user := w.User
	if user == "" {
		user = "customs-audit"
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID(hex.EncodeToString(uid)),
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Name:      pod.Name,
			Namespace: pod.Namespace,
			Operation: admissionv1.Create,
			UserInfo:  authenticationv1.UserInfo{Username: user},
			Object:    runtime.RawExtension{Raw: raw},
			DryRun:    &dry,
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(w.URL, "/")+"/validate", bytes.NewReader(body))
	if err != nil {
		return nil, apperr.Errorf(apperr.EINVALID, "--admission-url %q: %v", w.URL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.Client.Do(req)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.EUNAVAILABLE, fmt.Sprintf("asking customs' admission listener: %v", err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, apperr.Wrap(err, apperr.EUNAVAILABLE, fmt.Sprintf("reading the admission answer: %v", err))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, apperr.Errorf(apperr.EUNAVAILABLE, "customs' admission listener answered %s: %s", resp.Status, bytes.TrimSpace(b[:min(len(b), 512)]))
	}
	return decodeResponse(b, review.Request.UID)
}

// decodeResponse parses an AdmissionReview answer to the request uid.
func decodeResponse(b []byte, uid types.UID) (*admissionv1.AdmissionResponse, error) {
	if len(b) > maxResponse {
		return nil, apperr.Errorf(apperr.EINVALID, "the admission answer is larger than %d bytes", maxResponse)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, apperr.Errorf(apperr.EINVALID, "the admission answer is not an AdmissionReview: %v", err)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" {
		return nil, apperr.Errorf(apperr.EINVALID, "the admission answer is %s %s, want admission.k8s.io/v1 AdmissionReview", out.APIVersion, out.Kind)
	}
	if out.Response == nil || out.Response.UID != uid {
		return nil, apperr.Errorf(apperr.EINVALID, "the admission answer has no response for request %s", uid)
	}
	return out.Response, nil
}
