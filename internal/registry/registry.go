// Package registry serves the OCI Distribution API (distribution-spec v1.1,
// referrers included) under /v2/ as one http.Handler.
//
// Repositories are named <project>/<path...>. Every request is authenticated
// and authorized through a Guard before anything about the repository is
// looked up, so that private repositories cannot be probed. Metadata
// (repositories, links, manifests, tags) lives behind Metadata and bytes
// behind Blobs; the handler keeps no state of its own (beyond a bounded
// cache of manifest bytes by digest, which cannot go stale), so any replica
// can serve any request. Errors are mapped to the spec's JSON error body in one
// place (errors.go).
package registry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/blob"
	"github.com/customs-dev/customs/internal/store"
)

// Guard authenticates and authorizes registry requests.
type Guard interface {
	// Authenticate returns who made r: EUNAUTHORIZED for bad credentials,
	// auth.Anonymous when there are none.
	Authenticate(r *http.Request) (auth.Principal, error)
	// Authorize returns nil if every action in a is allowed to p;
	// EUNAUTHORIZED (answered 401 with a challenge) or EDENIED (403).
	Authorize(ctx context.Context, p auth.Principal, a auth.Access) error
	// Entitled reports whether the identity behind p may do action on
	// repo, ignoring a bearer token's scope limit (used for mounts without
	// a source repository and for the catalog).
	Entitled(ctx context.Context, p auth.Principal, repo, action string) bool
	// Challenge returns the WWW-Authenticate value for a 401 answer to r
	// asking for scopes.
	Challenge(r *http.Request, scopes ...auth.Access) string
}

// Metadata is the part of the metadata store the registry uses (see
// store.RegistryStore for the contracts).
type Metadata interface {
	PutBlob(ctx context.Context, d digest.Digest, size int64) error
	PutLinkedBlob(ctx context.Context, repo string, d digest.Digest, size int64) error
	LinkBlob(ctx context.Context, repo string, d digest.Digest) error
	LinkedBlob(ctx context.Context, repo string, d digest.Digest) (*store.Blob, error)
	UnlinkBlob(ctx context.Context, repo string, d digest.Digest) error
	RepositoriesWithBlob(ctx context.Context, d digest.Digest, limit int) ([]string, error)
	PutManifest(ctx context.Context, m *store.Manifest, tags []string) error
	Manifest(ctx context.Context, repo string, d digest.Digest) (*store.Manifest, error)
	Tag(ctx context.Context, repo, tag string) (*store.Tag, error)
	Tags(ctx context.Context, repo string, page store.Page) ([]string, error)
	DeleteTag(ctx context.Context, repo, tag string) error
	DeleteManifest(ctx context.Context, repo string, d digest.Digest) error
	Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]store.Manifest, error)
	Repositories(ctx context.Context, project string, page store.Page) ([]string, error)
}

// Projects looks projects up (see store.ProjectStore).
type Projects interface {
	// Project returns the named project, or ENOTFOUND.
	Project(ctx context.Context, name string) (*store.Project, error)
}

// Blobs is the part of the blob store the registry uses (see blob.Store).
type Blobs interface {
	Open(ctx context.Context, d digest.Digest) (blob.Reader, error)
	Stat(ctx context.Context, d digest.Digest) (blob.Info, error)
	Put(ctx context.Context, d digest.Digest, r io.Reader, beforePublish func(size int64) error) (int64, error)
	NewUpload(ctx context.Context, alg digest.Algorithm) (blob.Upload, error)
	Upload(ctx context.Context, id string) (blob.Upload, error)
	UploadStatus(ctx context.Context, id string) (blob.UploadInfo, error)
	DeleteUpload(ctx context.Context, id string) error
}

