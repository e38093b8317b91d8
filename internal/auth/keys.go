package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
)

// KeyStore holds the ES256 (ECDSA P-256) keys tokens are signed and verified
// with. Implementations are safe for concurrent use.
type KeyStore interface {
	// SigningKey returns the key new tokens are signed with.
	SigningKey() (SigningKey, error)
	// PublicKey returns the verification key whose id is kid, or an
	// ENOTFOUND error.
	PublicKey(kid string) (*ecdsa.PublicKey, error)
}

// SigningKey is a P-256 private key and its key id (the "kid" header of the
// tokens it signs).
type SigningKey struct {
	ID  string
	Key *ecdsa.PrivateKey
}

// KeyID returns the RFC 7638 JWK thumbprint of a P-256 public key, the key id
// customs uses for its token signing keys.
func KeyID(pub *ecdsa.PublicKey) (string, error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return "", errors.New("not a P-256 public key")
	}
	raw, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	jwk := `{"crv":"P-256","kty":"EC","x":"` + enc.EncodeToString(raw[1:33]) + `","y":"` + enc.EncodeToString(raw[33:65]) + `"}`
	sum := sha256.Sum256([]byte(jwk))
	return enc.EncodeToString(sum[:]), nil
}

// KeyDirOptions configures a KeyDir.
type KeyDirOptions struct {
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
	// Logger receives key loading and rotation events; default discards.
	Logger *slog.Logger
	// ReloadInterval is the least time between two reloads of the directory
	// triggered by a token whose key id is unknown; default 10s, negative
	// disables such reloads.
	ReloadInterval time.Duration
}

// KeyDir is a KeyStore kept as PEM files in a directory.
//
// Every "*.pem" file holds one P-256 key: a private key ("EC PRIVATE KEY" or
// PKCS#8 "PRIVATE KEY") or a public key only ("PUBLIC KEY"). All of them
// verify tokens; the private key whose file name sorts last signs new ones.
// OpenKeyDir creates the directory (0700) and a first key (0600) when there is
// none.
//
// Rotation: call Rotate (or place a new private key file whose name sorts
// after the others) and Reload. New tokens are then signed with the new key
// while tokens signed by older keys keep verifying as long as their files
// stay. Remove an old key file (or replace it with its public key) only once
// the longest-lived token it signed has expired: the refresh-token lifetime
// after it stopped signing (Prune does so). With several replicas sharing
// the directory, each runs Watch, which reloads the directory when its
// listing changes, and a replica that sees a token with an unknown key id
// reloads at once (at most once per ReloadInterval), so a rotation done on
// one replica is picked up by all.
type KeyDir struct {
	dir            string
	clock          func() time.Time
	logger         *slog.Logger
	reloadInterval time.Duration

	mu      sync.RWMutex
	public  map[string]*ecdsa.PublicKey
	signing SigningKey

	reloadMu   sync.Mutex
	lastReload time.Time
}

// OpenKeyDir opens (creating if needed) the key directory dir and loads its
// keys. A file that is not a P-256 key is an error naming the file.
func OpenKeyDir(dir string, opts KeyDirOptions) (*KeyDir, error) {
	k := &KeyDir{dir: dir, clock: opts.Clock, logger: opts.Logger, reloadInterval: opts.ReloadInterval}
	if k.clock == nil {
		k.clock = time.Now
	}
	if k.logger == nil {
		k.logger = slog.New(slog.DiscardHandler)
	}
	if k.reloadInterval == 0 {
		k.reloadInterval = 10 * time.Second
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, apperr.Wrap(err, apperr.EINTERNAL, "cannot create key directory")
	}
	files, err := k.pemFiles()
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		if _, err := k.generate(); err != nil {
			return nil, err
		}
	}
	if err := k.Reload(); err != nil {
		return nil, err
	}
	return k, nil
}

// SigningKey returns the private key whose file name sorts last.
func (k *KeyDir) SigningKey() (SigningKey, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.signing, nil
}

// PublicKey returns the key with id kid. If it is unknown, it reloads the
// directory (rate-limited by ReloadInterval) and looks again.
func (k *KeyDir) PublicKey(kid string) (*ecdsa.PublicKey, error) {
	if pub := k.lookup(kid); pub != nil {
		return pub, nil
	}
	if k.reloadInterval > 0 {
		k.reloadMu.Lock()
		due := k.clock().Sub(k.lastReload) >= k.reloadInterval
		k.reloadMu.Unlock()
		if due {
			if err := k.Reload(); err != nil {
				k.logger.Warn("reloading token keys failed", "dir", k.dir, "err", err)
			}
			if pub := k.lookup(kid); pub != nil {
				return pub, nil
			}
		}
	}
	return nil, apperr.Errorf(apperr.ENOTFOUND, "unknown token signing key")
}

func (k *KeyDir) lookup(kid string) *ecdsa.PublicKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.public[kid]
}

