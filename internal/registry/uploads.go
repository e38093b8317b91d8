package registry

import (
	"io"
	"net/http"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/blob"
)

// mountCandidates bounds how many repositories holding a blob are checked
// for a mount without a source repository.
const mountCandidates = 32

// startUpload answers POST /v2/<name>/blobs/uploads/: a cross-repository
// mount (?mount=&from=), a monolithic upload (?digest=) or a new session.
func (h *handler) startUpload(q *request) error {
	query := q.r.URL.Query()
	mount, from := query.Get("mount"), query.Get("from")
	if mount != "" && from != "" {
		if _, err := validateName(from); err == nil {
			q.scopes = append(q.scopes, repoAccess(from, auth.ActionPull))
		}
	}
	if err := h.authorize(q, auth.ActionPush); err != nil {
		return err
	}
	if err := h.requireProject(q); err != nil {
		return err
	}
	alg := digest.Canonical
	if mount != "" {
		d, err := parseDigest(mount)
		if err != nil {
			return err
		}
		mounted, err := h.mount(q, d, from)
		if err != nil || mounted {
			return err
		}
		alg = d.Algorithm() // not mounted: start a session for the client to upload d
	}
	if a := query.Get("digest-algorithm"); a != "" {
		alg = digest.Algorithm(a)
		if err := checkAlgorithm(alg); err != nil {
			return err
		}
	}
	if query.Has("digest") && mount == "" {
		d, err := parseDigest(query.Get("digest"))
		if err != nil {
			return err
		}
		return h.putMonolithic(q, d)
	}
	up, err := h.blobs.NewUpload(q.ctx, alg)
	if err != nil {
		return err
	}
	defer up.Close()
	token := h.sessionToken(q.rt.Name, up.Info().ID)
	h.sessionHeaders(q, token, 0)
	q.w.Header().Set("Content-Length", "0")
	q.w.WriteHeader(http.StatusAccepted)
	return nil
}

// putMonolithic stores the request body as blob d and links it.
func (h *handler) putMonolithic(q *request, d digest.Digest) error {
	body := &bodyReader{r: q.r.Body, want: -1}
	_, err := h.blobs.Put(q.ctx, d, body, h.recordLinked(q, d))
	if err != nil {
		return h.linkError(q, body.explain(err))
	}
	return created(q, d)
}

// mount links blob d into q's repository from another repository: from,
// or when from is "" any repository holding d that the caller's identity
// may pull. It reports false (and no error) when the blob cannot be mounted,
// so that the caller starts an upload session instead, as the spec says.
func (h *handler) mount(q *request, d digest.Digest, from string) (bool, error) {
	var source string
	if from != "" {
		if _, err := validateName(from); err != nil {
			return false, err
		}
		err := h.guard.Authorize(q.ctx, q.p, repoAccess(from, auth.ActionPull))
		switch apperr.Code(err) {
		case "":
		case apperr.EUNAUTHORIZED:
			// A bearer token that lacks pull on the source, held by an
			// identity that may pull it: challenge for both scopes (q.scopes)
			// so the client fetches a wider token and retries, as
			// distribution does. Anyone else falls back to an upload, which
			// reveals nothing about the source repository.
			if q.p.Token && h.guard.Entitled(q.ctx, q.p, from, auth.ActionPull) {
				return false, err
			}
			return false, nil
		case apperr.EDENIED:
			return false, nil
		default:
			return false, err
		}
		if _, err := h.meta.LinkedBlob(q.ctx, from, d); err != nil {
			if apperr.Code(err) == apperr.ENOTFOUND {
				return false, nil
			}
			return false, err
		}
		source = from
	} else {
		repos, err := h.meta.RepositoriesWithBlob(q.ctx, d, mountCandidates)
		if err != nil {
			return false, err
		}
		for _, repo := range repos {
			if repo == q.rt.Name || h.guard.Entitled(q.ctx, q.p, repo, auth.ActionPull) {
				source = repo
				break
			}
		}
		if source == "" {
			return false, nil
		}
	}
	if _, err := h.blobs.Stat(q.ctx, d); err != nil {
		if apperr.Code(err) == apperr.ENOTFOUND {
			return false, nil
		}
		return false, err
	}
	q.log.Debug("blob mounted", "digest", d, "from", source, "repo", q.rt.Name)
	return true, h.linkCreated(q, d)
}

