package e2e_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/test/e2e/harness"
)

// certError matches how clients report a certificate they do not trust.
var certError = regexp.MustCompile(`(?i)x509|certificate`)

// TestTLSGenerate starts customs with --tls-generate and follows the trust
// instructions it prints: crane with SSL_CERT_FILE and skopeo with a
// certificate directory push and pull over HTTPS without any insecure
// flag, while clients that were not told to trust the CA refuse the server.
func TestTLSGenerate(t *testing.T) {
	t.Parallel()
	srv := harness.StartCustoms(t, harness.Options{Args: []string{"--tls-generate"}, HTTPS: true})
	ca := filepath.Join(srv.DataDir, "tls", "ca.crt")
	if srv.CAFile != ca {
		t.Fatalf("harness CAFile %s, want %s", srv.CAFile, ca)
	}

	// The instructions name the CA file and the commands for each client.
	logs := srv.Logs()
	for _, want := range []string{
		"customs generated a CA for its HTTPS certificate: " + ca,
		"SSL_CERT_FILE=" + ca + " crane",
		"/etc/docker/certs.d/" + srv.Addr + "/ca.crt",
		"/etc/containers/certs.d/" + srv.Addr + "/ca.crt",
		"~/.config/containers/certs.d/" + srv.Addr + "/ca.crt",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the server's output lacks %q:\n%s", want, logs)
		}
	}
	caCert := readCert(t, ca)
	if !caCert.IsCA {
		t.Errorf("%s is not a CA certificate", ca)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		if _, err := servedCert(srv.Addr, &tls.Config{RootCAs: pool, ServerName: host}); err != nil {
			t.Errorf("the generated certificate does not verify for %s with the generated CA: %v", host, err)
		}
	}

	srv.CreateProject(t, "tls", false) // the CLI over HTTPS, with SSL_CERT_FILE
	img := randomImage(t, 42, 300<<10, 100<<10)
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	src := writeImageLayout(t, img, "v1")
	craneRepo := srv.Addr + "/tls/crane"
	skopeoRef := "docker://" + srv.Addr + "/tls/skopeo:v1"

	t.Run("crane with SSL_CERT_FILE", func(t *testing.T) {
		c := harness.NewClient(t)
		c.Env("SSL_CERT_FILE=" + ca)
		c.MustInput(t, srv.Password, "crane", "auth", "login", srv.Addr, "-u", srv.Username, "--password-stdin")
		c.Must(t, "crane", "push", src, craneRepo+":v1")
		if got := strings.TrimSpace(c.Must(t, "crane", "digest", craneRepo+":v1")); got != d.String() {
			t.Errorf("crane digest %s, pushed %s", got, d)
		}
		dst := filepath.Join(t.TempDir(), "pulled")
		c.Must(t, "crane", "pull", "--format=oci", craneRepo+":v1", dst)
		if got, _ := layoutManifest(t, dst); got != d.String() {
			t.Errorf("pulled %s, pushed %s", got, d)
		}
		sameBlobs(t, src, dst)
	})

	t.Run("skopeo with a cert dir holding ca.crt", func(t *testing.T) {
		certDir := t.TempDir()
		copyFile(t, ca, filepath.Join(certDir, "ca.crt"))
		c := harness.NewClient(t)
		c.MustInput(t, srv.Password+"\n", "skopeo", "login", "--cert-dir", certDir, "-u", srv.Username, "--password-stdin", srv.Addr)
		c.Must(t, "skopeo", "--insecure-policy", "copy", "--preserve-digests", "--dest-cert-dir", certDir, "oci:"+src+":v1", skopeoRef)
		dst := filepath.Join(t.TempDir(), "out")
		c.Must(t, "skopeo", "--insecure-policy", "copy", "--preserve-digests", "--src-cert-dir", certDir, skopeoRef, "oci:"+dst+":v1")
		if got, _ := layoutManifest(t, dst); got != d.String() {
			t.Errorf("copied back %s, pushed %s", got, d)
		}
		sameBlobs(t, src, dst)
	})

	// The rootless podman/skopeo line, run as printed in the client's
	// sandbox (its own HOME), makes skopeo trust the server with no flag.
	t.Run("skopeo after the printed rootless command", func(t *testing.T) {
		m := regexp.MustCompile(`(?m)^\s*podman, skopeo \(no root\): (.+)$`).FindStringSubmatch(logs)
		if m == nil {
			t.Fatalf("no rootless podman/skopeo instruction in the server's output:\n%s", logs)
		}
		c := harness.NewClient(t)
		c.Must(t, "sh", "-c", m[1])
		r := c.Run(t, "skopeo", "inspect", "--raw", "--creds", srv.Username+":"+srv.Password, "docker://"+craneRepo+":v1")
		if r.Err != nil {
			t.Errorf("skopeo does not trust the server after the printed command %q:\n%s", m[1], r)
		}
	})

	t.Run("untrusted clients refuse the server", func(t *testing.T) {
		c := harness.NewClient(t)
		for _, args := range [][]string{
			{"crane", "digest", craneRepo + ":v1"},
			{"skopeo", "inspect", "--raw", "--creds", srv.Username + ":" + srv.Password, "docker://" + craneRepo + ":v1"},
		} {
			r := c.Run(t, args...)
			switch {
			case r.Err == nil:
				t.Errorf("a client that does not trust the CA talked to the server:\n%s", r)
			case !certError.MatchString(r.Stderr):
				t.Errorf("a client that does not trust the CA failed, but not with a certificate error:\n%s", r)
			default:
				t.Logf("refused: %s", strings.TrimSpace(r.Stderr))
			}
		}
		if _, err := servedCert(srv.Addr, &tls.Config{ServerName: "127.0.0.1"}); err == nil || !certError.MatchString(err.Error()) {
			t.Errorf("a TLS handshake with the system roots: %v, want a certificate error", err)
		}
	})
}

