package e2e_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/store/postgres/pgtest"
	"github.com/customs-dev/customs/test/e2e/harness"
)

// TestTokenKeyRotation rotates the token signing key of two replicas of the
// real `customs serve` sharing a data directory and a PostgreSQL database,
// both ways docs/access.md describes, without restarting either:
//
//   - by hand: a new private key file in <dataDir>/keys whose name sorts
//     last; each replica's periodic check of the directory (every 30 s)
//     makes it sign with the new key, though no token of that key was
//     shown to it;
//   - through the API: `customs auth rotate-key` as the administrator on one
//     replica, which signs with the new key at once; the other one follows
//     within the same bound. A user who is not an administrator is refused
//     (403, exit code 4) and both are in the audit trail.
//
// Tokens issued before each rotation — registry bearer tokens and the
// refresh token `customs login` keeps — keep working on both replicas
// (tokens in flight are not broken); crane, which fetches its own tokens,
// pulls from both.
func TestTokenKeyRotation(t *testing.T) {
	t.Parallel()
	if os.Getenv(harness.EnvTarget) == harness.KindDistribution {
		t.Skip("the token service is customs'")
	}
	harness.Tool(t, "crane")
	dsn := pgtest.Schema(t, "e2e_")
	dataDir := t.TempDir()
	opts := harness.Options{DataDir: dataDir, Password: "rotation-admin-pw", Args: []string{"--db-driver", "postgres", "--db-dsn", dsn}}
	a := harness.StartCustoms(t, opts)
	a.CreateProject(t, "rot", false)
	img := harness.BuildImage(t, harness.Layer(t, "etc/motd", "key rotation\n"))
	if err := pushImage(context.Background(), a, a.Addr+"/rot/app:v1", img); err != nil {
		t.Fatalf("push: %v", err)
	}
	b := harness.StartCustoms(t, opts)
	customs := harness.CustomsBinary(t)
	admin := harness.NewClient(t)
	for _, s := range []*harness.Server{a, b} {
		admin.MustInput(t, s.Password+"\n", customs, "login", s.URL(), "-u", s.Username, "--password-stdin")
	}

	oldToken, oldKid := fetchToken(t, a)
	if _, kid := fetchToken(t, b); kid != oldKid {
		t.Fatalf("replicas sharing %s sign with different keys: %s and %s", dataDir, oldKid, kid)
	}
	for _, s := range []*harness.Server{a, b} {
		if code := bearerGet(t, s, oldToken); code != http.StatusOK {
			t.Fatalf("a token of the current key on %s: %d", s.Addr, code)
		}
	}

	// By hand: no restart, no token of the new key shown to either replica.
	handKid := writeKeyFile(t, filepath.Join(dataDir, "keys"))
	if handKid == oldKid {
		t.Fatal("the new key has the old key's id")
	}
	waitSigning(t, handKid, a, b)
	handToken, _ := fetchToken(t, a)
	for _, s := range []*harness.Server{a, b} {
		if code := bearerGet(t, s, oldToken); code != http.StatusOK {
			t.Errorf("a token issued before the rotation, on %s: %d (tokens in flight must keep working)", s.Addr, code)
		}
	}

	// Through the API, on a: a non-administrator is refused.
	const devPW = "rotation-dev-pw-1"
	admin.MustInput(t, devPW+"\n", customs, "user", "create", "dev", "--server", a.URL(), "--password-stdin")
	dev := harness.NewClient(t)
	dev.MustInput(t, devPW+"\n", customs, "login", a.URL(), "-u", "dev", "--password-stdin")
	if r := dev.Run(t, customs, "auth", "rotate-key", "--server", a.URL()); r.Err == nil || !strings.Contains(r.Stderr, "administrators") {
		t.Errorf("rotate-key by a non-administrator:\n%s", r)
	}
	if code := apiStatus(t, a, http.MethodGet, "/api/v1/system/token-keys", "dev", devPW); code != http.StatusForbidden {
		t.Errorf("token key list by a non-administrator: %d, want 403", code)
	}
	if code := apiStatus(t, a, http.MethodPost, "/api/v1/system/token-keys:rotate", "dev", devPW); code != http.StatusForbidden {
		t.Errorf("rotation by a non-administrator: %d, want 403", code)
	}
	if _, kid := fetchToken(t, a); kid != handKid {
		t.Fatalf("a refused rotation changed the signing key to %s", kid)
	}

	out := admin.Must(t, customs, "auth", "rotate-key", "--server", a.URL())
	// "new signing key <kid> (previous <kid>)"
	f := strings.Fields(out)
	if len(f) != 6 || f[0] != "new" || f[4] != "(previous" || strings.TrimSuffix(f[5], ")") != handKid {
		t.Fatalf("customs auth rotate-key printed %q; want the new key id and previous %s", out, handKid)
	}
	apiKid := f[3]
	if _, kid := fetchToken(t, a); kid != apiKid {
		t.Fatalf("right after the rotation a signs with %s, want the new key %s", kid, apiKid)
	}
	waitSigning(t, apiKid, b)
	for _, s := range []*harness.Server{a, b} {
		for name, tok := range map[string]string{"first": oldToken, "hand-rotated": handToken} {
			if code := bearerGet(t, s, tok); code != http.StatusOK {
				t.Errorf("a token of the %s key, on %s after the API rotation: %d", name, s.Addr, code)
			}
		}
		// customs login's refresh token, issued by the first key.
		if r := admin.Run(t, customs, "user", "whoami", "--server", s.URL()); r.Err != nil || !strings.Contains(r.Stdout, "admin") {
			t.Errorf("customs login credential from before the rotations, on %s:\n%s", s.Addr, r)
		}
	}

	// The list: three keys, the API one signing, no key material.
	listOut := admin.Must(t, customs, "auth", "keys", "--json", "--server", b.URL())
	var list struct {
		Signing string `json:"signing"`
		Keys    []struct {
			ID      string `json:"id"`
			File    string `json:"file"`
			Signing bool   `json:"signing"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(listOut), &list); err != nil {
		t.Fatalf("customs auth keys --json: %v\n%s", err, listOut)
	}
	if list.Signing != apiKid || len(list.Keys) != 3 || strings.Contains(listOut, "PRIVATE") {
		t.Errorf("customs auth keys --json on b: want 3 keys, %s signing, no key material:\n%s", apiKid, listOut)
	}
	table := admin.Must(t, customs, "auth", "keys", "--server", a.URL())
	for _, kid := range []string{oldKid, handKid, apiKid} {
		if !strings.Contains(table, kid) {
			t.Errorf("customs auth keys lacks %s:\n%s", kid, table)
		}
	}
	// Retiring keys younger than the refresh-token lifetime is refused,
	// before rotating; the API refuses it too. An old enough age rotates
	// and removes nothing (every key here is younger).
	if r := admin.Run(t, customs, "auth", "rotate-key", "--retire-older-than", "1h", "--server", a.URL()); r.Err == nil || !strings.Contains(r.Stderr, "refusing") {
		t.Errorf("rotate-key --retire-older-than 1h:\n%s", r)
	}
	if _, kid := fetchToken(t, a); kid != apiKid {
		t.Errorf("a refused rotate-key --retire-older-than rotated the key: %s signs", kid)
	}
	out = admin.Must(t, customs, "auth", "rotate-key", "--retire-older-than", "91d", "--server", a.URL())
	if strings.Contains(out, "removed") {
		t.Errorf("rotate-key --retire-older-than 91d removed keys of today:\n%s", out)
	}
	_, retireKid := fetchToken(t, a)
	if retireKid == apiKid {
		t.Errorf("rotate-key --retire-older-than 91d did not rotate:\n%s", out)
	}

	// The audit trail: the refusal and the rotations, by whom.
	var events []auditEvent
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := admin.Must(t, customs, "audit", "query", "--server", a.URL(), "--action", "token_key", "--output", "json")
		var page struct {
			Events []auditEvent `json:"events"`
		}
		if err := json.Unmarshal([]byte(out), &page); err != nil {
			t.Fatalf("audit query output: %v\n%s", err, out)
		}
		events = page.Events
		if len(events) >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	want := map[string]bool{
		"dev token_key.rotate denied system/token-keys":                 false,
		"admin token_key.rotate success system/token-keys/" + apiKid:    false,
		"admin token_key.rotate success system/token-keys/" + retireKid: false,
	}
	for _, e := range events {
		if k := e.Actor + " " + e.Action + " " + e.Outcome + " " + e.Resource; k != "" {
			if _, ok := want[k]; ok {
				want[k] = true
			}
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("audit trail lacks %q: %+v", k, events)
		}
	}

	// A forged token naming the new key id but signed by another key is
	// refused: the reload trusts only the files.
	newToken, _ := fetchToken(t, a)
	forged := strings.Split(newToken, ".")
	forged[2] = base64.RawURLEncoding.EncodeToString(make([]byte, 64))
	if code := bearerGet(t, b, strings.Join(forged, ".")); code != http.StatusUnauthorized {
		t.Errorf("a token with a wrong signature: %d, want 401", code)
	}

	c := harness.NewClient(t)
	for _, s := range []*harness.Server{a, b} {
		c.MustInput(t, s.Password, "crane", "auth", "login", s.Addr, "-u", s.Username, "--password-stdin")
		c.Must(t, "crane", "manifest", "--insecure", s.Addr+"/rot/app:v1")
	}
}

// waitSigning waits, up to 45 s (the servers check their key directory
// every 30 s), until each server issues tokens signed by kid, asking only
// for tokens (never showing a token of kid, which would make a server
// reload on its own).
func waitSigning(t *testing.T, kid string, servers ...*harness.Server) {
	t.Helper()
	start := time.Now()
	for _, s := range servers {
		for {
			_, got := fetchToken(t, s)
			if got == kid {
				t.Logf("%s signs with the new key %s after %s", s.Addr, kid, time.Since(start).Round(time.Millisecond))
				break
			}
			if time.Since(start) > 45*time.Second {
				t.Fatalf("%s still signs with %s %s after the new key %s was written", s.Addr, got, time.Since(start).Round(time.Second), kid)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
}

// apiStatus sends an API request with Basic credentials and returns the
// status.
func apiStatus(t *testing.T, srv *harness.Server, method, path, user, pw string) int {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, pw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// fetchToken asks srv's token service, as its administrator, for pull
// access to rot/app and returns the token and the key id in its header.
func fetchToken(t *testing.T, srv *harness.Server) (token, kid string) {
	t.Helper()
	q := url.Values{"service": {"customs"}, "scope": {"repository:rot/app:pull"}}
	req, err := http.NewRequest(http.MethodGet, srv.URL()+"/service/token?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(srv.Username, srv.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.Token == "" {
		t.Fatalf("token from %s: %s, %v", srv.Addr, resp.Status, err)
	}
	head, _, _ := strings.Cut(body.Token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil || h.Kid == "" || h.Alg != "ES256" {
		t.Fatalf("token header %s: %v", raw, err)
	}
	return body.Token, h.Kid
}

// bearerGet GETs rot/app:v1's manifest from srv with token and returns the
// status.
func bearerGet(t *testing.T, srv *harness.Server, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL()+"/v2/rot/app/manifests/v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// writeKeyFile writes a new P-256 private key (PKCS#8, mode 0600) into the
// key directory under a name that sorts after the generated ones, as an
// operator rotating the key would, and returns its key id.
func writeKeyFile(t *testing.T, dir string) string {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := auth.KeyID(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("key-%s-rotated.pem", time.Now().UTC().Format("20060102T150405.000000000Z"))
	tmp := filepath.Join(dir, name+".partial") // not *.pem until complete
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
	return kid
}
