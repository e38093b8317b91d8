package registry

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/blob"
	"github.com/customs-dev/customs/internal/store"
)

// maxTagParams caps the ?tag= parameters of one manifest PUT.
const maxTagParams = 100

// serveManifest answers GET, HEAD, PUT and DELETE on
// /v2/<name>/manifests/<reference>.
func (h *handler) serveManifest(q *request) error {
	var err error
	var action string
	switch q.r.Method {
	case http.MethodPut:
		err, action = h.putManifest(q), auth.ActionPush
	case http.MethodDelete:
		err, action = h.deleteManifest(q), auth.ActionDelete
	default:
		return h.getManifest(q)
	}
	// Denials were reported by authorize; challenges are not failures.
	if err != nil && h.events != nil && !apperr.Is(err, apperr.EUNAUTHORIZED) && !apperr.Is(err, apperr.EDENIED) {
		h.events.Refused(q.ctx, q.p, q.rt.Name, []string{action}, err)
	}
	return err
}

// getManifest sends a manifest's stored bytes exactly, with the media type
// it was pushed with.
func (h *handler) getManifest(q *request) error {
	if err := h.authorize(q, auth.ActionPull); err != nil {
		return err
	}
	ref, err := parseReference(q.rt.Arg)
	if err != nil {
		return err
	}
	m, err := h.resolve(q, ref)
	if err != nil {
		return err
	}
	if err := h.gatePull(q, m); err != nil {
		return err
	}
	// The bytes come from the cache when they can: m is in the repository
	// (resolve asked the store), and a digest's bytes never change.
	body, cached := h.manifests.get(m.Digest)
	var stream blob.Reader // set when the bytes are streamed from Blobs, not held
	if !cached {
		rd, err := h.blobs.Open(q.ctx, m.Digest)
		if err != nil {
			if apperr.Code(err) == apperr.ENOTFOUND {
				q.log.Error("manifest recorded but its bytes are missing", "repo", q.rt.Name, "digest", m.Digest)
			}
			return notFoundAs(err, codeManifestUnknown, "manifest %s is not in repository %s", ref, q.rt.Name)
		}
		defer rd.Close()
		if h.manifests.fits(m.Digest, rd.Size()) {
			if body, err = h.readManifestBlob(q, rd, m.Digest); err != nil {
				return err
			}
		} else {
			stream = rd
		}
	}
	hd := q.w.Header()
	hd.Set("Content-Type", m.MediaType)
	hd.Set("Docker-Content-Digest", m.Digest.String())
	hd.Set("Etag", etag(m.Digest))
	if stream != nil {
		http.ServeContent(q.w, q.r, "", time.Time{}, stream)
	} else {
		serveBytes(q.w, q.r, body)
	}
	if q.r.Method == http.MethodGet && h.events != nil {
		h.events.ManifestPulled(q.ctx, q.p, m)
	}
	return nil
}

// readManifestBlob reads a manifest's bytes from rd whole and keeps them
// in the cache if they match d. Bytes that do not (a damaged store) are
// served as before, but not kept.
func (h *handler) readManifestBlob(q *request, rd blob.Reader, d digest.Digest) ([]byte, error) {
	body := make([]byte, rd.Size())
	if _, err := io.ReadFull(rd, body); err != nil {
		return nil, fmt.Errorf("reading manifest %s: %w", d, err)
	}
	if d.Validate() == nil && d.Algorithm().FromBytes(body) == d {
		h.manifests.put(d, body)
	} else {
		q.log.Error("manifest bytes in the blob store do not match their digest", "repo", q.rt.Name, "digest", d)
	}
	return body, nil
}