// Reload re-reads the directory. On error the keys loaded before stay in use.
func (k *KeyDir) Reload() error {
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	k.lastReload = k.clock()

	files, err := k.pemFiles()
	if err != nil {
		return err
	}
	public := make(map[string]*ecdsa.PublicKey, len(files))
	var signing SigningKey
	for _, name := range files {
		priv, pub, err := readKeyFile(filepath.Join(k.dir, name))
		if err != nil {
			return apperr.Wrap(err, apperr.EINTERNAL, "cannot load token key "+name)
		}
		kid, err := KeyID(pub)
		if err != nil {
			return apperr.Wrap(err, apperr.EINTERNAL, "cannot load token key "+name)
		}
		public[kid] = pub
		if priv != nil {
			if fi, err := os.Stat(filepath.Join(k.dir, name)); err == nil && fi.Mode().Perm()&0o077 != 0 {
				k.logger.Warn("token private key is readable by others: chmod 600", "file", filepath.Join(k.dir, name))
			}
			signing = SigningKey{ID: kid, Key: priv} // files are sorted: the last one wins
		}
	}
	if signing.Key == nil {
		return apperr.Errorf(apperr.EINTERNAL, "no private key in token key directory %s", k.dir)
	}
	k.mu.Lock()
	changed := k.signing.ID != signing.ID || len(k.public) != len(public)
	k.public, k.signing = public, signing
	k.mu.Unlock()
	if changed {
		k.logger.Info("token keys loaded", "dir", k.dir, "keys", len(public), "signing_kid", signing.ID)
	}
	return nil
}

// Rotate writes a new private key whose file name sorts after the existing
// ones, reloads, and returns its key id. It fails if another file still sorts
// after the new one (the new key would not sign).
func (k *KeyDir) Rotate() (string, error) {
	kid, err := k.generate()
	if err != nil {
		return "", err
	}
	if err := k.Reload(); err != nil {
		return "", err
	}
	if s, _ := k.SigningKey(); s.ID != kid {
		return "", apperr.Errorf(apperr.ECONFLICT, "new key %s written, but a key file in %s sorts after it and keeps signing", kid, k.dir)
	}
	return kid, nil
}

// pemFiles lists the directory's *.pem regular files in lexical order.
func (k *KeyDir) pemFiles() ([]string, error) {
	entries, err := os.ReadDir(k.dir)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.EINTERNAL, "cannot read key directory")
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".pem") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// generate writes a new P-256 private key to key-<UTC time>-<kid prefix>.pem,
// atomically and with mode 0600, and returns its key id.
func (k *KeyDir) generate() (string, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", apperr.Wrap(err, apperr.EINTERNAL, "cannot generate token key")
	}
	kid, err := KeyID(&priv.PublicKey)
	if err != nil {
		return "", apperr.Wrap(err, apperr.EINTERNAL, "cannot generate token key")
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", apperr.Wrap(err, apperr.EINTERNAL, "cannot encode token key")
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	name := fmt.Sprintf("key-%s-%s.pem", k.clock().UTC().Format("20060102T150405.000000000Z"), kid[:8])
	if err := writeFileAtomic(k.dir, name, data); err != nil {
		return "", apperr.Wrap(err, apperr.EINTERNAL, "cannot write token key")
	}
	k.logger.Info("token signing key created", "file", filepath.Join(k.dir, name), "kid", kid)
	return kid, nil
}

// readKeyFile reads one PEM key; priv is nil for a public-key-only file.
func readKeyFile(path string) (priv *ecdsa.PrivateKey, pub *ecdsa.PublicKey, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "EC PRIVATE KEY":
		priv, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		var key any
		if key, err = x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
			var ok bool
			if priv, ok = key.(*ecdsa.PrivateKey); !ok {
				err = fmt.Errorf("PKCS#8 key is a %T, want ECDSA P-256", key)
			}
		}
	case "PUBLIC KEY":
		var key any
		if key, err = x509.ParsePKIXPublicKey(block.Bytes); err == nil {
			var ok bool
			if pub, ok = key.(*ecdsa.PublicKey); !ok {
				err = fmt.Errorf("public key is a %T, want ECDSA P-256", key)
			}
		}
	default:
		err = fmt.Errorf("unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return nil, nil, err
	}
	if priv != nil {
		pub = &priv.PublicKey
	}
	if pub.Curve != elliptic.P256() {
		return nil, nil, errors.New("key is not on curve P-256 (ES256)")
	}
	return priv, pub, nil
}

