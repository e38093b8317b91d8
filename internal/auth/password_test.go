package auth

import (
	"strings"
	"testing"

	"github.com/customs-dev/customs/internal/apperr"
)

func TestHashPasswordRoundTrip(t *testing.T) {
	h, err := HashPassword("correct horse", fastParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q is not a PHC argon2id string with the given parameters", h)
	}
	h2, _ := HashPassword("correct horse", fastParams)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	tests := []struct {
		name     string
		password string
		want     bool
	}{
		{"right password", "correct horse", true},
		{"wrong password", "correct horsE", false},
		{"empty password", "", false},
		{"prefix", "correct", false},
		{"suffix added", "correct horse ", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, rehash, err := VerifyPassword(h, tc.password, fastParams)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.want {
				t.Fatalf("VerifyPassword = %v, want %v", ok, tc.want)
			}
			if rehash {
				t.Fatal("needsRehash with unchanged parameters")
			}
		})
	}
}

func TestVerifyPasswordNeedsRehash(t *testing.T) {
	h, err := HashPassword("pw", fastParams)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want PasswordParams
		re   bool
	}{
		{"same", fastParams, false},
		{"more memory", PasswordParams{Memory: 128, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, true},
		{"more time", PasswordParams{Memory: 64, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}, true},
		{"more threads", PasswordParams{Memory: 64, Time: 1, Threads: 2, SaltLen: 16, KeyLen: 32}, true},
		{"longer salt", PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 32, KeyLen: 32}, true},
		{"shorter salt wanted", PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 8, KeyLen: 32}, false},
		{"other key length", PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 64}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, re, err := VerifyPassword(h, "pw", tc.want)
			if err != nil || !ok {
				t.Fatalf("VerifyPassword = %v, %v; want ok", ok, err)
			}
			if re != tc.re {
				t.Fatalf("needsRehash = %v, want %v", re, tc.re)
			}
			if ok, re, _ := VerifyPassword(h, "wrong", tc.want); ok || re {
				t.Fatalf("wrong password: ok=%v needsRehash=%v, want false, false", ok, re)
			}
		})
	}
}

func TestVerifyPasswordMalformed(t *testing.T) {
	good, _ := HashPassword("pw", fastParams)
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	tests := []struct {
		name, hash string
	}{
		{"empty", ""},
		{"bcrypt", "$2a$10$abcdefghijklmnopqrstuv"},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"old version", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key},
		{"missing version", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key},
		{"params out of order", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key},
		{"too few params", "$argon2id$v=19$m=64,t=1$" + salt + "$" + key},
		{"leading zero", "$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key},
		{"negative", "$argon2id$v=19$m=-64,t=1,p=1$" + salt + "$" + key},
		{"zero time", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key},
		{"zero threads", "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key},
		{"threads overflow", "$argon2id$v=19$m=64,t=1,p=256$" + salt + "$" + key},
		{"huge memory", "$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key},
		{"huge time", "$argon2id$v=19$m=64,t=100000,p=1$" + salt + "$" + key},
		{"padded salt", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key},
		{"bad base64", "$argon2id$v=19$m=64,t=1,p=1$!!!!$" + key},
		{"short salt", "$argon2id$v=19$m=64,t=1,p=1$YWJj$" + key},
		{"short key", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$YWJj"},
		{"extra field", good + "$x"},
		{"no leading dollar", strings.TrimPrefix(good, "$")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, _, err := VerifyPassword(tc.hash, "pw", fastParams)
			if ok {
				t.Fatal("malformed hash accepted")
			}
			if apperr.Code(err) != apperr.EINTERNAL {
				t.Fatalf("error %v, want EINTERNAL", err)
			}
		})
	}
}

func TestHashPasswordRejectsBadParams(t *testing.T) {
	for name, p := range map[string]PasswordParams{
		"zero":       {},
		"no threads": {Memory: 64, Time: 1, SaltLen: 16, KeyLen: 32},
		"tiny salt":  {Memory: 64, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32},
		"tiny key":   {Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 4},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := HashPassword("pw", p); apperr.Code(err) != apperr.EINVALID {
				t.Fatalf("error %v, want EINVALID", err)
			}
		})
	}
}

func TestDefaultPasswordParamsValid(t *testing.T) {
	if err := DefaultPasswordParams().validate(); err != nil {
		t.Fatal(err)
	}
}

func FuzzParsePHC(f *testing.F) {
	good, _ := HashPassword("pw", fastParams)
	f.Add(good)
	f.Add("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("$argon2id$v=19$m=1,t=1,p=1$$")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := parsePHC(s)
		if err != nil {
			return
		}
		if p.validate() != nil {
			t.Fatalf("parsePHC accepted out-of-bounds parameters %+v", p)
		}
		// What parses re-encodes to the same string: the format is canonical.
		if enc := encodePHC(p, salt, key); enc != s {
			t.Fatalf("re-encoded %q, want %q", enc, s)
		}
	})
}
