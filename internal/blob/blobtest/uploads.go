package blobtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/blob"
)

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

// testUploadStatus: UploadStatus reports the acknowledged size whether or
// not the session is held, never takes it (the holder goes on, and a new
// holder can take it right after), and knows no other session.
func testUploadStatus(t *testing.T, s blob.Store) {
	ctx := context.Background()
	u, err := s.NewUpload(ctx, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	id := u.Info().ID
	appendAll(t, u, []byte("acknowledged"))
	info, err := s.UploadStatus(ctx, id)
	if err != nil {
		t.Fatalf("UploadStatus while held: %v", err)
	}
	if info.ID != id || info.Size != int64(len("acknowledged")) || info.StartedAt.IsZero() {
		t.Fatalf("UploadStatus while held = %+v, want ID %s and Size %d", info, id, len("acknowledged"))
	}
	appendAll(t, u, []byte(" more")) // the holder is undisturbed
	u.Close()
	info, err = s.UploadStatus(ctx, id)
	if err != nil || info.Size != int64(len("acknowledged more")) {
		t.Fatalf("UploadStatus after Close = %+v, %v; want Size %d", info, err, len("acknowledged more"))
	}
	u2, err := s.Upload(ctx, id) // the status read left it free
	if err != nil {
		t.Fatalf("Upload after UploadStatus: %v", err)
	}
	if err := u2.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{id, "", "../" + id, id + "/state"} {
		_, err := s.UploadStatus(ctx, bad)
		if c := apperr.Code(err); c != apperr.ENOTFOUND && c != apperr.EINVALID {
			t.Errorf("UploadStatus(%q) = %v, want ENOTFOUND or EINVALID", bad, err)
		}
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

// testAppendCommit: the last chunk and the commit in one call publish the
// blob; a wrong digest or a failing reader leave the session exactly at its
// previous acknowledged size, still resumable.
func testAppendCommit(t *testing.T, s blob.Store) {
	ctx := context.Background()
	b := Content(11, 3<<20+17)
	d := digest.FromBytes(b)
	u, err := s.NewUpload(ctx, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	id := u.Info().ID
	appendAll(t, u, b[:1<<20])

	_, err = u.AppendCommit(ctx, bytes.NewReader(b[1<<20:]), 0, digest.FromString("other"), nil)
	wantCode(t, err, apperr.EINVALID, "DIGEST_INVALID")
	if got := u.Info().Size; got != 1<<20 {
		t.Fatalf("after a wrong digest the session has %d bytes, want %d", got, 1<<20)
	}
	_, err = u.AppendCommit(ctx, &failingReader{r: bytes.NewReader(b[1<<20 : 2<<20]), err: errClientGone}, 0, d, nil)
	if err == nil {
		t.Fatal("AppendCommit of a failing reader succeeded")
	}
	if got := u.Info().Size; got != 1<<20 {
		t.Fatalf("after a failing reader the session has %d bytes, want %d", got, 1<<20)
	}
	_, err = u.AppendCommit(ctx, bytes.NewReader(b[1<<20:]), 0, d, func(int64) error { return errors.New("refused") })
	if err == nil {
		t.Fatal("AppendCommit ignored beforePublish's error")
	}
	wantNoBlob(t, s, d)
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}

	// The session resumes at the acknowledged size and completes.
	u, err = s.Upload(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Info().Size; got != 1<<20 {
		t.Fatalf("resumed session has %d bytes, want %d", got, 1<<20)
	}
	var recorded int64
	n, err := u.AppendCommit(ctx, bytes.NewReader(b[1<<20:]), 0, d, func(size int64) error { recorded = size; return nil })
	if err != nil || n != int64(len(b)) || recorded != int64(len(b)) {
		t.Fatalf("AppendCommit = %d, %v (recorded %d); want %d", n, err, recorded, len(b))
	}
	wantBlob(t, s, d, b)
	wantNoUpload(t, s, id)
}
