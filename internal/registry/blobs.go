package registry

import (
	"io"
	"net/http"
	"os"

	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/blob"
)

// serveBlob answers GET, HEAD and DELETE on /v2/<name>/blobs/<digest>.
func (h *handler) serveBlob(q *request) error {
	if q.r.Method == http.MethodDelete {
		return h.deleteBlob(q)
	}
	if err := h.authorize(q, auth.ActionPull); err != nil {
		return err
	}
	d, err := parseDigest(q.rt.Arg)
	if err != nil {
		return err
	}
	if _, err := h.meta.LinkedBlob(q.ctx, q.rt.Name, d); err != nil {
		return notFoundAs(err, codeBlobUnknown, "blob %s is not in repository %s", d, q.rt.Name)
	}
	rd, err := h.blobs.Open(q.ctx, d)
	if err != nil {
		return notFoundAs(err, codeBlobUnknown, "blob %s is not in repository %s", d, q.rt.Name)
	}
	defer rd.Close()
	hd := q.w.Header()
	hd.Set("Docker-Content-Digest", d.String())
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Etag", etag(d))
	// Content never changes under a digest.
	hd.Set("Cache-Control", "max-age=31536000")
	http.ServeContent(q.w, q.r, "", rd.ModTime(), seekerOf(rd))
	return nil
}

// fileBacked is implemented by blob readers backed by an *os.File; serving
// the file itself lets net/http hand the bytes to the kernel (sendfile).
type fileBacked interface {
	File() *os.File
}

// seekerOf returns the *os.File behind rd when there is one, else rd.
func seekerOf(rd blob.Reader) io.ReadSeeker {
	if f, ok := rd.(fileBacked); ok {
		if file := f.File(); file != nil {
			return file
		}
	}
	return rd
}

// deleteBlob unlinks a blob from the repository; the bytes stay until
// garbage collection finds them unreferenced everywhere.
func (h *handler) deleteBlob(q *request) error {
	if err := h.authorize(q, auth.ActionDelete); err != nil {
		return err
	}
	d, err := parseDigest(q.rt.Arg)
	if err != nil {
		return err
	}
	if err := h.meta.UnlinkBlob(q.ctx, q.rt.Name, d); err != nil {
		return notFoundAs(err, codeBlobUnknown, "blob %s is not in repository %s", d, q.rt.Name)
	}
	q.w.Header().Set("Content-Length", "0")
	q.w.WriteHeader(http.StatusAccepted)
	return nil
}