// Events receives notice of what happened to manifests, after it happened
// and only if it succeeded. Implementations must not block for long: they
// run on the request's goroutine. It is the seam for audit, scan-on-push and
// similar features.
type Events interface {
	// ManifestPushed is called after m was stored and tags point at it.
	ManifestPushed(ctx context.Context, p auth.Principal, m *store.Manifest, tags []string)
	// ManifestDeleted is called after manifest d (tag "") or tag of repo
	// was deleted.
	ManifestDeleted(ctx context.Context, p auth.Principal, repo string, d digest.Digest, tag string)
	// ManifestPulled is called after a GET of m was answered (200, 206 or
	// 304: a client revalidating its copy pulls it too); HEADs are not pulls.
	ManifestPulled(ctx context.Context, p auth.Principal, m *store.Manifest)
	// Refused is called when a request to perform actions on repo was
	// refused: the guard denied them to an identified principal (any
	// route; anonymous requests are challenged, not refused), or a
	// manifest push or delete failed after it was authorized. err says
	// why (EDENIED, or EUNAUTHORIZED with Detail "DENIED", for a denial).
	Refused(ctx context.Context, p auth.Principal, repo string, actions []string, err error)
}

// PullGate decides whether a manifest may be pulled: the registry door of
// the policy engine. The registry asks it about every manifest GET by a
// client without push rights on the repository (those with push rights
// may always read what they could overwrite, so CI can re-push a fixed
// image under the same tag); HEAD requests are not asked.
type PullGate interface {
	// AllowPull returns nil when the pull may go ahead; an EDENIED error
	// whose message explains the decision when it may not (answered 403
	// DENIED); any other error fails the request.
	AllowPull(ctx context.Context, pull Pull) error
	// AllowBlob is asked about every blob GET by a client without push
	// rights on the repository, with the repository and its project: nil
	// when the blob may be served, an EDENIED error (answered 403 DENIED)
	// when every manifest of the repository that references it is refused
	// to such clients, any other error fails the request.
	AllowBlob(ctx context.Context, blob BlobPull) error
}

// BlobPull is a blob GET the PullGate is asked about.
type BlobPull struct {
	Principal auth.Principal
	// Host is the registry host the client named (the request's Host).
	Host string
	// Repository is the repository's full name; Project its project.
	Repository, Project string
	// Digest is the blob's digest.
	Digest digest.Digest
}

// Pull is a manifest pull the PullGate is asked about.
type Pull struct {
	Principal auth.Principal
	// Host is the registry host the client named (the request's Host).
	Host string
	// Repository is the repository's full name; Project its project.
	Repository, Project string
	// Reference is the tag or digest as the client wrote it.
	Reference string
	// Manifest is the manifest it resolved to.
	Manifest *store.Manifest
}

// Options configures the handler. Store, Projects, Blobs, Guard and
// UploadSecret are required.
type Options struct {
	Store    Metadata
	Projects Projects
	Blobs    Blobs
	Guard    Guard
	// UploadSecret signs upload session URLs so that a session can only be
	// used in the repository it was started in. Every replica must use the
	// same secret, and it must survive restarts (sessions do). At least 32
	// bytes.
	UploadSecret []byte
	// Events, if not nil, is told about manifest pushes, deletes and pulls.
	Events Events
	// PullGate, if not nil, may refuse manifest pulls (see PullGate).
	PullGate PullGate
	// Logger is the base logger; nil discards.
	Logger *slog.Logger
	// LoggerFrom, if not nil, returns the request-scoped logger (carrying
	// the request id) from a request context, or fallback when the context
	// has none (reqlog.From fits).
	LoggerFrom func(ctx context.Context, fallback *slog.Logger) *slog.Logger
	// AllowSparse accepts image manifests whose layers, and indexes whose
	// child manifests, are not in the repository (partial mirrors, the
	// conformance suite's "sparse" data). The config blob is always
	// required. Off by default: a manifest naming a missing blob is refused
	// with MANIFEST_BLOB_UNKNOWN.
	AllowSparse bool
	// MaxManifestBytes caps manifest bodies; 0 means DefaultMaxManifestBytes.
	MaxManifestBytes int64
	// ManifestCacheBytes bounds an in-memory cache of manifest bytes by
	// digest (manifests up to MaxCachedManifestBytes), least recently used
	// out first; 0 disables it (DefaultManifestCacheBytes is customs
	// serve's default). Whether a manifest is in the repository is always
	// asked of Store: the cache only saves reading its bytes from Blobs.
	ManifestCacheBytes int64
	// Metrics, if set, receives the manifest cache's metrics (see
	// registerManifestCacheMetrics).
	Metrics prometheus.Registerer
}

