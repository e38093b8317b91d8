// Package blobtest is the conformance suite every blob.Store implementation
// passes: it checks the contract written in package blob.
package blobtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/blob"

	_ "crypto/sha256" // registers digest.SHA256
	_ "crypto/sha512" // registers digest.SHA512
)

// Run runs the suite; open returns a new, empty store for each subtest.
// Subtests run in parallel, each on its own store.
func Run(t *testing.T, open func(t *testing.T) blob.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s blob.Store)
	}{
		{"PutOpenStat", testPutOpenStat},
		{"PutDigestMismatch", testPutDigestMismatch},
		{"PutInvalidDigest", testPutInvalidDigest},
		{"PutExisting", testPutExisting},
		{"PutBeforePublish", testPutBeforePublish},
		{"PutReaderFails", testPutReaderFails},
		{"PutConcurrentSameDigest", testPutConcurrent},
		{"OpenStatMissing", testMissing},
		{"Delete", testDelete},
		{"Walk", testWalk},
		{"UploadChunked", testUploadChunked},
		{"UploadResumeAfterClose", testUploadResume},
		{"UploadExclusive", testUploadExclusive},
		{"UploadBadIDs", testUploadBadIDs},
		{"UploadUnsupportedAlgorithm", testUploadUnsupportedAlg},
		{"AppendReaderFails", testAppendReaderFails},
		{"AppendLimit", testAppendLimit},
		{"AppendCanceledContext", testAppendCanceled},
		{"CommitMismatchKeepsSession", testCommitMismatch},
		{"CommitOtherAlgorithm", testCommitOtherAlg},
		{"CommitBeforePublish", testCommitBeforePublish},
		{"CommitExistingBlob", testCommitExisting},
		{"CommitEmpty", testCommitEmpty},
		{"ClosedSession", testClosedSession},
		{"Cancel", testCancel},
		{"DeleteUploadWhileHeld", testDeleteUploadHeld},
		{"Uploads", testUploads},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// Content returns n deterministic pseudo-random bytes derived from seed.
func Content(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// wantCode fails t unless err carries code (and detail, if not empty).
func wantCode(t *testing.T, err error, code, detail string) {
	t.Helper()
	if apperr.Code(err) != code {
		t.Fatalf("err = %v, want code %q", err, code)
	}
	if detail != "" && apperr.Detail(err) != detail {
		t.Fatalf("err = %v, want detail %q", err, detail)
	}
	var ae *apperr.Error
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v (%T), want an *apperr.Error", err, err)
	}
}

// mustPut stores b and returns its sha256 digest.
func mustPut(t *testing.T, s blob.Store, b []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(b)
	n, err := s.Put(context.Background(), d, bytes.NewReader(b), nil)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if n != int64(len(b)) {
		t.Fatalf("Put size = %d, want %d", n, len(b))
	}
	return d
}

// wantBlob fails t unless blob d holds exactly want.
func wantBlob(t *testing.T, s blob.Store, d digest.Digest, want []byte) {
	t.Helper()
	ctx := context.Background()
	info, err := s.Stat(ctx, d)
	if err != nil {
		t.Fatalf("Stat(%s): %v", d, err)
	}
	if info.Digest != d || info.Size != int64(len(want)) || info.ModTime.IsZero() {
		t.Fatalf("Stat = %+v, want digest %s size %d and a mod time", info, d, len(want))
	}
	r, err := s.Open(ctx, d)
	if err != nil {
		t.Fatalf("Open(%s): %v", d, err)
	}
	defer r.Close()
	if r.Size() != int64(len(want)) {
		t.Fatalf("Reader.Size = %d, want %d", r.Size(), len(want))
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read blob: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("blob %s content differs (got %d bytes, want %d)", d, len(got), len(want))
	}
}

// wantNoBlob fails t unless blob d is absent.
func wantNoBlob(t *testing.T, s blob.Store, d digest.Digest) {
	t.Helper()
	_, err := s.Stat(context.Background(), d)
	wantCode(t, err, apperr.ENOTFOUND, "")
}

// failingReader returns its bytes, then err.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

var errClientGone = errors.New("client went away")

func testPutOpenStat(t *testing.T, s blob.Store) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		alg  digest.Algorithm
		size int
	}{
		{"empty", digest.SHA256, 0},
		{"small", digest.SHA256, 100},
		{"several buffers, odd size", digest.SHA256, 3<<20 + 12345},
		{"sha512", digest.SHA512, 70000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Content(uint64(tc.size), tc.size)
			d := tc.alg.FromBytes(b)
			n, err := s.Put(ctx, d, bytes.NewReader(b), nil)
			if err != nil || n != int64(tc.size) {
				t.Fatalf("Put = %d, %v; want %d, nil", n, err, tc.size)
			}
			wantBlob(t, s, d, b)
		})
	}
	t.Run("seek", func(t *testing.T) {
		b := Content(7, 10000)
		d := mustPut(t, s, b)
		r, err := s.Open(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := r.Seek(9000, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 500)
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, b[9000:9500]) {
			t.Fatal("range read differs")
		}
		if end, err := r.Seek(0, io.SeekEnd); err != nil || end != 10000 {
			t.Fatalf("Seek end = %d, %v", end, err)
		}
	})
}