// linkCreated links blob d into q's repository and answers 201.
func (h *handler) linkCreated(q *request, d digest.Digest) error {
	if err := h.meta.LinkBlob(q.ctx, q.rt.Name, d); err != nil {
		return h.linkError(q, err)
	}
	return created(q, d)
}

// recordLinked returns the beforePublish hook of an upload: it records blob
// d and links it into q's repository in one transaction (one commit, one
// fsync), before the bytes become visible, as the GC protocol requires.
func (h *handler) recordLinked(q *request, d digest.Digest) func(size int64) error {
	return func(size int64) error { return h.meta.PutLinkedBlob(q.ctx, q.rt.Name, d, size) }
}

// linkError explains a failure to link into q's repository: the only
// ENOTFOUND there is a project deleted meanwhile.
func (h *handler) linkError(q *request, err error) error {
	if apperr.Code(err) == apperr.ENOTFOUND && q.rt.Project != "" {
		if _, perr := h.projects.Project(q.ctx, q.rt.Project); apperr.Code(perr) == apperr.ENOTFOUND {
			return missingProject(q.rt.Project)
		}
	}
	return err
}

// created answers 201 for blob d in q's repository.
func created(q *request, d digest.Digest) error {
	hd := q.w.Header()
	hd.Set("Location", "/v2/"+q.rt.Name+"/blobs/"+d.String())
	hd.Set("Docker-Content-Digest", d.String())
	hd.Set("Content-Length", "0")
	q.w.WriteHeader(http.StatusCreated)
	return nil
}