// DefaultMaxManifestBytes is the manifest size limit when none is configured.
const DefaultMaxManifestBytes = 4 << 20

// MinUploadSecret is the shortest Options.UploadSecret accepted.
const MinUploadSecret = 32

// handler serves the distribution API.
type handler struct {
	meta        Metadata
	projects    Projects
	blobs       Blobs
	guard       Guard
	pullGate    PullGate
	secret      []byte
	events      Events
	log         *slog.Logger
	loggerFrom  func(context.Context, *slog.Logger) *slog.Logger
	allowSparse bool
	maxManifest int64
	manifests   *manifestCache // nil: disabled
}

// New returns the handler serving /v2/ with o. It panics if a required
// option is missing: that is a wiring bug, not a runtime condition.
func New(o Options) http.Handler {
	switch {
	case o.Store == nil:
		panic("registry: Options.Store is required")
	case o.Projects == nil:
		panic("registry: Options.Projects is required")
	case o.Blobs == nil:
		panic("registry: Options.Blobs is required")
	case o.Guard == nil:
		panic("registry: Options.Guard is required")
	case len(o.UploadSecret) < MinUploadSecret:
		panic("registry: Options.UploadSecret must be at least 32 bytes")
	case o.MaxManifestBytes < 0:
		panic("registry: Options.MaxManifestBytes must not be negative")
	case o.ManifestCacheBytes < 0:
		panic("registry: Options.ManifestCacheBytes must not be negative")
	}
	h := &handler{
		meta:        o.Store,
		projects:    o.Projects,
		blobs:       o.Blobs,
		guard:       o.Guard,
		pullGate:    o.PullGate,
		secret:      append([]byte(nil), o.UploadSecret...),
		events:      o.Events,
		log:         o.Logger,
		loggerFrom:  o.LoggerFrom,
		allowSparse: o.AllowSparse,
		maxManifest: o.MaxManifestBytes,
		manifests:   newManifestCache(o.ManifestCacheBytes),
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.maxManifest == 0 {
		h.maxManifest = DefaultMaxManifestBytes
	}
	if o.Metrics != nil && h.manifests != nil {
		registerManifestCacheMetrics(o.Metrics, h.manifests)
	}
	return h
}

// request is one request being served.
type request struct {
	w   http.ResponseWriter
	r   *http.Request
	ctx context.Context
	p   auth.Principal
	rt  route
	log *slog.Logger
	// scopes is what a 401 answer asks the client to obtain.
	scopes []auth.Access
}

// ServeHTTP implements http.Handler.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	q := &request{w: w, r: r, ctx: r.Context(), log: h.logger(r.Context())}
	if err := h.serve(q); err != nil {
		if apperr.Code(err) == apperr.EUNAUTHORIZED {
			w.Header().Set("WWW-Authenticate", h.guard.Challenge(r, q.scopes...))
		}
		writeError(w, q.log, err)
	}
}

func (h *handler) logger(ctx context.Context) *slog.Logger {
	if h.loggerFrom != nil {
		if l := h.loggerFrom(ctx, h.log); l != nil {
			return l
		}
	}
	return h.log
}

// serve authenticates, routes and dispatches q.
func (h *handler) serve(q *request) error {
	rt, routeErr := parseRoute(q.r.URL.Path)
	if routeErr == nil {
		q.rt = rt
		q.scopes = defaultScopes(q.r.Method, rt)
	}
	p, err := h.guard.Authenticate(q.r)
	if err != nil {
		return err
	}
	q.p = p
	if routeErr != nil {
		return routeErr
	}
	if !methodAllowed(rt.Kind, q.r.Method) {
		q.w.Header().Set("Allow", strings.Join(routeMethods[rt.Kind], ", "))
		return apperr.Errorf(apperr.EUNSUPPORTED, "method %s is not supported on this endpoint", q.r.Method).WithDetail(codeUnsupported)
	}
	switch rt.Kind {
	case routeBase:
		return h.serveBase(q)
	case routeCatalog:
		return h.serveCatalog(q)
	case routeTags:
		return h.serveTags(q)
	case routeManifest:
		return h.serveManifest(q)
	case routeBlob:
		return h.serveBlob(q)
	case routeUploads:
		return h.startUpload(q)
	case routeUpload:
		return h.serveUpload(q)
	case routeReferrers:
		return h.serveReferrers(q)
	}
	return errNoRoute
}

