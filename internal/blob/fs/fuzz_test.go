package fs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
)

// Upload ids come from clients (URLs): whatever the string, Upload and
// DeleteUpload find nothing and touch nothing outside the store.
func FuzzUploadID(f *testing.F) {
	for _, s := range []string{"", "..", "../../x", "0123456789abcdef0123456789abcdef", "0123456789ABCDEF0123456789abcdef",
		"0123456789abcdef0123456789abcde/", "/tmp", "a\x00b", strings.Repeat("a", 32)} {
		f.Add(s)
	}
	dir := f.TempDir()
	outside := filepath.Join(dir, "outside")
	os.WriteFile(outside, []byte("keep"), 0o600)
	s, err := New(filepath.Join(dir, "store"), Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if validID(id) {
			if len(id) != idLen || strings.ContainsAny(id, "/\\.\x00") || filepath.Base(s.uploadDir(id)) != id {
				t.Fatalf("validID accepted %q", id)
			}
		}
		if _, err := s.Upload(context.Background(), id); apperr.Code(err) != apperr.ENOTFOUND {
			t.Fatalf("Upload(%q) = %v, want ENOTFOUND", id, err)
		}
		if err := s.DeleteUpload(context.Background(), id); apperr.Code(err) != apperr.ENOTFOUND {
			t.Fatalf("DeleteUpload(%q) = %v, want ENOTFOUND", id, err)
		}
		if b, err := os.ReadFile(outside); err != nil || string(b) != "keep" {
			t.Fatalf("file outside the store changed: %v", err)
		}
	})
}

// Digests come from clients: malformed ones are DIGEST_INVALID and never
// name a path outside blobs/.
func FuzzDigest(f *testing.F) {
	for _, s := range []string{"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "sha256:../..", "sha512:", ":", "md5:00"} {
		f.Add(s)
	}
	s, err := New(f.TempDir(), Options{})
	if err != nil {
		f.Fatal(err)
	}
	blobs := filepath.Join(s.root, "blobs") + string(filepath.Separator)
	f.Fuzz(func(t *testing.T, in string) {
		d := digest.Digest(in)
		_, err := s.Stat(context.Background(), d)
		switch apperr.Code(err) {
		case apperr.ENOTFOUND:
			if p := s.blobPath(d); !strings.HasPrefix(p, blobs) || filepath.Clean(p) != p {
				t.Fatalf("digest %q maps to %s", in, p)
			}
		case apperr.EINVALID:
			if apperr.Detail(err) != "DIGEST_INVALID" {
				t.Fatalf("Stat(%q) = %v, want DIGEST_INVALID", in, err)
			}
		default:
			t.Fatalf("Stat(%q) = %v", in, err)
		}
	})
}

// State files are read back after crashes: no input panics, and whatever
// is accepted round-trips.
func FuzzDecodeState(f *testing.F) {
	h := digest.SHA256.Hash()
	h.Write([]byte("12345"))
	hb, _ := marshalHash(h)
	good, _ := encodeState(state{Alg: digest.SHA256, Size: 5, Hash: hb})
	f.Add(good)
	f.Add([]byte(`{"alg":"sha512","size":0,"hash":""}`))
	f.Add([]byte(`{"alg":"md5"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, h, err := decodeState(b)
		if err != nil {
			return
		}
		if h == nil || st.Size < 0 || !supported(st.Alg) {
			t.Fatalf("accepted %q as %+v", b, st)
		}
		again, err := encodeState(st)
		if err != nil {
			t.Fatal(err)
		}
		st2, _, err := decodeState(again)
		if err != nil || st2.Size != st.Size || st2.Alg != st.Alg || !bytes.Equal(st2.Hash, st.Hash) {
			t.Fatalf("round trip of %+v: %+v, %v", st, st2, err)
		}
	})
}
