package admission

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// DefaultDNSNames are the names the generated serving certificate is valid
// for when none are configured: local tests and the Service that
// `customs admission manifests` creates.
var DefaultDNSNames = []string{"localhost", "127.0.0.1", "customs-admission.customs.svc", "customs-admission.customs.svc.cluster.local"}

// RenewBefore is how long before expiry a generated certificate is made
// again.
const RenewBefore = 30 * 24 * time.Hour

// GeneratedTLS names the files EnsureTLS keeps in its directory.
type GeneratedTLS struct {
	CAFile   string // ca.crt: what a webhook configuration's caBundle carries
	CertFile string // tls.crt: the serving certificate, signed by the CA
	KeyFile  string // tls.key
	// Issued is true when this call wrote a new serving certificate,
	// CAIssued when it wrote a new CA (every caBundle must change).
	Issued, CAIssued bool
}

// EnsureTLS makes sure dir holds a CA (ca.crt, ca.key) and a serving
// certificate (tls.crt, tls.key) valid for names (DNS names or IPs) for
// more than RenewBefore after now. A CA still valid that long is kept (so
// caBundles stay valid); the serving certificate is issued again when it
// expires within RenewBefore, does not cover names, or was not signed by
// the CA. Keys are ECDSA P-256, written 0600; files are replaced
// atomically.
func EnsureTLS(dir string, names []string, now time.Time) (GeneratedTLS, error) {
	if len(names) == 0 {
		names = DefaultDNSNames
	}
	g := GeneratedTLS{CAFile: filepath.Join(dir, "ca.crt"), CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")}
	caKeyFile := filepath.Join(dir, "ca.key")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return g, err
	}
	ca, caKey, err := loadPair(g.CAFile, caKeyFile)
	if err != nil || !ca.IsCA || ca.NotAfter.Before(now.Add(RenewBefore)) {
		ca, caKey, err = newCA(now)
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
		SerialNumber: serialNumber(),
		Subject:      pkix.Name{CommonName: names[0], Organization: []string{"customs admission"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
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

func newCA(now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serialNumber(),
		Subject:               pkix.Name{CommonName: "customs admission CA", Organization: []string{"customs"}},
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
	if err := writeFileAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func serialNumber() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}
