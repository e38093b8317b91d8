// Package kube connects customs to a Kubernetes cluster with client-go:
// credentials from a kubeconfig file or the pod's service account, and a
// cached reader of namespace labels for admission's environments.
package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ErrNoCluster is returned by Connect when no kubeconfig is given and
// customs does not run in a pod.
var ErrNoCluster = errors.New("no cluster credentials: no kubeconfig given and not running in a pod")

// Connect returns a clientset for the cluster of kubeconfig (a file path),
// or, when kubeconfig is empty, of the pod customs runs in (its service
// account); ErrNoCluster when there is neither. timeout bounds each
// request (0: 5s).
func Connect(kubeconfig string, timeout time.Duration) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
		}
	} else {
		if os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
			return nil, ErrNoCluster
		}
		cfg, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster credentials: %w", err)
		}
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	cfg.Timeout = timeout
	cfg.UserAgent = "customs"
	return kubernetes.NewForConfig(cfg)
}

// NamespaceLabels reads namespaces' labels through a client and keeps each
// answer for TTL, so admission asks the API server about a namespace at
// most once per TTL. It is safe for concurrent use.
type NamespaceLabels struct {
	client kubernetes.Interface
	ttl    time.Duration
	now    func() time.Time

	group   singleflight.Group
	mu      sync.Mutex
	entries map[string]labelsEntry
}

type labelsEntry struct {
	labels  map[string]string
	expires time.Time
}

// NewNamespaceLabels returns a reader; ttl 0 means 30 seconds, now nil
// means time.Now.
func NewNamespaceLabels(client kubernetes.Interface, ttl time.Duration, now func() time.Time) *NamespaceLabels {
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	if now == nil {
		now = time.Now
	}
	return &NamespaceLabels{client: client, ttl: ttl, now: now, entries: map[string]labelsEntry{}}
}

// NamespaceLabels returns the labels of namespace (admission.NamespaceLabeler).
func (n *NamespaceLabels) NamespaceLabels(ctx context.Context, namespace string) (map[string]string, error) {
	n.mu.Lock()
	if e, ok := n.entries[namespace]; ok && n.now().Before(e.expires) {
		n.mu.Unlock()
		return e.labels, nil
	}
	n.mu.Unlock()
	// Concurrent requests for one namespace share one GET.
	v, err, _ := n.group.Do(namespace, func() (any, error) {
		ns, err := n.client.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("reading namespace %s: %w", namespace, err)
		}
		n.mu.Lock()
		if len(n.entries) > 10000 {
			n.entries = map[string]labelsEntry{}
		}
		n.entries[namespace] = labelsEntry{labels: ns.Labels, expires: n.now().Add(n.ttl)}
		n.mu.Unlock()
		return ns.Labels, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(map[string]string), nil
}
