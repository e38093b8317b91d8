package fs

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/blob"
	"github.com/customs-dev/customs/internal/blob/blobtest"
)

func newStore(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := New(dir, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store { return newStore(t, t.TempDir(), Options{}) })
}

// Small buffers and windows push every pipeline and writeback path through
// many iterations with small data.
func TestConformanceSmallBuffers(t *testing.T) {
	opts := Options{BufferSize: 4096, Buffers: 2, WritebackWindow: 8192, MaxDirty: 16384, SyncEvery: 12288}
	blobtest.Run(t, func(t *testing.T) blob.Store { return newStore(t, t.TempDir(), opts) })
}

func TestNoWriteback(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, t.TempDir(), Options{WritebackWindow: -1})
	b := blobtest.Content(9, 3<<20+1)
	d := digest.FromBytes(b)
	u, err := s.NewUpload(ctx, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := u.Append(ctx, bytes.NewReader(b), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Commit(ctx, d, nil); err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, _ := io.ReadAll(r); !bytes.Equal(got, b) {
		t.Fatal("content differs")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"tiny buffers", Options{BufferSize: 100}},
		{"one buffer", Options{Buffers: 1}},
		{"negative max dirty", Options{MaxDirty: -1}},
		{"negative temp age", Options{TempMaxAge: -time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(t.TempDir(), tc.opts)
			if apperr.Code(err) != apperr.EINVALID {
				t.Fatalf("New = %v, want EINVALID", err)
			}
		})
	}
}

func TestLayout(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir, Options{})
	d := blobtest.Content(1, 10)
	dg := digest.FromBytes(d)
	if _, err := s.Put(context.Background(), dg, bytes.NewReader(d), nil); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "blobs", "sha256", dg.Encoded()[:2], dg.Encoded())
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, d) {
		t.Fatalf("blob not at %s: %v", p, err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "tmp"))
	if len(ents) != 0 {
		t.Errorf("tmp/ not empty after Put: %d entries", len(ents))
	}
	// A stray file among the blobs is not reported by Walk.
	os.WriteFile(filepath.Join(dir, "blobs", "sha256", "00", "junk"), []byte("x"), 0o600)
	n := 0
	s.Walk(context.Background(), func(blob.Info) error { n++; return nil })
	if n != 1 {
		t.Errorf("Walk reported %d blobs, want 1", n)
	}
}

// uploadPaths returns session id's data and state file paths.
func uploadPaths(s *Store, id string) (data, state string) {
	return filepath.Join(s.uploadDir(id), dataFile), filepath.Join(s.uploadDir(id), stateFile)
}

func TestResumeAcrossRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := blobtest.Content(2, 3<<20+17)
	s1 := newStore(t, dir, Options{})
	u, err := s1.NewUpload(ctx, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	id := u.Info().ID
	if _, err := u.Append(ctx, bytes.NewReader(b[:2<<20]), 0); err != nil {
		t.Fatal(err)
	}
	u.Close()

	// A new store on the same directory (a restart) resumes the session
	// and its hash without the old one.
	s2 := newStore(t, dir, Options{})
	u, err = s2.Upload(ctx, id)
	if err != nil {
		t.Fatalf("Upload after restart: %v", err)
	}
	defer u.Close()
	if u.Info().Size != 2<<20 {
		t.Fatalf("Size after restart = %d", u.Info().Size)
	}
	if _, err := u.Append(ctx, bytes.NewReader(b[2<<20:]), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Commit(ctx, digest.FromBytes(b), nil); err != nil {
		t.Fatalf("Commit after restart: %v", err)
	}
}

// A crash or a disconnect mid-append leaves bytes past the acknowledged
// size; resuming cuts them off.
func TestResumeTruncatesUnacknowledged(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, t.TempDir(), Options{})
	u, err := s.NewUpload(ctx, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	id := u.Info().ID
	if _, err := u.Append(ctx, strings.NewReader("hello "), 0); err != nil {
		t.Fatal(err)
	}
	u.Close()
	data, _ := uploadPaths(s, id)
	f, err := os.OpenFile(data, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("GARBAGE FROM A CRASH")
	f.Close()

	u, err = s.Upload(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if fi, _ := os.Stat(data); fi.Size() != 6 || u.Info().Size != 6 {
		t.Fatalf("after resume: file %d bytes, Size %d; want 6, 6", fi.Size(), u.Info().Size)
	}
	if _, err := u.Append(ctx, strings.NewReader("world"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Commit(ctx, digest.FromString("hello world"), nil); err != nil {
		t.Fatal(err)
	}
}

func TestDamagedSessions(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, data, state string)
		code   string
	}{
		{"state garbage", func(t *testing.T, _, state string) { os.WriteFile(state, []byte("{not json"), 0o600) }, apperr.EINTERNAL},
		{"state too large", func(t *testing.T, _, state string) { os.WriteFile(state, bytes.Repeat([]byte(" "), 10000), 0o600) }, apperr.EINTERNAL},
		{"state missing (crash while creating)", func(t *testing.T, _, state string) { os.Remove(state) }, apperr.ENOTFOUND},
		{"data missing (crash after publishing)", func(t *testing.T, data, _ string) { os.Remove(data) }, apperr.ENOTFOUND},
		{"data shorter than acknowledged", func(t *testing.T, data, _ string) { os.Truncate(data, 2) }, apperr.EINTERNAL},
		{"size disagrees with hash", func(t *testing.T, _, state string) {
			b, _ := os.ReadFile(state)
			os.WriteFile(state, bytes.Replace(b, []byte(`"size":5`), []byte(`"size":4`), 1), 0o600)
		}, apperr.EINTERNAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, t.TempDir(), Options{})
			u, err := s.NewUpload(ctx, digest.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			id := u.Info().ID
			if _, err := u.Append(ctx, strings.NewReader("12345"), 0); err != nil {
				t.Fatal(err)
			}
			u.Close()
			data, state := uploadPaths(s, id)
			tc.damage(t, data, state)
			_, err = s.Upload(ctx, id)
			if apperr.Code(err) != tc.code {
				t.Fatalf("Upload = %v, want %s", err, tc.code)
			}
			// Cleanup still sees the session and can remove it.
			listed := false
			s.Uploads(ctx, func(i blob.UploadInfo) error { listed = listed || i.ID == id; return nil })
			if !listed {
				t.Fatal("damaged session not listed by Uploads")
			}
			if err := s.DeleteUpload(ctx, id); err != nil {
				t.Fatalf("DeleteUpload: %v", err)
			}
			if _, err := os.Stat(s.uploadDir(id)); !os.IsNotExist(err) {
				t.Fatalf("session dir still there: %v", err)
			}
		})
	}
}

// Two stores sharing a directory (as two processes would) exclude each
// other through flock.
func TestSessionLockAcrossStores(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s1, s2 := newStore(t, dir, Options{}), newStore(t, dir, Options{})
	u, err := s1.NewUpload(ctx, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	id := u.Info().ID
	_, err = s2.Upload(ctx, id)
	if apperr.Code(err) != apperr.ECONFLICT {
		t.Fatalf("second store's Upload = %v, want ECONFLICT", err)
	}
	u.Close()
	u2, err := s2.Upload(ctx, id)
	if err != nil {
		t.Fatalf("Upload after the first store closed: %v", err)
	}
	_, err = s1.Upload(ctx, id)
	if apperr.Code(err) != apperr.ECONFLICT {
		t.Fatalf("first store's Upload = %v, want ECONFLICT", err)
	}
	u2.Close()
}

func TestCleanTemp(t *testing.T) {
	dir := t.TempDir()
	newStore(t, dir, Options{})
	tmp := filepath.Join(dir, "tmp")
	old := time.Now().Add(-2 * time.Hour)
	write := func(name string, mtime time.Time) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mtime, mtime)
		return p
	}
	stale := write("put-stale", old)
	fresh := write("put-fresh", time.Now())
	held := write("put-held", old)
	f, err := os.Open(held)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := lockFile(f); err != nil {
		t.Fatal(err)
	}

	newStore(t, dir, Options{})
	for _, tc := range []struct {
		path string
		want bool
	}{{stale, false}, {fresh, true}, {held, true}} {
		_, err := os.Stat(tc.path)
		if exists := err == nil; exists != tc.want {
			t.Errorf("%s exists = %v, want %v", filepath.Base(tc.path), exists, tc.want)
		}
	}
}

func TestLinkNoReplace(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	os.WriteFile(src, []byte("new"), 0o600)
	existed, err := linkNoReplace(src, dst)
	if err != nil || existed {
		t.Fatalf("linkNoReplace = %v, %v", existed, err)
	}
	if _, err := os.Stat(src); !os.IsNotExist(err) {
		t.Error("src still exists after move")
	}
	os.WriteFile(src, []byte("other"), 0o600)
	existed, err = linkNoReplace(src, dst)
	if err != nil || !existed {
		t.Fatalf("linkNoReplace onto existing = %v, %v", existed, err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "new" {
		t.Errorf("existing dst replaced: %q", b)
	}
	if _, err := linkNoReplace(filepath.Join(dir, "absent"), filepath.Join(dir, "x")); !os.IsNotExist(err) {
		t.Errorf("missing src: %v, want not-exist", err)
	}
}

// The Reader hands the kernel its file: io.Copy to a TCP connection (what
// http.ServeContent does) can use sendfile.
func TestReaderExposesFile(t *testing.T) {
	s := newStore(t, t.TempDir(), Options{})
	d := digest.FromString("x")
	s.Put(context.Background(), d, strings.NewReader("x"), nil)
	r, err := s.Open(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, ok := r.(syscall.Conn); !ok {
		t.Error("Reader does not implement syscall.Conn (sendfile needs it)")
	}
	if _, ok := r.(io.WriterTo); !ok {
		t.Error("Reader does not implement io.WriterTo")
	}
	if fr, ok := r.(*Reader); !ok || fr.File == nil {
		t.Errorf("Reader is %T, want *fs.Reader with its File", r)
	}
}

// Serving a blob over HTTP streams it: the server's allocations do not grow
// with the blob, and ranges work.
func TestServeContentFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 256 MiB")
	}
	ctx := context.Background()
	s := newStore(t, t.TempDir(), Options{})
	const size = 256 << 20
	b := blobtest.Content(3, 4<<20)
	h := digest.SHA256.Digester()
	for range size / len(b) {
		h.Hash().Write(b)
	}
	d := h.Digest()
	if _, err := s.Put(ctx, d, io.MultiReader(repeat(b, size/len(b))...), nil); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r, err := s.Open(req.Context(), d)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer r.Close()
		http.ServeContent(w, req, "", r.ModTime(), r)
	}))
	defer srv.Close()

	get := func(rng string) (int64, []byte) {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if rng != "" {
			got, _ := io.ReadAll(resp.Body)
			return int64(len(got)), got
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		return n, nil
	}
	get("") // warm up connections and buffers

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n, _ := get("")
	runtime.ReadMemStats(&after)
	if n != size {
		t.Fatalf("served %d bytes, want %d", n, size)
	}
	// Client and server share this process; both stream. 256 MiB through
	// user-space buffers would still allocate little, so the bound is what
	// catches reading the blob into memory.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("serving %d MiB allocated %d KiB", size>>20, alloc>>10)
	}
	off := int64(5<<20 + 3)
	_, got := get("bytes=5242883-5243882")
	if want := b[off%int64(len(b)) : off%int64(len(b))+1000]; !bytes.Equal(got, want) {
		t.Errorf("range response differs (%d bytes)", len(got))
	}
}

