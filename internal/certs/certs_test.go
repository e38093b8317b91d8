package certs

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestGenerateVerifiesAndIsStable(t *testing.T) {
	dir := t.TempDir()
	g, err := Generate(dir, []string{"localhost", "127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !g.Created {
		t.Fatal("first Generate should create files")
	}
	caPEM, err := os.ReadFile(g.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("CA file is not PEM")
	}
	pair, err := tls.LoadX509KeyPair(g.CertFile, g.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"localhost", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host}); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "evil.example"}); err == nil {
		t.Error("certificate must not be valid for other hosts")
	}
	if fi, _ := os.Stat(g.KeyFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", fi.Mode().Perm())
	}
	g2, err := Generate(dir, []string{"localhost"}, time.Now())
	if err != nil || g2.Created {
		t.Fatalf("second Generate must keep files: created=%v err=%v", g2.Created, err)
	}
	caPEM2, _ := os.ReadFile(g2.CAFile)
	if string(caPEM) != string(caPEM2) {
		t.Fatal("CA changed across restarts")
	}
}

func TestReloaderPicksUpNewCertificate(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	a, err := Generate(dirA, []string{"a.example"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(dirB, []string{"b.example"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	live := t.TempDir()
	certPath, keyPath := filepath.Join(live, "tls.crt"), filepath.Join(live, "tls.key")
	copyFile(t, a.CertFile, certPath)
	copyFile(t, a.KeyFile, keyPath)
	var reloads []error
	r, err := NewReloader(certPath, keyPath, 0, func(err error) { reloads = append(reloads, err) })
	if err != nil {
		t.Fatal(err)
	}
	if cn := leafCN(t, r); cn != "a.example" {
		t.Fatalf("initial CN %q", cn)
	}
	copyFile(t, b.CertFile, certPath)
	copyFile(t, b.KeyFile, keyPath)
	future := time.Now().Add(time.Minute)
	os.Chtimes(certPath, future, future)
	os.Chtimes(keyPath, future, future)
	if cn := leafCN(t, r); cn != "b.example" {
		t.Fatalf("after change CN %q", cn)
	}
	// A broken file keeps the previous certificate.
	os.WriteFile(certPath, []byte("garbage"), 0o644)
	later := future.Add(time.Minute)
	os.Chtimes(certPath, later, later)
	if cn := leafCN(t, r); cn != "b.example" {
		t.Fatalf("after bad file CN %q", cn)
	}
	if len(reloads) != 2 || reloads[0] != nil || reloads[1] == nil {
		t.Fatalf("reload results %v", reloads)
	}
}

func leafCN(t *testing.T, r *Reloader) string {
	t.Helper()
	c, err := r.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.Subject.CommonName
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestGenerateReissuesForNewHosts: a server certificate that does not
// cover the hosts asked for is issued again, signed by the same CA, so
// clients that trust ca.crt keep working.
func TestGenerateReissuesForNewHosts(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	g, err := Generate(dir, []string{"localhost"}, now)
	if err != nil || !g.Created {
		t.Fatalf("first Generate: created=%v err=%v", g.Created, err)
	}
	ca, err := os.ReadFile(g.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := Generate(dir, []string{"localhost", "registry.example"}, now)
	if err != nil || !g2.Created {
		t.Fatalf("Generate for a new host: created=%v err=%v", g2.Created, err)
	}
	ca2, err := os.ReadFile(g2.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(ca) != string(ca2) {
		t.Error("the CA changed; clients trusting it would break")
	}
	pair, err := tls.LoadX509KeyPair(g2.CertFile, g2.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.VerifyHostname("registry.example"); err != nil {
		t.Errorf("reissued certificate: %v", err)
	}
}
