package admission

import (
	"time"

	"github.com/customs-dev/customs/internal/certs"
)

// DefaultDNSNames are the names the generated serving certificate is valid
// for when none are configured: local tests and the Service that
// `customs admission manifests` creates.
var DefaultDNSNames = []string{"localhost", "127.0.0.1", "customs-admission.customs.svc", "customs-admission.customs.svc.cluster.local"}

// EnsureTLS makes sure dir holds the webhook's generated CA (ca.crt,
// ca.key) and serving certificate (tls.crt, tls.key) valid for names, or
// DefaultDNSNames when none are given; see certs.Ensure for renewal.
func EnsureTLS(dir string, names []string, now time.Time) (certs.Ensured, error) {
	if len(names) == 0 {
		names = DefaultDNSNames
	}
	return certs.Ensure(dir, certs.WebhookLayout, names, now)
}