func repeat(b []byte, n int) []io.Reader {
	rs := make([]io.Reader, n)
	for i := range rs {
		rs[i] = bytes.NewReader(b)
	}
	return rs
}

// A blob directory removed by hand is recreated when needed.
func TestPublishRecreatesMissingDir(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir, Options{})
	d := digest.FromString("phoenix")
	if err := os.RemoveAll(filepath.Join(dir, "blobs", "sha256", d.Encoded()[:2])); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(context.Background(), d, strings.NewReader("phoenix"), nil); err != nil {
		t.Fatalf("Put into a removed directory: %v", err)
	}
	if _, err := s.Stat(context.Background(), d); err != nil {
		t.Fatal(err)
	}
}

// TestAppendSourceTruncated: a source that fails with io.ErrUnexpectedEOF
// (net/http's error for a client that hung up mid-body) is an error, not the
// end of the input: nothing is acknowledged.
func TestAppendSourceTruncated(t *testing.T) {
	ctx := context.Background()
	s, err := New(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	up, err := s.NewUpload(ctx, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	src := io.MultiReader(bytes.NewReader(make([]byte, 1000)), iotest.ErrReader(io.ErrUnexpectedEOF))
	if _, err := up.Append(ctx, src, 0); err == nil {
		t.Fatal("Append of a truncated source succeeded")
	}
	if got := up.Info().Size; got != 0 {
		t.Fatalf("acknowledged %d bytes of a truncated append", got)
	}
}
