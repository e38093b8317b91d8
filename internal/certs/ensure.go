package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// RenewBefore is how long before expiry a generated certificate is made
// again.
const RenewBefore = 30 * 24 * time.Hour

// Layout says what Ensure keeps in a directory: the files' base names,
// the CA's common name and the serving certificate's lifetime.
type Layout struct {
	CA, CAKey, Cert, Key string
	CAName               string
	CertLifetime         time.Duration
}

// ServerLayout is the registry's generated TLS (Generate).
var ServerLayout = Layout{CA: "ca.crt", CAKey: "ca.key", Cert: "server.crt", Key: "server.key",
	CAName: "customs local CA", CertLifetime: 2 * 365 * 24 * time.Hour}

// WebhookLayout is the admission webhook's generated TLS, in the file
// names of a kubernetes.io/tls Secret.
var WebhookLayout = Layout{CA: "ca.crt", CAKey: "ca.key", Cert: "tls.crt", Key: "tls.key",
	CAName: "customs admission CA", CertLifetime: 365 * 24 * time.Hour}

// Ensured names the files Ensure keeps and what it changed.
type Ensured struct {
	CAFile   string // the CA certificate clients (and caBundles) trust
	CertFile string // the serving certificate, signed by the CA
	KeyFile  string // the serving key
	// Issued is true when this call wrote a new serving certificate,
	// CAIssued when it wrote a new CA (every client must trust it anew).
	Issued, CAIssued bool
}

// Ensure makes sure dir holds, in layout l, a CA and a serving certificate
// valid for names (DNS names or IPs; at least one) for more than
// RenewBefore after now. A CA still valid that long is kept (so clients
// keep trusting it across restarts); the serving certificate is issued
// again when it expires within RenewBefore, does not cover names, or was
// not signed by the CA. Keys are ECDSA P-256, written 0600, the key before
// its certificate; files are replaced atomically.
func Ensure(dir string, l Layout, names []string, now time.Time) (Ensured, error) {
	g := Ensured{CAFile: filepath.Join(dir, l.CA), CertFile: filepath.Join(dir, l.Cert), KeyFile: filepath.Join(dir, l.Key)}
	if len(names) == 0 {
		return g, errors.New("certs: a serving certificate needs at least one name")
	}
	caKeyFile := filepath.Join(dir, l.CAKey)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return g, err
	}
	ca, caKey, err := loadPair(g.CAFile, caKeyFile)
	if err != nil || !ca.IsCA || ca.NotAfter.Before(now.Add(RenewBefore)) {
		ca, caKey, err = newCA(l.CAName, now)
		if err != nil {
			return g, err
		}
		if err := writePair(g.CAFile, caKeyFile, ca, caKey); err != nil {
			return g, err
		}
		g.CAIssued = true
	}
	cert, _, err := loadPair(g.CertFile, g.KeyFile)
	if err == nil && !g.CAIssued && cert.CheckSignatureFrom(ca) == nil && !cert.NotAfter.Before(now.Add(RenewBefore)) && covers(cert, names) {
		return g, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return g, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: names[0], Organization: []string{"customs"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(l.CertLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return g, err
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		return g, err
	}
	if err := writePair(g.CertFile, g.KeyFile, cert, key); err != nil {
		return g, err
	}
	g.Issued = true
	return g, nil
}

func newCA(name string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"customs"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	return c, key, err
}

// covers reports whether cert is valid for every name.
func covers(cert *x509.Certificate, names []string) bool {
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
				return false
			}
		} else if !slices.Contains(cert.DNSNames, n) {
			return false
		}
	}
	return true
}

func loadPair(certFile, keyFile string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, err
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, err
	}
	cblk, _ := pem.Decode(cb)
	kblk, _ := pem.Decode(kb)
	if cblk == nil || kblk == nil {
		return nil, nil, errors.New("not PEM")
	}
	cert, err := x509.ParseCertificate(cblk.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParseECPrivateKey(kblk.Bytes)
	if err != nil {
		return nil, nil, err
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, nil, fmt.Errorf("%s does not hold the key of %s", keyFile, certFile)
	}
	return cert, key, nil
}

func writePair(certFile, keyFile string, cert *x509.Certificate, key *ecdsa.PrivateKey) error {
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	// The key first: a certificate never names a key that is not there.
	if err := writeAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return writeAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644)
}
