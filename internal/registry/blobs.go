package registry

import (
	"net/http"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/auth"
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
	if err := h.gateBlob(q, d); err != nil {
		return err
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
	// ServeContent copies through an io.LimitedReader; net/http hands it to
	// sendfile(2) when the reader is a syscall.Conn (an *os.File, or a type
	// embedding one as blob/fs's Reader does), so bytes skip user space.
	http.ServeContent(q.w, q.r, "", rd.ModTime(), rd)
	return nil
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

// gateBlob asks the PullGate about a GET of blob d by a client without push
// rights on the repository; a refusal is reported to Events.
func (h *handler) gateBlob(q *request, d digest.Digest) error {
	if h.pullGate == nil || q.r.Method != http.MethodGet ||
		h.guard.Entitled(q.ctx, q.p, q.rt.Name, auth.ActionPush) {
		return nil
	}
	err := h.pullGate.AllowBlob(q.ctx, BlobPull{Principal: q.p, Host: q.r.Host, Repository: q.rt.Name,
		Project: q.rt.Project, Digest: d})
	if err != nil && h.events != nil && apperr.Is(err, apperr.EDENIED) {
		h.events.Refused(q.ctx, q.p, q.rt.Name, []string{auth.ActionPull}, err)
	}
	return err
}