func testPutDigestMismatch(t *testing.T, s blob.Store) {
	b := Content(1, 5000)
	wrong := digest.FromBytes([]byte("something else"))
	called := false
	_, err := s.Put(context.Background(), wrong, bytes.NewReader(b), func(int64) error { called = true; return nil })
	wantCode(t, err, apperr.EINVALID, "DIGEST_INVALID")
	if called {
		t.Error("beforePublish called for mismatching content")
	}
	wantNoBlob(t, s, wrong)
	wantNoBlob(t, s, digest.FromBytes(b))
}

func testPutInvalidDigest(t *testing.T, s blob.Store) {
	ctx := context.Background()
	for _, d := range []digest.Digest{
		"",
		"sha256:",
		"sha256:abc",
		"sha256:../../../../etc/passwd",
		"sha256:" + digest.Digest("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"),
		"md5:d41d8cd98f00b204e9800998ecf8427e",
		"../sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"sha384:38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b",
	} {
		t.Run(string(d), func(t *testing.T) {
			_, err := s.Put(ctx, d, bytes.NewReader(nil), nil)
			wantCode(t, err, apperr.EINVALID, "DIGEST_INVALID")
			_, err = s.Stat(ctx, d)
			wantCode(t, err, apperr.EINVALID, "DIGEST_INVALID")
			_, err = s.Open(ctx, d)
			wantCode(t, err, apperr.EINVALID, "DIGEST_INVALID")
			err = s.Delete(ctx, d)
			wantCode(t, err, apperr.EINVALID, "DIGEST_INVALID")
		})
	}
}

func testPutExisting(t *testing.T, s blob.Store) {
	b := Content(2, 4096)
	d := mustPut(t, s, b)
	calls := 0
	n, err := s.Put(context.Background(), d, bytes.NewReader(b), func(int64) error { calls++; return nil })
	if err != nil || n != int64(len(b)) {
		t.Fatalf("second Put = %d, %v", n, err)
	}
	if calls != 1 {
		t.Errorf("beforePublish called %d times, want 1", calls)
	}
	wantBlob(t, s, d, b)
	// A mismatching Put under an existing digest leaves the blob alone.
	_, err = s.Put(context.Background(), d, bytes.NewReader(Content(3, 4096)), nil)
	wantCode(t, err, apperr.EINVALID, "DIGEST_INVALID")
	wantBlob(t, s, d, b)
}

func testPutBeforePublish(t *testing.T, s blob.Store) {
	ctx := context.Background()
	b := Content(4, 1<<20+1)
	d := digest.FromBytes(b)
	t.Run("error aborts", func(t *testing.T) {
		boom := apperr.Errorf(apperr.EDENIED, "quota exceeded")
		_, err := s.Put(ctx, d, bytes.NewReader(b), func(int64) error { return boom })
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want the beforePublish error", err)
		}
		wantNoBlob(t, s, d)
	})
	t.Run("called with size before visible", func(t *testing.T) {
		var got int64 = -1
		n, err := s.Put(ctx, d, bytes.NewReader(b), func(size int64) error {
			got = size
			if _, err := s.Stat(ctx, d); apperr.Code(err) != apperr.ENOTFOUND {
				return fmt.Errorf("blob visible before beforePublish returned (Stat err %v)", err)
			}
			return nil
		})
		if err != nil || n != int64(len(b)) || got != int64(len(b)) {
			t.Fatalf("Put = %d, %v; beforePublish size %d; want %d", n, err, got, len(b))
		}
		wantBlob(t, s, d, b)
	})
}

