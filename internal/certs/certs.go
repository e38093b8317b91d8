// Package certs provides the server's TLS certificates: files given by the
// operator, reloaded when they change, or a CA and server certificate
// generated into the data directory on request.
package certs

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Generated names the files Generate writes into its directory.
type Generated struct {
	CAFile   string // the CA certificate clients must trust
	CertFile string // the server certificate, signed by the CA
	KeyFile  string // the server key
	Created  bool   // false when the files already there were kept
}

// Generate makes sure dir holds a CA (ca.crt, ca.key) and a server
// certificate (server.crt, server.key) valid for hosts (DNS names or IPs),
// as Ensure does with ServerLayout: the CA is kept while it is valid, so
// clients keep trusting it across restarts, and the server certificate is
// issued again when it nears expiry or does not cover hosts. With no hosts
// it is valid for localhost.
func Generate(dir string, hosts []string, now time.Time) (Generated, error) {
	if len(hosts) == 0 {
		hosts = []string{"localhost"}
	}
	e, err := Ensure(dir, ServerLayout, hosts, now)
	return Generated{CAFile: e.CAFile, CertFile: e.CertFile, KeyFile: e.KeyFile, Created: e.Issued || e.CAIssued}, err
}

// DefaultHosts returns localhost, the loopback IPs and the machine's host
// name: what a generated certificate is valid for when no hosts are given.
func DefaultHosts() []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		hosts = append(hosts, h)
	}
	return hosts
}

// TrustInstructions returns the commands that make common clients trust the
// CA in caFile for a registry reachable at hostPort.
func TrustInstructions(caFile, hostPort string) string {
	return fmt.Sprintf(`customs generated a CA for its HTTPS certificate: %[1]s
To trust it:
  docker:          sudo mkdir -p /etc/docker/certs.d/%[2]s && sudo cp %[1]s /etc/docker/certs.d/%[2]s/ca.crt
  podman, skopeo:  sudo mkdir -p /etc/containers/certs.d/%[2]s && sudo cp %[1]s /etc/containers/certs.d/%[2]s/ca.crt
  podman, skopeo (no root): mkdir -p ~/.config/containers/certs.d/%[2]s && cp %[1]s ~/.config/containers/certs.d/%[2]s/ca.crt
  crane, oras, regctl (Go clients): SSL_CERT_FILE=%[1]s crane ls %[2]s/PROJECT/REPO
  system-wide:     sudo cp %[1]s /usr/local/share/ca-certificates/customs.crt && sudo update-ca-certificates
`, caFile, hostPort)
}

// Reloader serves a certificate from files and reloads it when either file
// changes (checked at most once per interval, on handshake).
type Reloader struct {
	certFile, keyFile string
	interval          time.Duration
	now               func() time.Time

	mu       sync.Mutex
	cert     *tls.Certificate
	modCert  time.Time
	modKey   time.Time
	checked  time.Time
	lastErr  error
	onReload func(error)
}

// NewReloader loads certFile and keyFile and returns a Reloader. onReload,
// if not nil, is called after each reload attempt triggered by a change
// (with nil on success); a failed reload keeps serving the previous
// certificate.
func NewReloader(certFile, keyFile string, interval time.Duration, onReload func(error)) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile, interval: interval, now: time.Now, onReload: onReload}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Reloader) load() error {
	ci, err := os.Stat(r.certFile)
	if err != nil {
		return fmt.Errorf("tls.certFile: %w", err)
	}
	ki, err := os.Stat(r.keyFile)
	if err != nil {
		return fmt.Errorf("tls.keyFile: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls certificate %s / key %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.modCert, r.modKey = &cert, ci.ModTime(), ki.ModTime()
	return nil
}

// GetCertificate implements tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if now.Sub(r.checked) >= r.interval {
		r.checked = now
		ci, err1 := os.Stat(r.certFile)
		ki, err2 := os.Stat(r.keyFile)
		if err1 == nil && err2 == nil && (!ci.ModTime().Equal(r.modCert) || !ki.ModTime().Equal(r.modKey)) {
			prev := r.cert
			err := r.load()
			if err != nil {
				r.cert = prev
			}
			if r.onReload != nil {
				r.onReload(err)
			}
		}
	}
	return r.cert, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n
}

func writeAtomic(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return errors.Join(err, os.Remove(tmp.Name()))
	}
	return nil
}
