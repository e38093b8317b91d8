package admission

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// useContext is where images are used: the namespace, its environment
// (the namespace's label, else the mapping; a labeler error is logged and
// the mapping applies) and the `*.image-policy.k8s.io/*` annotations among
// annotations. Every door builds it here.
func (w *Webhook) useContext(ctx context.Context, namespace string, annotations map[string]string) useContext {
	env, _, err := w.opts.Environments.Of(ctx, namespace)
	if err != nil {
		w.opts.Logger.Warn("admission: namespace labels not read; the environment mapping applies", "namespace", namespace, "err", err)
	}
	return useContext{namespace: namespace, environment: env, annotations: imagePolicyAnnotations(annotations)}
}

// PodDecision is what admission would answer today about a pod's images.
type PodDecision struct {
	// ExemptBy is the exemptNamespaces entry that exempts the pod's
	// namespace ("" when it is checked; then Images is empty).
	ExemptBy string
	// Environment is the namespace's environment.
	Environment string
	// Images holds one decision per image use, in the order ImagesOf
	// returns them.
	Images []ImageDecision
}

// DecidePod decides every image of pod as the validating webhook decides a
// Pod's CREATE: exempt namespaces, the namespace's environment, the pod's
// `*.image-policy.k8s.io/*` annotations, the resolver and the decider, each
// distinct reference once, within timeout (0: Options.DefaultTimeout, less
// the webhook's margin). The audit of running workloads calls it; nothing
// is logged or counted as an admission review. An error means the pod's
// images could not be read.
func (w *Webhook) DecidePod(ctx context.Context, timeout time.Duration, pod *corev1.Pod) (*PodDecision, error) {
	if ok, by := w.opts.Exempt.Exempt(pod.Namespace); ok {
		return &PodDecision{ExemptBy: by}, nil
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		return nil, fmt.Errorf("encoding pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	uses, annotations, err := readObject(metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, raw)
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	kept := uses[:0]
	for _, u := range uses {
		if u.Image != "" {
			kept = append(kept, u)
		}
	}
	ctx, cancel, _ := w.deadline(ctx, timeout)
	defer cancel()
	uc := w.useContext(ctx, pod.Namespace, annotations)
	return &PodDecision{Environment: uc.environment, Images: w.decideAll(ctx, kept, uc)}, nil
}
