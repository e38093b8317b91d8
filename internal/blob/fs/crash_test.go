package fs

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
)

// endless yields zero bytes forever, slowly enough to be killed mid-way.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	clear(p)
	return len(p), nil
}

// TestCrashHelper is the child process of TestCrashMidAppend: it starts an
// upload, acknowledges some bytes, prints the session id, then appends
// forever until killed.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv("CUSTOMS_CRASH_DIR")
	if dir == "" {
		t.Skip("helper process for TestCrashMidAppend")
	}
	ctx := context.Background()
	s := newStore(t, dir, Options{})
	u, err := s.NewUpload(ctx, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Append(ctx, strings.NewReader("acknowledged"), 0); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("ID " + u.Info().ID + "\n")
	u.Append(ctx, endless{}, 0)
	t.Fatal("endless append returned")
}

// A process killed in the middle of an append leaves a session that
// another process can resume at the acknowledged size, once the dead
// holder's lock is gone.
func TestCrashMidAppend(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$")
	cmd.Env = append(os.Environ(), "CUSTOMS_CRASH_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var id string
	for sc := bufio.NewScanner(out); sc.Scan(); {
		if rest, ok := strings.CutPrefix(sc.Text(), "ID "); ok {
			id = rest
			break
		}
	}
	if !validID(id) {
		t.Fatalf("child printed no upload id (got %q)", id)
	}
	s := newStore(t, dir, Options{})
	ctx := context.Background()
	data := filepath.Join(s.uploadDir(id), dataFile)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if fi, err := os.Stat(data); err == nil && fi.Size() > 4<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("child did not write past the acknowledged size")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The live child holds the session.
	if _, err := s.Upload(ctx, id); apperr.Code(err) != apperr.ECONFLICT {
		t.Fatalf("Upload while the child holds it = %v, want ECONFLICT", err)
	}
	cmd.Process.Kill()
	cmd.Wait()

	u, err := s.Upload(ctx, id)
	if err != nil {
		t.Fatalf("Upload after the child died: %v", err)
	}
	defer u.Close()
	if got := u.Info().Size; got != int64(len("acknowledged")) {
		t.Fatalf("Size after crash = %d, want %d", got, len("acknowledged"))
	}
	if _, err := u.Append(ctx, strings.NewReader(" and more"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Commit(ctx, digest.FromString("acknowledged and more"), nil); err != nil {
		t.Fatalf("Commit after crash: %v", err)
	}
}
