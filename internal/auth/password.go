package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/customs-dev/customs/internal/apperr"
)

// PasswordParams are the argon2id cost parameters of new password hashes.
// Hashes made with other parameters still verify; VerifyPassword reports
// that they need rehashing so callers can upgrade them on the next login.
type PasswordParams struct {
	Memory  uint32 // KiB
	Time    uint32 // iterations
	Threads uint8
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultPasswordParams returns OWASP's argon2id recommendation (19 MiB, 2
// iterations, 1 thread): a login costs tens of milliseconds without letting a
// burst of logins exhaust a small server's memory.
func DefaultPasswordParams() PasswordParams {
	return PasswordParams{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Bounds on the parameters accepted from an encoded hash, so that a corrupt
// or hostile hash in the database cannot make one login allocate gigabytes
// or run for minutes.
const (
	maxMemoryKiB = 1 << 20 // 1 GiB
	maxTime      = 64
	minSaltLen   = 8
	maxSaltLen   = 1024
	minKeyLen    = 16
	maxKeyLen    = 1024
	maxEncodedPH = 4096
)

// validate reports whether p is within the accepted bounds.
func (p PasswordParams) validate() error {
	switch {
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemoryKiB:
		return fmt.Errorf("argon2id memory %d KiB out of range", p.Memory)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("argon2id time %d out of range", p.Time)
	case p.Threads < 1:
		return errors.New("argon2id needs at least one thread")
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("argon2id salt length %d out of range", p.SaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("argon2id key length %d out of range", p.KeyLen)
	}
	return nil
}

// HashPassword returns password hashed with argon2id under params, in PHC
// string format: $argon2id$v=19$m=<KiB>,t=<time>,p=<threads>$<salt>$<hash>
// with unpadded standard base64 salt and hash.
func HashPassword(password string, params PasswordParams) (string, error) {
	if err := params.validate(); err != nil {
		return "", apperr.Wrap(err, apperr.EINVALID, "invalid password hashing parameters")
	}
	salt := make([]byte, params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", apperr.Wrap(err, apperr.EINTERNAL, "cannot generate salt")
	}
	key := argon2.IDKey([]byte(password), salt, params.Time, params.Memory, params.Threads, params.KeyLen)
	return encodePHC(params, salt, key), nil
}

// VerifyPassword reports whether password matches the encoded hash, comparing
// in constant time. needsRehash is true when the password matched but the
// hash was made with parameters other than want. A malformed hash is an
// EINTERNAL error (the stored data is broken, not the caller's input).
func VerifyPassword(encoded, password string, want PasswordParams) (ok, needsRehash bool, err error) {
	params, salt, key, err := parsePHC(encoded)
	if err != nil {
		return false, false, apperr.Wrap(err, apperr.EINTERNAL, "stored password hash is malformed")
	}
	got := argon2.IDKey([]byte(password), salt, params.Time, params.Memory, params.Threads, uint32(len(key)))
	if subtle.ConstantTimeCompare(got, key) != 1 {
		return false, false, nil
	}
	rehash := params.Memory != want.Memory || params.Time != want.Time || params.Threads != want.Threads ||
		uint32(len(salt)) < want.SaltLen || uint32(len(key)) != want.KeyLen
	return true, rehash, nil
}

var b64 = base64.RawStdEncoding

func encodePHC(p PasswordParams, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// parsePHC decodes an argon2id PHC string. It accepts exactly the format
// encodePHC writes (the fields in that order, version 19) and parameters
// within the package's bounds.
func parsePHC(s string) (p PasswordParams, salt, key []byte, err error) {
	if len(s) > maxEncodedPH {
		return p, nil, nil, errors.New("encoded hash too long")
	}
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" {
		return p, nil, nil, errors.New("not a PHC string")
	}
	if parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("unsupported algorithm %q", parts[1])
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("unsupported argon2 version %q", parts[2])
	}
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return p, nil, nil, errors.New("want parameters m, t and p")
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(fields[i], name+"=")
		if !ok {
			return p, nil, nil, fmt.Errorf("want parameter %s in position %d", name, i+1)
		}
		n, perr := strconv.ParseUint(v, 10, 32)
		if perr != nil || (len(v) > 1 && v[0] == '0') {
			return p, nil, nil, fmt.Errorf("bad value for parameter %s", name)
		}
		vals[i] = n
	}
	if vals[2] > 255 {
		return p, nil, nil, errors.New("parameter p out of range")
	}
	if salt, err = b64.Strict().DecodeString(parts[4]); err != nil {
		return p, nil, nil, errors.New("bad salt encoding")
	}
	if key, err = b64.Strict().DecodeString(parts[5]); err != nil {
		return p, nil, nil, errors.New("bad hash encoding")
	}
	p = PasswordParams{Memory: uint32(vals[0]), Time: uint32(vals[1]), Threads: uint8(vals[2]),
		SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	if err := p.validate(); err != nil {
		return PasswordParams{}, nil, nil, err
	}
	return p, salt, key, nil
}