// serveUpload answers GET (status), PATCH (append), PUT (finish) and DELETE
// (cancel) on /v2/<name>/blobs/uploads/<session>.
func (h *handler) serveUpload(q *request) error {
	if err := h.authorize(q, auth.ActionPush); err != nil {
		return err
	}
	token := q.rt.Arg
	id, err := h.sessionID(q.rt.Name, token)
	if err != nil {
		return err
	}
	if q.r.Method == http.MethodDelete {
		if err := h.blobs.DeleteUpload(q.ctx, id); err != nil {
			return notFoundAs(err, codeBlobUploadUnknown, "upload session unknown to this repository")
		}
		q.w.Header().Set("Content-Length", "0")
		q.w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if q.r.Method == http.MethodGet {
		// Status reads what was acknowledged without taking the session,
		// so that it never collides with the client's own PATCH or PUT.
		info, err := h.blobs.UploadStatus(q.ctx, id)
		if err != nil {
			return notFoundAs(err, codeBlobUploadUnknown, "upload session unknown to this repository")
		}
		h.sessionHeaders(q, token, info.Size)
		q.w.Header().Set("Content-Length", "0")
		q.w.WriteHeader(http.StatusNoContent)
		return nil
	}
	up, err := h.blobs.Upload(q.ctx, id)
	if err != nil {
		switch apperr.Code(err) {
		case apperr.ENOTFOUND:
			return notFoundAs(err, codeBlobUploadUnknown, "upload session unknown to this repository")
		case apperr.ECONFLICT:
			return apperr.Errorf(apperr.EUNAVAILABLE, "the upload session is in use by another request; retry when it has finished").
				WithDetail(codeTooManyRequests)
		}
		return err
	}
	defer up.Close()
	if q.r.Method == http.MethodPatch {
		return h.patchUpload(q, token, up)
	}
	return h.finishUpload(q, token, up)
}

// sessionHeaders sets the headers that tell a client where its session is
// and how much of it was received.
func (h *handler) sessionHeaders(q *request, token string, size int64) {
	hd := q.w.Header()
	hd.Set("Location", "/v2/"+q.rt.Name+"/blobs/uploads/"+token)
	hd.Set("Docker-Upload-UUID", token)
	hd.Set("Range", rangeHeader(size))
}

// appendBody checks the request body against up and hands it to write
// (Append, or AppendCommit for a closing PUT). With a Content-Range the
// chunk must start where the session ends (ERANGE otherwise, 416) and be
// exactly as long as the range says; without one the body is streamed.
func (h *handler) appendBody(q *request, token string, up blob.Upload, write func(body io.Reader, limit int64) error) error {
	size := up.Info().Size
	limit := int64(0)
	if cr := q.r.Header.Get("Content-Range"); cr != "" {
		rg, err := parseContentRange(cr)
		if err != nil {
			return err
		}
		if rg.Start != size {
			h.sessionHeaders(q, token, size)
			return apperr.Errorf(apperr.ERANGE,
				"chunk starts at byte %d but the upload has %d bytes; send the chunk starting at byte %d", rg.Start, size, size).
				WithDetail(codeBlobUploadInvalid)
		}
		if q.r.ContentLength >= 0 && q.r.ContentLength != rg.Len() {
			return apperr.Errorf(apperr.EINVALID, "Content-Length %d does not match Content-Range %d-%d",
				q.r.ContentLength, rg.Start, rg.End).WithDetail(codeSizeInvalid)
		}
		limit = rg.Len()
	}
	body := &bodyReader{r: q.r.Body, want: -1}
	if limit > 0 {
		body.want = limit
	}
	if err := write(body, limit); err != nil {
		q.log.Debug("upload append failed", "session", token, "acknowledged", up.Info().Size, "err", err)
		return body.explain(err)
	}
	return nil
}

// patchUpload appends a chunk or a stream and answers 202 with the new
// Range.
func (h *handler) patchUpload(q *request, token string, up blob.Upload) error {
	err := h.appendBody(q, token, up, func(body io.Reader, limit int64) error {
		_, err := up.Append(q.ctx, body, limit)
		return err
	})
	if err != nil {
		return err
	}
	h.sessionHeaders(q, token, up.Info().Size)
	q.w.Header().Set("Content-Length", "0")
	q.w.WriteHeader(http.StatusAccepted)
	return nil
}

// finishUpload appends an optional last chunk, verifies the whole blob
// against ?digest=, publishes it and links it into the repository.
func (h *handler) finishUpload(q *request, token string, up blob.Upload) error {
	query := q.r.URL.Query()
	if !query.Has("digest") {
		return apperr.Errorf(apperr.EINVALID, "the closing PUT needs ?digest=<digest of the whole blob>").WithDetail(codeDigestInvalid)
	}
	d, err := parseDigest(query.Get("digest"))
	if err != nil {
		return err
	}
	if q.r.ContentLength != 0 || q.r.Header.Get("Content-Range") != "" {
		// The last chunk and the commit in one step: one checkpoint fewer.
		err := h.appendBody(q, token, up, func(body io.Reader, limit int64) error {
			_, err := up.AppendCommit(q.ctx, body, limit, d, h.recordLinked(q, d))
			return err
		})
		if err != nil {
			return h.linkError(q, err)
		}
		return created(q, d)
	}
	if _, err := up.Commit(q.ctx, d, h.recordLinked(q, d)); err != nil {
		return h.linkError(q, err)
	}
	return created(q, d)
}

// bodyReader reads a request body, remembering a read failure (a client
// that went away) and, when want >= 0, failing if the body ends before
// want bytes. Failures are returned as *apperr.Error, never as
// io.ErrUnexpectedEOF, which io.ReadFull-style consumers could mistake for
// a normal end of a short read.
type bodyReader struct {
	r     io.Reader
	want  int64 // bytes expected, -1 for any
	n     int64
	err   error // the body's own read error, or a short body
	cause error // the underlying read error, for logs
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	switch {
	case err == io.EOF && b.want >= 0 && b.n < b.want:
		b.err = apperr.Errorf(apperr.EINVALID, "request body has %d bytes but Content-Range announced %d", b.n, b.want).
			WithDetail(codeSizeInvalid)
		err = b.err
	case err != nil && err != io.EOF:
		// The cause is not wrapped: a consumer testing errors.Is(err,
		// io.ErrUnexpectedEOF) must not take a broken body for its end.
		b.cause = err
		b.err = apperr.Errorf(apperr.EINVALID, "the request body could not be read to its end").WithDetail(codeBlobUploadInvalid)
		err = b.err
	}
	return n, err
}

// explain returns the error to answer with after a store consumed b and
// failed: the body's own failure if there was one, else err.
func (b *bodyReader) explain(err error) error {
	if b.err != nil {
		if b.cause != nil {
			return apperr.Wrap(b.cause, apperr.EINVALID, apperr.Message(b.err)).WithDetail(apperr.Detail(b.err))
		}
		return b.err
	}
	return err
}
