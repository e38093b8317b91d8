// Package api serves customs' JSON API (v1) under /api/v1/. Every error is
// answered as {"error":{"code":..,"message":..}} with the HTTP status its
// application error code maps to (see writeError), so clients can rely on
// both.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/rbac"
	"github.com/customs-dev/customs/internal/reqlog"
	"github.com/customs-dev/customs/internal/store"
)

// Authenticator identifies callers and decides what they may do (see
// auth.Service, which implements it).
type Authenticator interface {
	// AuthenticateAPI returns the identity behind r as the store knows it
	// now (never a token principal): auth.Anonymous without credentials,
	// an EUNAUTHORIZED error for bad ones.
	AuthenticateAPI(r *http.Request) (auth.Principal, error)
	// ProjectPermissions returns what identity p may do in project, from
	// the rbac table.
	ProjectPermissions(ctx context.Context, p auth.Principal, project string) (rbac.Set, error)
	// CheckPassword verifies a user's current password (limited and
	// audited like a login); EUNAUTHORIZED if wrong.
	CheckPassword(r *http.Request, name, password string) error
	// HashPassword hashes a new password for storage.
	HashPassword(password string) (string, error)
	// RobotSecretHash returns the stored form of a robot's secret.
	RobotSecretHash(name, secret string) (string, error)
	// ForgetPermissions drops cached permission decisions after a change
	// of memberships or robots.
	ForgetPermissions()
	// ClientIP returns the address of r's client, for audit events.
	ClientIP(r *http.Request) string
	// EndUserSessions ends every login session and refresh token of user
	// name issued before, audited as done by by for reason ("" for an
	// explicit request). ENOTFOUND if the user does not exist.
	EndUserSessions(ctx context.Context, r *http.Request, by auth.Principal, name, reason string) error
}

// Store is what the API reads and writes.
type Store interface {
	store.ProjectStore
	store.UserStore
	store.MemberStore
	// UserGroups returns an LDAP or OIDC user's directory groups.
	UserGroups(ctx context.Context, user string) ([]string, error)
	store.RobotStore
	Repositories(ctx context.Context, project string, page store.Page) ([]string, error)
	// DeleteRepository: see store.RegistryStore.
	DeleteRepository(ctx context.Context, name string) (store.RepositoryDeletion, error)
}

// Options configures the API handler. Store and Auth are required.
type Options struct {
	Store  Store
	Auth   Authenticator
	Logger *slog.Logger
	// Recorder receives audit events of user, membership, robot and
	// project changes (and refusals of them); default audit.Discard.
	Recorder audit.Recorder
	// Clock returns the current time (robot expiry, audit times); default
	// time.Now.
	Clock func() time.Time
	// AuditLog, if not nil, is served under /api/v1/audit/ (query, export,
	// verify, purge).
	AuditLog AuditLog
	// Version is reported by /api/v1/system/info.
	Version string
	// Vulndb, if not nil, is served under /api/v1/vulndb.
	Vulndb VulnDB
	// Scans and ScanStore, if not nil, serve scan reports, SBOMs, scan
	// requests and the queue (see scanRoutes), and projects' scanOnPush.
	Scans     Scanner
	ScanStore ScanStore
	// Policies, if not nil, serves /api/v1/policies and the projects' CVE
	// allowlists (see policyRoutes).
	Policies store.PolicyStore
	// Allowlists, if not nil, serves /api/v1/system/allowlist.
	Allowlists store.SystemAllowlistStore
	// Evaluators, if its Registry is not nil, serves POST
	// /api/v1/policies/evaluate (the what-if view).
	Evaluators Evaluators
	// Workloads, if not nil, serves GET /api/v1/workloads/refused (the last
	// audit of running workloads).
	Workloads store.WorkloadAuditStore
	// TokenKeys, if not nil, serves /api/v1/system/token-keys (list,
	// :rotate, :prune); TokenKeyMinAge is the refresh-token lifetime, the
	// least age of a key file :prune removes.
	TokenKeys      TokenKeys
	TokenKeyMinAge time.Duration
}

// maxBody caps JSON request bodies.
const maxBody = 1 << 20

type handler struct {
	opts Options
}

// New returns the API handler, to be mounted at /api/.
func New(opts Options) http.Handler {
	if opts.Recorder == nil {
		opts.Recorder = audit.Discard{}
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{opts: opts}
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/system/info", h.wrap(h.systemInfo))
	mux.Handle("GET /api/v1/projects", h.wrap(h.listProjects))
	mux.Handle("POST /api/v1/projects", h.wrap(h.createProject))
	mux.Handle("GET /api/v1/projects/{name}", h.wrap(h.getProject))
	mux.Handle("PATCH /api/v1/projects/{name}", h.wrap(h.updateProject))
	mux.Handle("DELETE /api/v1/projects/{name}", h.wrap(h.deleteProject))
	mux.Handle("GET /api/v1/projects/{name}/repositories", h.wrap(h.listRepositories))
	mux.Handle("DELETE /api/v1/projects/{name}/repositories/{rest...}", h.wrap(h.deleteRepository))
	h.openapiRoutes(mux)
	h.userRoutes(mux)
	h.cliSecretRoutes(mux)
	h.memberRoutes(mux)
	h.robotRoutes(mux)
	if opts.AuditLog != nil {
		h.auditRoutes(mux)
	}
	if opts.Vulndb != nil {
		h.vulndbRoutes(mux)
	}
	if opts.Scans != nil && opts.ScanStore != nil {
		h.scanRoutes(mux)
		h.imageRoutes(mux)
	}
	if opts.Policies != nil {
		h.policyRoutes(mux)
	}
	if opts.Allowlists != nil {
		h.systemAllowlistRoutes(mux)
	}
	if opts.Evaluators.Registry != nil {
		h.evaluateRoutes(mux)
	}
	if opts.Workloads != nil {
		h.workloadRoutes(mux)
	}
	if opts.TokenKeys != nil {
		h.tokenKeyRoutes(mux)
	}
	mux.Handle("/api/", h.wrap(func(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
		return apperr.Errorf(apperr.ENOTFOUND, "no API endpoint %s %s", r.Method, r.URL.Path)
	}))
	return mux
}

type apiFunc func(w http.ResponseWriter, r *http.Request, p auth.Principal) error

// wrap authenticates the request and writes any returned error.
func (h *handler) wrap(fn apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := h.opts.Auth.AuthenticateAPI(r)
		if err == nil {
			err = fn(w, r, p)
		}
		if err != nil {
			h.writeError(w, r, err)
		}
	})
}

