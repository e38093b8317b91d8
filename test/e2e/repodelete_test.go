package e2e_test

import (
	"context"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/test/e2e/harness"
)

// TestRepoDelete pushes two images sharing a layer with crane into two
// repositories, deletes one repository with `customs repo delete`, and
// checks with crane that its tags are gone (MANIFEST_UNKNOWN on pull), that
// the deletion is audited, and that `customs gc` then reclaims the blobs
// only the deleted repository used while the shared layer stays.
func TestRepoDelete(t *testing.T) {
	t.Parallel()
	harness.Tool(t, "crane")
	srv := harness.StartCustoms(t)
	srv.CreateProject(t, "lib", false)
	c := harness.NewClient(t)
	c.MustInput(t, srv.Password, "crane", "auth", "login", srv.Addr, "-u", srv.Username, "--password-stdin")

	shared := harness.Layer(t, "shared.txt", "a layer both repositories hold")
	only := harness.Layer(t, "only.txt", "a layer only lib/gone holds")
	kept := harness.Layer(t, "kept.txt", "a layer only lib/keep holds")
	gone, keep := srv.Addr+"/lib/gone", srv.Addr+"/lib/keep"
	goneImg := harness.WriteLayout(t, harness.BuildImage(t, shared, only))
	c.Must(t, "crane", "push", "--insecure", goneImg, gone+":v1")
	c.Must(t, "crane", "tag", "--insecure", gone+":v1", "v2")
	c.Must(t, "crane", "push", "--insecure", harness.WriteLayout(t, harness.BuildImage(t, shared, kept)), keep+":v1")
	goneDigest := harness.LayoutDigest(t, goneImg)
	sharedDigest, _ := shared.Digest()
	onlyDigest, _ := only.Digest()
	if got := strings.Fields(c.Must(t, "crane", "ls", "--insecure", gone)); !slices.Equal(got, []string{"v1", "v2"}) {
		t.Fatalf("tags of lib/gone before the delete: %v", got)
	}

	server := []string{"--server", srv.URL()}
	// Without --yes, and stdin not a terminal: refused, nothing deleted.
	out, errOut, code := srv.CLI(t, append([]string{"repo", "delete", "lib/gone"}, server...)...)
	if code != 2 || !strings.Contains(errOut, "--yes") {
		t.Errorf("repo delete without --yes: exit %d, want 2 naming --yes:\n%s%s", code, out, errOut)
	}
	if got := strings.Fields(c.Must(t, "crane", "ls", "--insecure", gone)); len(got) != 2 {
		t.Fatalf("a refused delete changed the tags: %v", got)
	}
	// A repository that does not exist: not found (exit 3).
	if _, errOut, code := srv.CLI(t, append([]string{"repo", "delete", "lib/never", "--yes"}, server...)...); code != 3 {
		t.Errorf("repo delete of a missing repository: exit %d, want 3:\n%s", code, errOut)
	}

	out = srv.MustCLI(t, append([]string{"repo", "delete", "lib/gone", "--yes"}, server...)...)
	if !strings.Contains(out, "repository lib/gone deleted: 2 tags") {
		t.Errorf("repo delete printed %q", out)
	}

	// The tags are gone at once: ls lists nothing, pulls are refused.
	if r := c.Run(t, "crane", "ls", "--insecure", gone); r.Err == nil && strings.TrimSpace(r.Stdout) != "" {
		t.Errorf("crane ls after the delete lists %q", r.Stdout)
	}
	for _, ref := range []string{gone + ":v1", gone + ":v2", gone + "@" + goneDigest} {
		r := c.Run(t, "crane", "pull", "--insecure", ref, filepath.Join(t.TempDir(), "x.tar"))
		if r.Err == nil || !strings.Contains(r.Stderr, "MANIFEST_UNKNOWN") {
			t.Errorf("crane pull %s after the delete: want MANIFEST_UNKNOWN:\n%s", ref, r)
		}
	}
	if cat := strings.Fields(c.Must(t, "crane", "catalog", "--insecure", srv.Addr)); slices.Contains(cat, "lib/gone") || !slices.Contains(cat, "lib/keep") {
		t.Errorf("catalog after the delete: %v", cat)
	}

	// Audited, with what was removed.
	admin := &apiclient.Client{BaseURL: srv.URL(), Username: srv.Username, Password: srv.Password}
	var ev *audit.Event
	for deadline := time.Now().Add(10 * time.Second); ev == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		page, err := admin.AuditEvents(context.Background(), apiclient.AuditQuery{Action: "repository.delete"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range page.Events {
			if page.Events[i].Outcome == audit.Success {
				ev = &page.Events[i]
			}
		}
	}
	if ev == nil {
		t.Fatal("no repository.delete audit event")
	}
	if ev.Resource != "repository:lib/gone" || ev.Project != "lib" || ev.Actor != srv.Username || ev.Details["tags"] != "2" ||
		ev.Details["manifests"] == "" || ev.Details["manifests"] == "0" {
		t.Errorf("audit event %+v", ev)
	}

	// GC reclaims what only lib/gone used (its manifest, config and own
	// layer); the layer lib/keep shares stays, and lib/keep still pulls.
	gc := srv.MustCLI(t, "gc", "--data-dir", srv.DataDir, "--grace-period", "0s")
	if m := regexp.MustCompile(`deleted (\d+) blobs`).FindStringSubmatch(gc); m == nil || m[1] == "0" {
		t.Errorf("customs gc reclaimed nothing: %s", gc)
	}
	for d, want := range map[string]bool{goneDigest: false, onlyDigest.String(): false, sharedDigest.String(): true} {
		if got := blobFileExists(t, srv.DataDir, d); got != want {
			t.Errorf("after gc, blob %s on disk: %v, want %v", d, got, want)
		}
	}
	c.Must(t, "crane", "pull", "--insecure", keep+":v1", filepath.Join(t.TempDir(), "keep.tar"))
}

// blobFileExists reports whether a file named for digest d's hex is under
// the data dir's blob store.
func blobFileExists(t *testing.T, dataDir, d string) bool {
	t.Helper()
	_, hex, _ := strings.Cut(d, ":")
	found := false
	err := filepath.WalkDir(filepath.Join(dataDir, "blobs"), func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !de.IsDir() && de.Name() == hex {
			found = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
