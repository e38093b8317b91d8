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
		{"AppendCommit", testAppendCommit},
		{"UploadResumeAfterClose", testUploadResume},
		{"UploadExclusive", testUploadExclusive},
		{"UploadStatusWithoutHolding", testUploadStatus},
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