// status maps an application error code to its HTTP status: the one place
// the API does so.
func status(code string) int {
	switch code {
	case apperr.ENOTFOUND:
		return http.StatusNotFound
	case apperr.EINVALID:
		return http.StatusBadRequest
	case apperr.ECONFLICT:
		return http.StatusConflict
	case apperr.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case apperr.EDENIED:
		return http.StatusForbidden
	case apperr.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case apperr.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case "TOOMANYREQUESTS": // see writeError
		return http.StatusTooManyRequests
	case apperr.EUNSUPPORTED:
		return http.StatusUnsupportedMediaType
	case apperr.ERANGE:
		return http.StatusRequestedRangeNotSatisfiable
	}
	return http.StatusInternalServerError
}

// ErrorBody is the JSON shape of every API error.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := apperr.Code(err)
	if code == apperr.EINTERNAL {
		reqlog.From(r.Context(), h.opts.Logger).Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if code == apperr.EUNAUTHORIZED {
		w.Header().Set("WWW-Authenticate", `Basic realm="customs"`)
	}
	st := status(code)
	if code == apperr.EUNAVAILABLE && apperr.Detail(err) == "TOOMANYREQUESTS" {
		st = status("TOOMANYREQUESTS")
		secs := max(1, int64((apperr.RetryAfter(err)+time.Second-1)/time.Second))
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	var body ErrorBody
	body.Error.Code = code
	body.Error.Message = apperr.Message(err)
	writeJSON(w, st, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// decode reads a JSON body strictly into v.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		var me *http.MaxBytesError
		switch {
		case errors.As(err, &me):
			return apperr.Errorf(apperr.ETOOLARGE, "request body is larger than %d bytes", me.Limit)
		case errors.Is(err, io.EOF):
			return apperr.Errorf(apperr.EINVALID, "request body is empty; expected JSON")
		case errors.As(err, &se):
			return apperr.Errorf(apperr.EINVALID, "request body is not valid JSON at offset %d", se.Offset)
		case errors.As(err, &te):
			return apperr.Errorf(apperr.EINVALID, "field %q must be a %s", te.Field, te.Type)
		}
		return apperr.Errorf(apperr.EINVALID, "invalid request body: %v", err)
	}
	return nil
}

// requireUser refuses anonymous callers.
func requireUser(p auth.Principal) error {
	if p.Kind == auth.KindAnonymous {
		return apperr.Errorf(apperr.EUNAUTHORIZED, "authentication required")
	}
	return nil
}

// page reads n and last query parameters.
func page(r *http.Request) (store.Page, error) {
	var pg store.Page
	if s := r.URL.Query().Get("n"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return pg, apperr.Errorf(apperr.EINVALID, "query parameter n must be a non-negative integer")
		}
		pg.N = n
	}
	pg.Last = r.URL.Query().Get("last")
	return pg, nil
}

func (h *handler) systemInfo(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	writeJSON(w, http.StatusOK, map[string]string{"version": h.opts.Version})
	return nil
}

// Project is the API representation of a project.
type Project struct {
	Name      string    `json:"name"`
	Public    bool      `json:"public"`
	CreatedAt time.Time `json:"createdAt"`
	// ScanOnPush says whether pushed manifests are scanned (shown by GET
	// and PATCH of one project when the server scans).
	ScanOnPush *bool `json:"scanOnPush,omitempty"`
	// SBOMReferrer says whether scanned images get their SBOM stored as an
	// OCI referrer (shown like ScanOnPush).
	SBOMReferrer *bool `json:"sbomReferrer,omitempty"`
	// Security are the project's security settings as Harbor users know
	// them, kept as the project's settings policy (shown by GET and PATCH
	// of one project when the server keeps policies).
	Security *ProjectSecurity `json:"security,omitempty"`
}

func toProject(p store.Project) Project {
	return Project{Name: p.Name, Public: p.Public, CreatedAt: p.CreatedAt}
}

// projectName is one repository path component (distribution-spec grammar).
var projectName = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)

// ValidateProjectName returns an EINVALID error explaining the naming rule
// when name is not a valid project name.
func ValidateProjectName(name string) error {
	if len(name) == 0 || len(name) > 128 || !projectName.MatchString(name) {
		return apperr.Errorf(apperr.EINVALID,
			"invalid project name %q: use 1-128 lowercase letters and digits, separated by '.', '_', '__' or '-', starting and ending with a letter or digit", name)
	}
	return nil
}

func reqLogger(r *http.Request, h *handler) *slog.Logger {
	return reqlog.From(r.Context(), h.opts.Logger)
}
