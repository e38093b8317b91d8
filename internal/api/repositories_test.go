package api_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/rbac"
	"github.com/customs-dev/customs/internal/store"
)

// putImage stores a one-layer image manifest tagged tags in repo, straight
// into the store.
func putImage(t *testing.T, e *apiEnv, repo, name string, tags ...string) {
	t.Helper()
	ctx := context.Background()
	layer, self := digest.FromString(name+"/layer"), digest.FromString(name)
	for _, d := range []digest.Digest{layer, self} {
		if err := e.db.PutBlob(ctx, d, 5); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.db.LinkBlob(ctx, repo, layer); err != nil {
		t.Fatal(err)
	}
	m := &store.Manifest{Repository: repo, Digest: self, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 5,
		References: []store.Reference{{Digest: layer, Kind: store.RefBlob, Required: true}}}
	if err := e.db.PutManifest(ctx, m, tags); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteRepositoryAPI(t *testing.T) {
	e := newAPIEnv(t, nil)
	ctx := context.Background()
	putImage(t, e, "p/team/app", "a", "v1", "latest")
	putImage(t, e, "p/team/app", "b", "v2")
	putImage(t, e, "p/team", "c", "v1") // a prefix of the name: kept
	putImage(t, e, "q/app", "d", "v1")
	dev := e.user(t, "dev", "dev-password-1", rbac.RoleDeveloper)
	maint := e.user(t, "maint", "maint-password-1", rbac.RoleMaintainer)

	_, err := dev.DeleteRepository(ctx, "p/team/app")
	wantCode(t, "developer", err, apperr.EDENIED)
	if _, err := e.db.Tag(ctx, "p/team/app", "v1"); err != nil {
		t.Fatalf("a refused delete removed the tag: %v", err)
	}
	_, err = e.as("", "").DeleteRepository(ctx, "p/team/app")
	wantCode(t, "anonymous", err, apperr.EUNAUTHORIZED)
	_, err = maint.DeleteRepository(ctx, "q/app")
	wantCode(t, "maintainer of another project", err, apperr.ENOTFOUND)
	_, err = maint.DeleteRepository(ctx, "p/none")
	wantCode(t, "unknown repository", err, apperr.ENOTFOUND)

	del, err := maint.DeleteRepository(ctx, "p/team/app")
	if err != nil {
		t.Fatal(err)
	}
	if del.Repository != "p/team/app" || del.Tags != 3 || del.Manifests != 2 || del.BlobLinks != 2 {
		t.Errorf("answer %+v", del)
	}
	if _, err := e.db.Repository(ctx, "p/team/app"); apperr.Code(err) != apperr.ENOTFOUND {
		t.Errorf("repository after the delete: %v", err)
	}
	for _, repo := range []string{"p/team", "q/app"} {
		if _, err := e.db.Tag(ctx, repo, "v1"); err != nil {
			t.Errorf("%s:v1 after deleting p/team/app: %v", repo, err)
		}
	}
	_, err = maint.DeleteRepository(ctx, "p/team/app")
	wantCode(t, "deleted twice", err, apperr.ENOTFOUND)

	// No repository path at all.
	req, _ := http.NewRequest(http.MethodDelete, e.url+"/api/v1/projects/p/repositories/", nil)
	req.SetBasicAuth("admin", adminPW)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("DELETE without a repository path: %s, want 400", resp.Status)
	}

	var denied, done []audit.Event
	for _, ev := range e.rec.find("repository.delete") {
		if ev.Outcome == audit.Denied {
			denied = append(denied, ev)
		} else {
			done = append(done, ev)
		}
	}
	if len(denied) != 1 || denied[0].Actor != "dev" || denied[0].Resource != "repository:p/team/app" || denied[0].Project != "p" {
		t.Errorf("denied events %+v", denied)
	}
	if len(done) != 1 || done[0].Actor != "maint" || done[0].Resource != "repository:p/team/app" || done[0].Project != "p" ||
		done[0].Details["tags"] != "3" || done[0].Details["manifests"] != "2" || done[0].Details["blobLinks"] != "2" {
		t.Errorf("success events %+v", done)
	}
}
