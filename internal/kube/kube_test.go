package kube

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestNamespaceLabelsCached: labels are read once per TTL, and a missing
// namespace is an error naming it.
func TestNamespaceLabelsCached(t *testing.T) {
	client := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "payments",
		Labels: map[string]string{"customs.dev/environment": "production"}}})
	now := time.Unix(0, 0)
	n := NewNamespaceLabels(client, time.Minute, func() time.Time { return now })
	for range 3 {
		l, err := n.NamespaceLabels(context.Background(), "payments")
		if err != nil || l["customs.dev/environment"] != "production" {
			t.Fatalf("labels %v, %v", l, err)
		}
	}
	if got := len(client.Actions()); got != 1 {
		t.Errorf("%d API requests within the TTL, want 1", got)
	}
	now = now.Add(2 * time.Minute)
	if _, err := n.NamespaceLabels(context.Background(), "payments"); err != nil {
		t.Fatal(err)
	}
	if got := len(client.Actions()); got != 2 {
		t.Errorf("%d API requests after the TTL, want 2", got)
	}
	if _, err := n.NamespaceLabels(context.Background(), "nope"); err == nil {
		t.Error("a missing namespace gave no error")
	}
}

func TestConnectWithoutCluster(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	if _, err := Connect("", 0); !errors.Is(err, ErrNoCluster) {
		t.Errorf("Connect without credentials: %v, want ErrNoCluster", err)
	}
	if _, err := Connect("/nonexistent/kubeconfig", 0); err == nil {
		t.Error("a missing kubeconfig file gave no error")
	}
}
