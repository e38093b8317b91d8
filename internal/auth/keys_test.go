package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
)

func TestOpenKeyDirCreatesKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	k, err := OpenKeyDir(dir, KeyDirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v, want 0700", fi.Mode().Perm())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 1 || !strings.HasSuffix(files[0], ".pem") {
		t.Fatalf("files %v, want one .pem", files)
	}
	fi, _ = os.Stat(files[0])
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v, want 0600", fi.Mode().Perm())
	}
	sk, _ := k.SigningKey()
	if sk.Key == nil || sk.Key.Curve != elliptic.P256() {
		t.Fatal("no P-256 signing key")
	}
	if pub, err := k.PublicKey(sk.ID); err != nil || !pub.Equal(&sk.Key.PublicKey) {
		t.Fatalf("PublicKey(signing kid) = %v, %v", pub, err)
	}

	// Opening again reuses the key.
	k2, err := OpenKeyDir(dir, KeyDirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sk2, _ := k2.SigningKey(); sk2.ID != sk.ID {
		t.Fatalf("reopened signing kid %s, want %s", sk2.ID, sk.ID)
	}
}

func TestKeyIDIsRFC7638Thumbprint(t *testing.T) {
	// The example key of RFC 7638 is RSA; this checks against a P-256 key
	// whose thumbprint was computed independently (JWK from RFC 7517 A.1).
	jwkX := "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4"
	jwkY := "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"
	raw := append([]byte{4}, append(mustB64URL(t, jwkX), mustB64URL(t, jwkY)...)...)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		t.Fatal(err)
	}
	got, err := KeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	// sha256 of {"crv":"P-256","kty":"EC","x":"MKBC...","y":"4Etl..."}, base64url.
	if want := "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s"; got != want {
		t.Fatalf("KeyID = %s, want %s", got, want)
	}
}

