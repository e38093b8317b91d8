// Package kube_test runs issue 7's acceptance tests: the real `customs
// serve` with its admission listener, a real kube-apiserver (on Debian's
// etcd) that calls it, and kubectl as a user would run it. Pods are only
// stored: there is no scheduler or kubelet.
//
// Each test starts its own customs and registers the webhook
// configurations `customs admission manifests --url` prints for it, limited
// to namespaces labelled customs.dev/test=<the test's label>, so tests run
// in parallel on one API server without seeing each other's webhooks.
package kube_test

import (
	"os"
	"testing"

	"github.com/customs-dev/customs/test/e2e/harness"
	kubeharness "github.com/customs-dev/customs/test/kube/harness"
)

func TestMain(m *testing.M) {
	os.Exit(kubeharness.Main(func() int { return harness.Main(m) }, kubeharness.Options{}))
}