// serveBytes answers r with body as http.ServeContent would (w's headers
// set but for the length): through it when r is conditional or asks for
// a range, directly otherwise.
func serveBytes(w http.ResponseWriter, r *http.Request, body []byte) {
	rh := r.Header
	if len(rh["If-Match"]) > 0 || len(rh["If-None-Match"]) > 0 || len(rh["If-Modified-Since"]) > 0 ||
		len(rh["If-Unmodified-Since"]) > 0 || len(rh["Range"]) > 0 {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
		return
	}
	hd := w.Header()
	hd.Set("Accept-Ranges", "bytes")
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// gatePull asks the PullGate about a GET of m by a client without push
// rights on the repository; a refusal is reported to Events.
func (h *handler) gatePull(q *request, m *store.Manifest) error {
	if h.pullGate == nil || q.r.Method != http.MethodGet ||
		h.guard.Entitled(q.ctx, q.p, q.rt.Name, auth.ActionPush) {
		return nil
	}
	err := h.pullGate.AllowPull(q.ctx, Pull{Principal: q.p, Host: q.r.Host, Repository: q.rt.Name,
		Project: q.rt.Project, Reference: q.rt.Arg, Manifest: m})
	if err != nil && h.events != nil && apperr.Is(err, apperr.EDENIED) {
		h.events.Refused(q.ctx, q.p, q.rt.Name, []string{auth.ActionPull}, err)
	}
	return err
}

// resolve finds the manifest a tag or digest names in q's repository.
func (h *handler) resolve(q *request, ref reference) (*store.Manifest, error) {
	d := ref.Digest
	if ref.Tag != "" {
		t, err := h.meta.Tag(q.ctx, q.rt.Name, ref.Tag)
		if err != nil {
			return nil, notFoundAs(err, codeManifestUnknown, "manifest unknown: no tag %q in repository %s", ref.Tag, q.rt.Name)
		}
		d = t.Digest
	}
	m, err := h.meta.Manifest(q.ctx, q.rt.Name, d)
	if err != nil {
		return nil, notFoundAs(err, codeManifestUnknown, "manifest %s is not in repository %s", ref, q.rt.Name)
	}
	return m, nil
}

// putManifest validates and stores a manifest, then points the tag of the
// URL and any ?tag= parameters at it.
func (h *handler) putManifest(q *request) error {
	if err := h.authorize(q, auth.ActionPush); err != nil {
		return err
	}
	ref, err := parseReference(q.rt.Arg)
	if err != nil {
		return err
	}
	tags, err := manifestTags(ref, q.r.URL.Query()["tag"])
	if err != nil {
		return err
	}
	if err := h.requireProject(q); err != nil {
		return err
	}
	body, err := h.readManifest(q)
	if err != nil {
		return err
	}
	alg := digest.Canonical
	if ref.Digest != "" {
		alg = ref.Digest.Algorithm()
	}
	d := alg.FromBytes(body)
	if ref.Digest != "" && d != ref.Digest {
		return apperr.Errorf(apperr.EINVALID, "the manifest's digest is %s, not %s as the URL says", d, ref.Digest).
			WithDetail(codeDigestInvalid)
	}
	pm, err := parseManifest(body, q.r.Header.Get("Content-Type"), h.allowSparse)
	if err != nil {
		return err
	}
	m := &store.Manifest{
		Repository:   q.rt.Name,
		Digest:       d,
		MediaType:    pm.MediaType,
		Size:         int64(len(body)),
		ArtifactType: pm.ArtifactType,
		Subject:      pm.Subject,
		Annotations:  pm.Annotations,
		References:   pm.References,
	}
	// Linked, not only recorded: like distribution, a repository serves its
	// manifests' bytes from the blobs endpoint too.
	if _, err := h.blobs.Put(q.ctx, d, bytes.NewReader(body), h.recordLinked(q, d)); err != nil {
		return h.linkError(q, err)
	}
	if err := h.meta.PutManifest(q.ctx, m, tags); err != nil {
		if apperr.Code(err) == apperr.ENOTFOUND {
			return missingProject(q.rt.Project)
		}
		return err
	}
	hd := q.w.Header()
	hd.Set("Location", "/v2/"+q.rt.Name+"/manifests/"+d.String())
	hd.Set("Docker-Content-Digest", d.String())
	if m.Subject != "" {
		hd.Set("OCI-Subject", m.Subject.String())
	}
	if len(tags) > 0 {
		hd.Set("OCI-Tag", strings.Join(tags, ", "))
	}
	hd.Set("Content-Length", "0")
	q.w.WriteHeader(http.StatusCreated)
	if h.events != nil {
		h.events.ManifestPushed(q.ctx, q.p, m, tags)
	}
	return nil
}

// manifestTags lists the tags a manifest PUT sets: the URL's tag and the
// ?tag= parameters, each once.
func manifestTags(ref reference, params []string) ([]string, error) {
	if len(params) > maxTagParams {
		return nil, manifestInvalid("too many tag parameters: %d, at most %d per request", len(params), maxTagParams)
	}
	var tags []string
	if ref.Tag != "" {
		tags = append(tags, ref.Tag)
	}
	for _, t := range params {
		if !validTag(t) {
			return nil, manifestInvalid("invalid tag %q: tags match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", truncate(t, 160))
		}
		dup := false
		for _, have := range tags {
			dup = dup || have == t
		}
		if !dup {
			tags = append(tags, t)
		}
	}
	return tags, nil
}

// readManifest reads a manifest body, refusing more than the size limit.
func (h *handler) readManifest(q *request) ([]byte, error) {
	tooLarge := func() error {
		return apperr.Errorf(apperr.ETOOLARGE, "manifest is larger than the limit of %d bytes", h.maxManifest).
			WithDetail(codeManifestInvalid)
	}
	if q.r.ContentLength > h.maxManifest {
		return nil, tooLarge()
	}
	body := &bodyReader{r: q.r.Body, want: -1}
	b, err := io.ReadAll(io.LimitReader(body, h.maxManifest+1))
	if err != nil {
		return nil, body.explain(err)
	}
	if int64(len(b)) > h.maxManifest {
		return nil, tooLarge()
	}
	return b, nil
}

// deleteManifest deletes a tag (the manifest stays) or a manifest and every
// tag pointing at it.
func (h *handler) deleteManifest(q *request) error {
	if err := h.authorize(q, auth.ActionDelete); err != nil {
		return err
	}
	ref, err := parseReference(q.rt.Arg)
	if err != nil {
		return err
	}
	d := ref.Digest
	if ref.Tag != "" {
		t, err := h.meta.Tag(q.ctx, q.rt.Name, ref.Tag)
		if err != nil {
			return notFoundAs(err, codeManifestUnknown, "no tag %q in repository %s", ref.Tag, q.rt.Name)
		}
		d = t.Digest
		err = h.meta.DeleteTag(q.ctx, q.rt.Name, ref.Tag)
		if err != nil {
			return notFoundAs(err, codeManifestUnknown, "no tag %q in repository %s", ref.Tag, q.rt.Name)
		}
	} else if err := h.meta.DeleteManifest(q.ctx, q.rt.Name, d); err != nil {
		return notFoundAs(err, codeManifestUnknown, "manifest %s is not in repository %s", d, q.rt.Name)
	}
	q.w.Header().Set("Content-Length", "0")
	q.w.WriteHeader(http.StatusAccepted)
	if h.events != nil {
		h.events.ManifestDeleted(q.ctx, q.p, q.rt.Name, d, ref.Tag)
	}
	return nil
}