// writeFileAtomic writes data to dir/name with mode 0600 through a temporary
// file, fsyncing the file and the directory so the key survives a crash
// whole or not at all.
func writeFileAtomic(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, ".tmp-key-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err = f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	target := filepath.Join(dir, name)
	if _, statErr := os.Lstat(target); !errors.Is(statErr, fs.ErrNotExist) {
		return fmt.Errorf("%s already exists", target)
	}
	if err = os.Rename(f.Name(), target); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// KeyInfo describes one key file of a KeyDir; it never holds key material.
type KeyInfo struct {
	// ID is the key id (the "kid" header of the tokens it signs).
	ID string `json:"id"`
	// File is the file's name within the key directory.
	File string `json:"file"`
	// Private says whether the file holds a private key (it can sign);
	// false for a public-key-only file (it only verifies).
	Private bool `json:"private"`
	// Signing says whether this key signs new tokens.
	Signing bool `json:"signing"`
	// Modified is the file's modification time (a key written by Rotate:
	// its creation time).
	Modified time.Time `json:"modified"`
	// Retired is when the key stopped signing, as far as the files tell:
	// the modification time of the first private key file sorting after
	// it (or its own, if later). Zero for the signing key and for a key
	// no private key sorts after: they may still sign.
	Retired time.Time `json:"retired,omitzero"`
}

// Keys lists the directory's key files as they are now, in file name order;
// Signing marks the key that signs since the last Reload (none, if its file
// was removed since).
func (k *KeyDir) Keys() ([]KeyInfo, error) {
	files, err := k.pemFiles()
	if err != nil {
		return nil, err
	}
	k.mu.RLock()
	signing := k.signing.ID
	k.mu.RUnlock()
	out := make([]KeyInfo, 0, len(files))
	for _, name := range files {
		path := filepath.Join(k.dir, name)
		priv, pub, err := readKeyFile(path)
		if err != nil {
			return nil, apperr.Wrap(err, apperr.EINTERNAL, "cannot load token key "+name)
		}
		kid, err := KeyID(pub)
		if err != nil {
			return nil, apperr.Wrap(err, apperr.EINTERNAL, "cannot load token key "+name)
		}
		fi, err := os.Stat(path)
		if err != nil {
			return nil, apperr.Wrap(err, apperr.EINTERNAL, "cannot stat token key "+name)
		}
		out = append(out, KeyInfo{ID: kid, File: name, Private: priv != nil, Signing: priv != nil && kid == signing, Modified: fi.ModTime().UTC()})
	}
	// A key stopped signing when a private key sorting after it was
	// written; walk from the last file back, remembering the nearest one.
	var next time.Time
	for i := len(out) - 1; i >= 0; i-- {
		if !out[i].Signing && !next.IsZero() {
			out[i].Retired = next
			if out[i].Modified.After(next) {
				out[i].Retired = out[i].Modified
			}
		}
		if out[i].Private {
			next = out[i].Modified
		}
	}
	return out, nil
}

// Prune removes the key files retired (see KeyInfo.Retired) before cutoff
// and reloads; the signing key, and any key no private key sorts after,
// are never removed. It returns what it removed. Tokens signed by a
// removed key stop verifying at once: pass a cutoff at least the longest
// token lifetime (the refresh-token lifetime) ago. Prune refuses
// (EINVALID) a cutoff later than now minus minAge.
func (k *KeyDir) Prune(cutoff time.Time, minAge time.Duration) ([]KeyInfo, error) {
	if limit := k.clock().Add(-minAge); cutoff.After(limit) {
		return nil, apperr.Errorf(apperr.EINVALID, "refusing to remove keys younger than %s (the refresh token lifetime): tokens they signed may still be in use", minAge)
	}
	keys, err := k.Keys()
	if err != nil {
		return nil, err
	}
	var removed []KeyInfo
	for _, ki := range keys {
		if ki.Signing || ki.Retired.IsZero() || !ki.Retired.Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(k.dir, ki.File)); err != nil {
			return removed, apperr.Wrap(err, apperr.EINTERNAL, "cannot remove token key "+ki.File)
		}
		k.logger.Info("token key removed", "file", filepath.Join(k.dir, ki.File), "kid", ki.ID)
		removed = append(removed, ki)
	}
	if len(removed) > 0 {
		if err := k.Reload(); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// listing is a cheap fingerprint of the directory's key files: names,
// sizes and modification times, without reading them.
func (k *KeyDir) listing() (string, error) {
	entries, err := os.ReadDir(k.dir)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".pem") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile: the next check sees it
		}
		fmt.Fprintf(&b, "%s\x00%d\x00%d\n", e.Name(), fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String(), nil
}

// Watch checks the directory every interval until ctx ends and reloads it
// when its listing (file names, sizes, modification times) changed, so a
// key file placed, replaced or removed by hand — or by Rotate on another
// replica sharing the directory — signs and verifies within one interval.
// A check reads the directory only; a failed reload is logged and the keys
// loaded before stay in use.
func (k *KeyDir) Watch(ctx context.Context, interval time.Duration) {
	last, _ := k.listing()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, err := k.listing()
		if err != nil {
			k.logger.Warn("checking token key directory failed", "dir", k.dir, "err", err)
			continue
		}
		if now == last {
			continue
		}
		if err := k.Reload(); err != nil {
			k.logger.Warn("reloading token keys failed; keeping the keys loaded before", "dir", k.dir, "err", err)
			continue // retried at the next check
		}
		last = now
	}
}