func testPutReaderFails(t *testing.T, s blob.Store) {
	b := Content(5, 2<<20)
	d := digest.FromBytes(b)
	_, err := s.Put(context.Background(), d, &failingReader{r: bytes.NewReader(b[:1<<20+7]), err: errClientGone}, nil)
	if err == nil {
		t.Fatal("Put succeeded with a failing reader")
	}
	if !errors.Is(err, errClientGone) {
		t.Errorf("err = %v, want it to wrap the reader's error", err)
	}
	wantNoBlob(t, s, d)
}

func testPutConcurrent(t *testing.T, s blob.Store) {
	b := Content(6, 300000)
	d := digest.FromBytes(b)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := s.Put(context.Background(), d, bytes.NewReader(b), nil)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Put: %v", err)
		}
	}
	wantBlob(t, s, d, b)
}

func testMissing(t *testing.T, s blob.Store) {
	ctx := context.Background()
	for _, d := range []digest.Digest{digest.FromString("absent"), digest.SHA512.FromString("absent")} {
		_, err := s.Open(ctx, d)
		wantCode(t, err, apperr.ENOTFOUND, "")
		_, err = s.Stat(ctx, d)
		wantCode(t, err, apperr.ENOTFOUND, "")
		wantCode(t, s.Delete(ctx, d), apperr.ENOTFOUND, "")
	}
}

func testDelete(t *testing.T, s blob.Store) {
	ctx := context.Background()
	keep := mustPut(t, s, []byte("keep"))
	d := mustPut(t, s, []byte("delete me"))
	if err := s.Delete(ctx, d); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNoBlob(t, s, d)
	wantCode(t, s.Delete(ctx, d), apperr.ENOTFOUND, "")
	wantBlob(t, s, keep, []byte("keep"))
	mustPut(t, s, []byte("delete me")) // can come back
	wantBlob(t, s, d, []byte("delete me"))
}