func methodAllowed(k routeKind, method string) bool {
	for _, m := range routeMethods[k] {
		if m == method {
			return true
		}
	}
	return false
}

// defaultScopes is what a 401 on rt asks for before any authorization
// decision refined it: what a client needs to complete the operation.
func defaultScopes(method string, rt route) []auth.Access {
	switch rt.Kind {
	case routeBase:
		return nil
	case routeCatalog:
		return []auth.Access{{Type: auth.TypeRegistry, Name: "catalog", Actions: []string{auth.ActionAll}}}
	}
	var actions []string
	switch method {
	case http.MethodGet, http.MethodHead:
		if rt.Kind == routeUpload {
			actions = []string{auth.ActionPull, auth.ActionPush}
		} else {
			actions = []string{auth.ActionPull}
		}
	case http.MethodDelete:
		if rt.Kind == routeUpload {
			actions = []string{auth.ActionPull, auth.ActionPush}
		} else {
			actions = []string{auth.ActionDelete}
		}
	default:
		actions = []string{auth.ActionPull, auth.ActionPush}
	}
	return []auth.Access{repoAccess(rt.Name, actions...)}
}

func repoAccess(name string, actions ...string) auth.Access {
	return auth.Access{Type: auth.TypeRepository, Name: name, Actions: actions}
}

// authorize checks that q's principal may do actions on q's repository,
// and tells Events when an identified principal is denied.
func (h *handler) authorize(q *request, actions ...string) error {
	err := h.guard.Authorize(q.ctx, q.p, repoAccess(q.rt.Name, actions...))
	if err != nil && h.events != nil && q.p.Kind != auth.KindAnonymous && isDenial(err) {
		h.events.Refused(q.ctx, q.p, q.rt.Name, actions, err)
	}
	return err
}

// isDenial reports whether err is the guard refusing an action (rather
// than asking for credentials).
func isDenial(err error) bool {
	return apperr.Is(err, apperr.EDENIED) || (apperr.Is(err, apperr.EUNAUTHORIZED) && apperr.Detail(err) == "DENIED")
}

// requireProject checks that the project a push goes into exists.
func (h *handler) requireProject(q *request) error {
	if _, err := h.projects.Project(q.ctx, q.rt.Project); err != nil {
		if apperr.Code(err) == apperr.ENOTFOUND {
			return missingProject(q.rt.Project)
		}
		return err
	}
	return nil
}

// serveBase answers the /v2/ version check. It requires an authenticated
// principal so that clients can verify credentials against it.
func (h *handler) serveBase(q *request) error {
	if q.p.Kind == auth.KindAnonymous {
		return apperr.Errorf(apperr.EUNAUTHORIZED, "authentication required")
	}
	q.w.Header().Set("Content-Type", "application/json")
	q.w.Header().Set("Content-Length", "2")
	q.w.WriteHeader(http.StatusOK)
	if q.r.Method != http.MethodHead {
		_, _ = io.WriteString(q.w, "{}")
	}
	return nil
}

// notFoundAs gives an ENOTFOUND error the OCI code detail; other errors
// pass unchanged.
func notFoundAs(err error, detail, format string, args ...any) error {
	if apperr.Code(err) == apperr.ENOTFOUND {
		e := apperr.Errorf(apperr.ENOTFOUND, format, args...).WithDetail(detail)
		e.Err = err
		return e
	}
	return err
}

// etag is the entity tag of content-addressed data.
func etag(d digest.Digest) string { return `"` + d.String() + `"` }