// TestTLSCertReload serves a certificate from files, replaces the files with
// a certificate for another name, and expects the new one to be served
// within the server's reload interval (10 s) without a restart.
func TestTLSCertReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, caKey := newTestCA(t)
	caFile := filepath.Join(dir, "ca.crt")
	writePEM(t, caFile, "CERTIFICATE", ca.Raw, 0o644)
	certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	writeLeaf(t, ca, caKey, certFile, keyFile, "first.customs.test", "127.0.0.1")

	srv := harness.StartCustoms(t, harness.Options{
		Args:  []string{"--tls-cert", certFile, "--tls-key", keyFile},
		HTTPS: true, CAFile: caFile,
	})
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	first, err := servedCert(srv.Addr, &tls.Config{RootCAs: pool, ServerName: "first.customs.test"})
	if err != nil {
		t.Fatalf("the certificate from --tls-cert: %v", err)
	}

	// Replace both files (each by an atomic rename, key first).
	writeLeaf(t, ca, caKey, certFile, keyFile, "second.customs.test")
	replaced := time.Now()
	second := &tls.Config{RootCAs: pool, ServerName: "second.customs.test"}
	deadline := replaced.Add(20 * time.Second)
	var got *x509.Certificate
	for {
		got, err = servedCert(srv.Addr, second)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still serves its first certificate 20 s after the files changed (reload interval 10 s): %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("new certificate served %s after the files changed", time.Since(replaced).Round(time.Millisecond))
	if got.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("the served certificate did not change")
	}
	if _, err := servedCert(srv.Addr, &tls.Config{RootCAs: pool, ServerName: "first.customs.test"}); err == nil {
		t.Error("the first certificate is still served after the reload")
	}

	// The registry answers over the new certificate.
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: second}}
	resp, err := client.Get(srv.URL() + "/v2/")
	if err != nil {
		t.Fatalf("GET /v2/ over the new certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v2/ over the new certificate: %d, want 401", resp.StatusCode)
	}
	if !strings.Contains(srv.Logs(), "TLS certificate reloaded") {
		t.Errorf("the server did not log the reload")
	}
}

// servedCert makes a TLS handshake with addr under cfg and returns the
// certificate the server presented.
func servedCert(addr string, cfg *tls.Config) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// newTestCA returns a fresh self-signed CA certificate and its key.
func newTestCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "customs e2e test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// writeLeaf writes a server certificate signed by ca for hosts (DNS names
// or IPs) and its key to certFile and keyFile, key first, each replaced by
// an atomic rename.
func writeLeaf(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, certFile, keyFile string, hosts ...string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER, 0o600)
	writePEM(t, certFile, "CERTIFICATE", der, 0o644)
}

// writePEM writes one PEM block to path through a temporary file renamed
// into place.
func writePEM(t *testing.T, path, blockType string, der []byte, mode os.FileMode) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// readCert reads the first PEM certificate of path.
func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s holds no PEM certificate", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cert
}

// copyFile copies src to dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