func TestKeyDirRotation(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	k, err := OpenKeyDir(dir, KeyDirOptions{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	old, _ := k.SigningKey()
	clock.Advance(time.Hour)
	kid, err := k.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if kid == old.ID {
		t.Fatal("rotation kept the old key id")
	}
	if now, _ := k.SigningKey(); now.ID != kid {
		t.Fatalf("signing kid %s after rotation, want %s", now.ID, kid)
	}
	if _, err := k.PublicKey(old.ID); err != nil {
		t.Fatalf("old key no longer verifies: %v", err)
	}

	// A file sorting after the generated ones keeps signing: Rotate says so.
	writePEM(t, filepath.Join(dir, "zz-manual.pem"), "EC PRIVATE KEY", mustECDER(t))
	if err := k.Reload(); err != nil {
		t.Fatal(err)
	}
	manual, _ := k.SigningKey()
	clock.Advance(time.Hour)
	if _, err := k.Rotate(); apperr.Code(err) != apperr.ECONFLICT {
		t.Fatalf("Rotate with a later manual key: %v, want ECONFLICT", err)
	}
	if now, _ := k.SigningKey(); now.ID != manual.ID {
		t.Fatal("the key whose file sorts last does not sign")
	}

	// Removing the old key's file and reloading stops it verifying.
	files, _ := filepath.Glob(filepath.Join(dir, "key-*.pem"))
	if err := os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	if err := k.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := k.PublicKey(old.ID); apperr.Code(err) != apperr.ENOTFOUND {
		t.Fatalf("removed key: %v, want ENOTFOUND", err)
	}
}

func TestKeyDirPublicOnlyAndPKCS8(t *testing.T) {
	dir := t.TempDir()
	retired, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pubDER, _ := x509.MarshalPKIXPublicKey(&retired.PublicKey)
	writePEM(t, filepath.Join(dir, "a-retired.pem"), "PUBLIC KEY", pubDER)
	signer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p8, _ := x509.MarshalPKCS8PrivateKey(signer)
	writePEM(t, filepath.Join(dir, "b-current.pem"), "PRIVATE KEY", p8)
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o600); err != nil {
		t.Fatal(err)
	}

	k, err := OpenKeyDir(dir, KeyDirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	retiredID, _ := KeyID(&retired.PublicKey)
	signerID, _ := KeyID(&signer.PublicKey)
	if sk, _ := k.SigningKey(); sk.ID != signerID {
		t.Fatalf("signing kid %s, want %s", sk.ID, signerID)
	}
	if _, err := k.PublicKey(retiredID); err != nil {
		t.Fatalf("public-only key does not verify: %v", err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "key-*.pem")); len(files) != 0 {
		t.Fatal("a key was generated although the directory has one")
	}
}

func TestKeyDirRejectsBadFiles(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaP8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalECPrivateKey(p384)
	pubOnly, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pubDER, _ := x509.MarshalPKIXPublicKey(&pubOnly.PublicKey)
	tests := []struct {
		name  string
		write func(t *testing.T, path string)
		want  string
	}{
		{"not PEM", func(t *testing.T, p string) { _ = os.WriteFile(p, []byte("hello"), 0o600) }, "key.pem"},
		{"RSA", func(t *testing.T, p string) { writePEM(t, p, "PRIVATE KEY", rsaP8) }, "key.pem"},
		{"P-384", func(t *testing.T, p string) { writePEM(t, p, "EC PRIVATE KEY", p384DER) }, "key.pem"},
		{"certificate", func(t *testing.T, p string) { writePEM(t, p, "CERTIFICATE", []byte{1, 2}) }, "key.pem"},
		{"garbage DER", func(t *testing.T, p string) { writePEM(t, p, "EC PRIVATE KEY", []byte{1, 2, 3}) }, "key.pem"},
		{"only public keys", func(t *testing.T, p string) { writePEM(t, p, "PUBLIC KEY", pubDER) }, "no private key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.write(t, filepath.Join(dir, "key.pem"))
			_, err := OpenKeyDir(dir, KeyDirOptions{})
			if err == nil {
				t.Fatal("bad key directory accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestKeyDirReloadsOnUnknownKid(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	a, err := OpenKeyDir(dir, KeyDirOptions{Clock: clock.Now, ReloadInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// Another replica rotates in the shared directory.
	b, err := OpenKeyDir(dir, KeyDirOptions{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	kid, err := b.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.PublicKey(kid); err == nil {
		t.Fatal("reloaded before ReloadInterval elapsed")
	}
	clock.Advance(time.Minute)
	if _, err := a.PublicKey(kid); err != nil {
		t.Fatalf("replica did not pick up the rotated key: %v", err)
	}
	if sk, _ := a.SigningKey(); sk.ID != kid {
		t.Fatal("replica does not sign with the rotated key after reloading")
	}
}

func TestKeyDirBrokenReloadKeepsKeys(t *testing.T) {
	dir := t.TempDir()
	k, err := OpenKeyDir(dir, KeyDirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := k.SigningKey()
	if err := os.WriteFile(filepath.Join(dir, "zz.pem"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := k.Reload(); err == nil || !strings.Contains(err.Error(), "zz.pem") {
		t.Fatalf("Reload = %v, want an error naming zz.pem", err)
	}
	if after, _ := k.SigningKey(); after.ID != before.ID {
		t.Fatal("a failed reload changed the signing key")
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustECDER(t *testing.T) []byte {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestKeyDirWatch places a key file by hand, as an operator or another
// replica would, and waits for Watch to make it sign without any token
// asking for it.
func TestKeyDirWatch(t *testing.T) {
	dir := t.TempDir()
	a, err := OpenKeyDir(dir, KeyDirOptions{ReloadInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Watch(ctx, 20*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	old, _ := a.SigningKey()

	b, err := OpenKeyDir(dir, KeyDirOptions{}) // the other replica
	if err != nil {
		t.Fatal(err)
	}
	kid, err := b.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if s, _ := a.SigningKey(); s.ID == kid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Watch did not load the new key %s in 5s", kid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := a.PublicKey(old.ID); err != nil {
		t.Fatalf("old key no longer verifies: %v", err)
	}
}

func TestKeyDirKeysAndPrune(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	k, err := OpenKeyDir(dir, KeyDirOptions{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := k.SigningKey()
	now = now.Add(time.Second)
	second, err := k.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	third, err := k.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := k.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 || keys[0].ID != first.ID || keys[0].Signing || keys[1].ID != second || keys[1].Signing ||
		keys[2].ID != third || !keys[2].Signing || !keys[2].Private || !keys[2].Retired.IsZero() {
		t.Fatalf("keys %+v: want the first two (not signing) then the new signing key", keys)
	}
	// The first key was written 200 days ago and replaced 100 days ago; the
	// second, written 100 days ago, was replaced just now: it is old, but
	// refresh tokens it signed yesterday are still valid.
	day := 24 * time.Hour
	setMtime := func(file string, tm time.Time) {
		t.Helper()
		if err := os.Chtimes(filepath.Join(dir, file), tm, tm); err != nil {
			t.Fatal(err)
		}
	}
	setMtime(keys[0].File, now.Add(-200*day))
	setMtime(keys[1].File, now.Add(-100*day))
	keys, _ = k.Keys()
	if !keys[0].Retired.Equal(now.Add(-100*day)) || !keys[1].Retired.Equal(keys[2].Modified) {
		t.Fatalf("retired times %v, %v: want the next key's modification times", keys[0].Retired, keys[1].Retired)
	}
	if _, err := k.Prune(now.Add(-time.Hour), 90*day); apperr.Code(err) != apperr.EINVALID {
		t.Fatalf("prune of keys younger than the minimum age: %v, want EINVALID", err)
	}
	removed, err := k.Prune(now.Add(-90*day), 90*day)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0].ID != first.ID {
		t.Fatalf("removed %+v, want the first key only", removed)
	}
	if _, err := k.PublicKey(first.ID); err == nil {
		t.Fatal("a removed key still verifies")
	}
	if _, err := k.PublicKey(second); err != nil {
		t.Fatalf("the key retired just now was removed: %v", err)
	}
	// The signing key is never removed, however old.
	keys, _ = k.Keys()
	setMtime(keys[len(keys)-1].File, now.Add(-300*day))
	removed, err = k.Prune(now.Add(-90*day), 90*day)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range removed {
		if r.ID == third {
			t.Fatalf("pruned the signing key: %+v", removed)
		}
	}
	if s, _ := k.SigningKey(); s.ID != third {
		t.Fatalf("after pruning %s signs, want %s", s.ID, third)
	}
}