func testWalk(t *testing.T, s blob.Store) {
	ctx := context.Background()
	want := map[digest.Digest]int64{}
	for i := range 20 {
		b := Content(uint64(100+i), 10*i)
		d := mustPut(t, s, b)
		want[d] = int64(len(b))
	}
	b := []byte("sha512 blob")
	d512 := digest.SHA512.FromBytes(b)
	if _, err := s.Put(ctx, d512, bytes.NewReader(b), nil); err != nil {
		t.Fatal(err)
	}
	want[d512] = int64(len(b))
	// An unfinished upload is not a blob.
	u, err := s.NewUpload(ctx, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := u.Append(ctx, bytes.NewReader([]byte("pending")), 0); err != nil {
		t.Fatal(err)
	}

	got := map[digest.Digest]int64{}
	err = s.Walk(ctx, func(i blob.Info) error {
		if _, dup := got[i.Digest]; dup {
			return fmt.Errorf("%s walked twice", i.Digest)
		}
		if i.ModTime.IsZero() {
			return fmt.Errorf("%s has no mod time", i.Digest)
		}
		got[i.Digest] = i.Size
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("Walk found %d blobs, want %d", len(got), len(want))
	}
	for d, n := range want {
		if got[d] != n {
			t.Errorf("Walk: %s size %d, want %d", d, got[d], n)
		}
	}

	stop := errors.New("stop")
	calls := 0
	err = s.Walk(ctx, func(blob.Info) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("Walk with failing fn = %v after %d calls, want stop after 1", err, calls)
	}
}

// appendAll appends each chunk and checks the acknowledged size as it grows.
func appendAll(t *testing.T, u blob.Upload, chunks ...[]byte) {
	t.Helper()
	for _, c := range chunks {
		before := u.Info().Size
		n, err := u.Append(context.Background(), bytes.NewReader(c), 0)
		if err != nil || n != int64(len(c)) {
			t.Fatalf("Append = %d, %v; want %d, nil", n, err, len(c))
		}
		if got := u.Info().Size; got != before+int64(len(c)) {
			t.Fatalf("Size after Append = %d, want %d", got, before+int64(len(c)))
		}
	}
}

// wantNoUpload fails t unless session id is gone.
func wantNoUpload(t *testing.T, s blob.Store, id string) {
	t.Helper()
	_, err := s.Upload(context.Background(), id)
	wantCode(t, err, apperr.ENOTFOUND, "")
	err = s.Uploads(context.Background(), func(i blob.UploadInfo) error {
		if i.ID == id {
			return fmt.Errorf("Uploads still lists %s", id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testUploadChunked(t *testing.T, s blob.Store) {
	ctx := context.Background()
	b := Content(10, 5<<20+333)
	u, err := s.NewUpload(ctx, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	info := u.Info()
	if info.ID == "" || info.Size != 0 || info.StartedAt.IsZero() {
		t.Fatalf("new upload Info = %+v", info)
	}
	appendAll(t, u, b[:1], b[1:2<<20], b[2<<20:2<<20], b[2<<20:])
	d := digest.FromBytes(b)
	n, err := u.Commit(ctx, d, nil)
	if err != nil || n != int64(len(b)) {
		t.Fatalf("Commit = %d, %v", n, err)
	}
	if err := u.Close(); err != nil {
		t.Errorf("Close after Commit: %v", err)
	}
	wantBlob(t, s, d, b)
	wantNoUpload(t, s, info.ID)
}

func testUploadResume(t *testing.T, s blob.Store) {
	ctx := context.Background()
	b := Content(11, 100000)
	u, err := s.NewUpload(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	id := u.Info().ID
	appendAll(t, u, b[:40000])
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	u, err = s.Upload(ctx, id)
	if err != nil {
		t.Fatalf("Upload(%s) after Close: %v", id, err)
	}
	defer u.Close()
	if got := u.Info(); got.ID != id || got.Size != 40000 {
		t.Fatalf("resumed Info = %+v, want id %s size 40000", got, id)
	}
	appendAll(t, u, b[40000:])
	if _, err := u.Commit(ctx, digest.FromBytes(b), nil); err != nil {
		t.Fatalf("Commit after resume: %v", err)
	}
	wantBlob(t, s, digest.FromBytes(b), b)
}

func testUploadExclusive(t *testing.T, s blob.Store) {
	ctx := context.Background()
	u, err := s.NewUpload(ctx, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	id := u.Info().ID
	_, err = s.Upload(ctx, id)
	wantCode(t, err, apperr.ECONFLICT, "")
	appendAll(t, u, []byte("still mine"))
	u.Close()
	u2, err := s.Upload(ctx, id)
	if err != nil {
		t.Fatalf("Upload after Close: %v", err)
	}
	_, err = s.Upload(ctx, id)
	wantCode(t, err, apperr.ECONFLICT, "")
	if err := u2.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
}

func testUploadBadIDs(t *testing.T, s blob.Store) {
	ctx := context.Background()
	u, err := s.NewUpload(ctx, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	id := u.Info().ID
	for _, bad := range []string{
		"", ".", "..", "../../x", "/etc", id + "/../" + id, "../uploads/" + id, id + "/data",
		id + "\x00", "x" + id, id[1:], "%2e%2e", "00000000-0000-4000-8000-000000000000",
	} {
		t.Run(bad, func(t *testing.T) {
			_, err := s.Upload(ctx, bad)
			if c := apperr.Code(err); c != apperr.ENOTFOUND && c != apperr.EINVALID {
				t.Fatalf("Upload(%q) = %v, want ENOTFOUND or EINVALID", bad, err)
			}
			err = s.DeleteUpload(ctx, bad)
			if c := apperr.Code(err); c != apperr.ENOTFOUND && c != apperr.EINVALID {
				t.Fatalf("DeleteUpload(%q) = %v, want ENOTFOUND or EINVALID", bad, err)
			}
		})
	}
	// The real session survived all of that.
	appendAll(t, u, []byte("ok"))
}

func testUploadUnsupportedAlg(t *testing.T, s blob.Store) {
	for _, alg := range []digest.Algorithm{"md5", "sha384", "SHA256", "../x"} {
		_, err := s.NewUpload(context.Background(), alg)
		wantCode(t, err, apperr.EINVALID, "DIGEST_INVALID")
	}
}

func testAppendReaderFails(t *testing.T, s blob.Store) {
	ctx := context.Background()
	b := Content(12, 3<<20)
	u, err := s.NewUpload(ctx, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	appendAll(t, u, b[:1000])
	garbage := Content(99, 2<<20)
	n, err := u.Append(ctx, &failingReader{r: bytes.NewReader(garbage), err: errClientGone}, 0)
	if err == nil {
		t.Fatalf("Append with failing reader = %d, nil", n)
	}
	if !errors.Is(err, errClientGone) {
		t.Errorf("err = %v, want it to wrap the reader's error", err)
	}
	if got := u.Info().Size; got != 1000 {
		t.Fatalf("Size after failed Append = %d, want 1000", got)
	}
	appendAll(t, u, b[1000:])
	if _, err := u.Commit(ctx, digest.FromBytes(b), nil); err != nil {
		t.Fatalf("Commit after failed Append: %v", err)
	}
	wantBlob(t, s, digest.FromBytes(b), b)
}

func testAppendLimit(t *testing.T, s blob.Store) {
	ctx := context.Background()
	u, err := s.NewUpload(ctx, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	b := Content(13, 2<<20)
	_, err = u.Append(ctx, bytes.NewReader(b), int64(len(b)-1))
	wantCode(t, err, apperr.ETOOLARGE, "")
	if got := u.Info().Size; got != 0 {
		t.Fatalf("Size after ETOOLARGE = %d, want 0", got)
	}
	_, err = u.Append(ctx, bytes.NewReader(b[:10]), 9)
	wantCode(t, err, apperr.ETOOLARGE, "")
	n, err := u.Append(ctx, bytes.NewReader(b), int64(len(b)))
	if err != nil || n != int64(len(b)) {
		t.Fatalf("Append at exactly the limit = %d, %v", n, err)
	}
	if _, err := u.Commit(ctx, digest.FromBytes(b), nil); err != nil {
		t.Fatal(err)
	}
}

func testAppendCanceled(t *testing.T, s blob.Store) {
	u, err := s.NewUpload(context.Background(), digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	appendAll(t, u, []byte("abc"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := u.Append(ctx, bytes.NewReader(Content(14, 1<<20)), 0); err == nil {
		t.Fatal("Append with canceled context succeeded")
	}
	if got := u.Info().Size; got != 3 {
		t.Fatalf("Size = %d, want 3", got)
	}
	if _, err := u.Commit(context.Background(), digest.FromString("abc"), nil); err != nil {
		t.Fatal(err)
	}
}

func testCommitMismatch(t *testing.T, s blob.Store) {
	ctx := context.Background()
	u, err := s.NewUpload(ctx, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	appendAll(t, u, []byte("hello "))
	_, err = u.Commit(ctx, digest.FromString("hello world"), nil)
	wantCode(t, err, apperr.EINVALID, "DIGEST_INVALID")
	wantNoBlob(t, s, digest.FromString("hello world"))
	wantNoBlob(t, s, digest.FromString("hello "))
	_, err = u.Commit(ctx, "sha256:nope", nil)
	wantCode(t, err, apperr.EINVALID, "DIGEST_INVALID")
	appendAll(t, u, []byte("world"))
	if n, err := u.Commit(ctx, digest.FromString("hello world"), nil); err != nil || n != 11 {
		t.Fatalf("Commit after retry = %d, %v", n, err)
	}
	wantBlob(t, s, digest.FromString("hello world"), []byte("hello world"))
}

func testCommitOtherAlg(t *testing.T, s blob.Store) {
	ctx := context.Background()
	b := Content(15, 3<<20+5)
	for _, tc := range []struct {
		name          string
		session, want digest.Algorithm
	}{
		{"sha256 session, sha512 digest", digest.SHA256, digest.SHA512},
		{"sha512 session, sha256 digest", digest.SHA512, digest.SHA256},
		{"sha512 session, sha512 digest", digest.SHA512, digest.SHA512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := s.NewUpload(ctx, tc.session)
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			appendAll(t, u, b[:1<<20], b[1<<20:])
			_, err = u.Commit(ctx, tc.want.FromString("other"), nil)
			wantCode(t, err, apperr.EINVALID, "DIGEST_INVALID")
			d := tc.want.FromBytes(b)
			if n, err := u.Commit(ctx, d, nil); err != nil || n != int64(len(b)) {
				t.Fatalf("Commit(%s) = %d, %v", d, n, err)
			}
			wantBlob(t, s, d, b)
		})
	}
}

func testCommitBeforePublish(t *testing.T, s blob.Store) {
	ctx := context.Background()
	b := Content(16, 12345)
	d := digest.FromBytes(b)
	u, err := s.NewUpload(ctx, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	id := u.Info().ID
	appendAll(t, u, b)
	boom := errors.New("database down")
	_, err = u.Commit(ctx, d, func(int64) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Commit = %v, want the beforePublish error", err)
	}
	wantNoBlob(t, s, d)
	if got := u.Info().Size; got != int64(len(b)) {
		t.Fatalf("session Size after aborted Commit = %d", got)
	}
	var got int64 = -1
	n, err := u.Commit(ctx, d, func(size int64) error {
		got = size
		if _, err := s.Stat(ctx, d); apperr.Code(err) != apperr.ENOTFOUND {
			return fmt.Errorf("blob visible before beforePublish returned (Stat err %v)", err)
		}
		return nil
	})
	if err != nil || n != int64(len(b)) || got != int64(len(b)) {
		t.Fatalf("Commit = %d, %v; beforePublish size %d", n, err, got)
	}
	wantBlob(t, s, d, b)
	wantNoUpload(t, s, id)
}

func testCommitExisting(t *testing.T, s blob.Store) {
	ctx := context.Background()
	b := Content(17, 50000)
	d := mustPut(t, s, b)
	u, err := s.NewUpload(ctx, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	id := u.Info().ID
	appendAll(t, u, b)
	if n, err := u.Commit(ctx, d, nil); err != nil || n != int64(len(b)) {
		t.Fatalf("Commit of existing blob = %d, %v", n, err)
	}
	wantBlob(t, s, d, b)
	wantNoUpload(t, s, id)
}

func testCommitEmpty(t *testing.T, s blob.Store) {
	ctx := context.Background()
	u, err := s.NewUpload(ctx, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	n, err := u.Append(ctx, bytes.NewReader(nil), 0)
	if err != nil || n != 0 {
		t.Fatalf("empty Append = %d, %v", n, err)
	}
	d := digest.FromBytes(nil)
	if n, err := u.Commit(ctx, d, nil); err != nil || n != 0 {
		t.Fatalf("Commit empty = %d, %v", n, err)
	}
	wantBlob(t, s, d, nil)
}

func testClosedSession(t *testing.T, s blob.Store) {
	ctx := context.Background()
	u, err := s.NewUpload(ctx, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, u, []byte("x"))
	if _, err := u.Commit(ctx, digest.FromString("x"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Append(ctx, bytes.NewReader([]byte("y")), 0); err == nil {
		t.Error("Append after Commit succeeded")
	}
	if _, err := u.Commit(ctx, digest.FromString("x"), nil); err == nil {
		t.Error("second Commit succeeded")
	}
	if err := u.Close(); err != nil {
		t.Errorf("Close after Commit: %v", err)
	}
	if err := u.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func testCancel(t *testing.T, s blob.Store) {
	ctx := context.Background()
	u, err := s.NewUpload(ctx, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	id := u.Info().ID
	appendAll(t, u, []byte("abandon"))
	if err := u.Cancel(ctx); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	wantNoUpload(t, s, id)
	wantNoBlob(t, s, digest.FromString("abandon"))
}

func testDeleteUploadHeld(t *testing.T, s blob.Store) {
	ctx := context.Background()
	u, err := s.NewUpload(ctx, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	id := u.Info().ID
	appendAll(t, u, []byte("doomed"))
	if err := s.DeleteUpload(ctx, id); err != nil {
		t.Fatalf("DeleteUpload of a held session: %v", err)
	}
	wantNoUpload(t, s, id)
	wantCode(t, s.DeleteUpload(ctx, id), apperr.ENOTFOUND, "")
	if _, err := u.Commit(ctx, digest.FromString("doomed"), nil); err == nil {
		t.Fatal("Commit of a deleted session succeeded")
	}
	wantNoBlob(t, s, digest.FromString("doomed"))
	if _, err := u.Append(ctx, bytes.NewReader([]byte("more")), 0); err == nil {
		t.Fatal("Append to a deleted session succeeded")
	}
}

func testUploads(t *testing.T, s blob.Store) {
	ctx := context.Background()
	want := map[string]int64{}
	for i := range 3 {
		u, err := s.NewUpload(ctx, digest.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		appendAll(t, u, Content(uint64(i), 100*i))
		want[u.Info().ID] = int64(100 * i)
		if i != 1 {
			u.Close() // listed whether held or not
		} else {
			defer u.Close()
		}
	}
	got := map[string]int64{}
	err := s.Uploads(ctx, func(i blob.UploadInfo) error {
		if i.StartedAt.IsZero() || i.UpdatedAt.Before(i.StartedAt) {
			return fmt.Errorf("upload %s has times %v, %v", i.ID, i.StartedAt, i.UpdatedAt)
		}
		got[i.ID] = i.Size
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Uploads listed %v, want %v", keys(got), keys(want))
	}
	for id, n := range want {
		if got[id] != n {
			t.Errorf("upload %s size %d, want %d", id, got[id], n)
		}
	}
	stop := errors.New("stop")
	if err := s.Uploads(ctx, func(blob.UploadInfo) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Uploads with failing fn = %v, want stop", err)
	}
}

func keys(m map[string]int64) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
