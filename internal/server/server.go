// Package server wires customs together: configuration to stores, stores to
// services, services to one http.Handler; and it starts and stops the
// listener and the background workers.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/audit/registryaudit"
	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/blob"
	blobfs "github.com/customs-dev/customs/internal/blob/fs"
	"github.com/customs-dev/customs/internal/certs"
	"github.com/customs-dev/customs/internal/config"
	"github.com/customs-dev/customs/internal/decide"
	"github.com/customs-dev/customs/internal/gc"
	"github.com/customs-dev/customs/internal/policy"
	"github.com/customs-dev/customs/internal/pulldoor"
	"github.com/customs-dev/customs/internal/registry"
	"github.com/customs-dev/customs/internal/reqlog"
	"github.com/customs-dev/customs/internal/scan"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/store/postgres"
	"github.com/customs-dev/customs/internal/store/sqlite"
	"github.com/customs-dev/customs/internal/vulndb"
)

// Server is a configured customs instance.
type Server struct {
	cfg     config.Config
	logger  *slog.Logger
	out     io.Writer
	version string

	Store store.Store
	Blobs blob.Store
	Auth  *auth.Service
	GC    *gc.Collector
	// Audit records the audit trail; Serve flushes it on shutdown.
	Audit *audit.Writer
	// Vulndb is the vulnerability database.
	Vulndb *vulndb.Service
	// Scanner scans pushed images and keeps their reports current.
	Scanner *scan.Scanner
	// RegistryDecider decides pulls at the registry door: project
	// policies only, policy.registryDefault for images none matches.
	// RuntimeDecider decides where images run (every stored policy,
	// policy.default): the what-if view with an environment or namespace,
	// and the Kubernetes doors.
	RegistryDecider, RuntimeDecider *decide.Decider
	// pullDoor is the registry's pull door over RegistryDecider (also the
	// what-if view's registry evaluator).
	pullDoor *pulldoor.Door

	// keys are the token signing keys (data dir's keys/), reloaded by
	// Serve every keyReloadInterval.
	keys         *auth.KeyDir
	uploadSecret []byte
	oidc         http.Handler // nil without auth.oidc
	metrics      *prometheus.Registry
	handler      http.Handler
	tls          *tls.Config
	caFile       string // set when the certificate was generated
	ready        bool
	readyMu      sync.RWMutex
	// admissionAddr is the admission listener's address once serving.
	admissionAddr atomic.Value
}

// Options carries what the server does not read from its configuration.
type Options struct {
	Logger *slog.Logger
	// Out receives messages meant for the operator's eyes once (the
	// generated admin password, TLS trust instructions).
	Out io.Writer
	// AdminPassword is the initial admin password (CUSTOMS_ADMIN_PASSWORD);
	// a random one is generated and printed when empty.
	AdminPassword string
	// Version is reported by the API.
	Version string
}

// OpenStore opens the metadata database the configuration names.
func OpenStore(ctx context.Context, cfg config.Config, logger *slog.Logger) (store.Store, error) {
	switch cfg.Database.Driver {
	case "postgres":
		return postgres.Open(ctx, cfg.Database.DSN, logger)
	default:
		path := cfg.Database.DSN
		if path == "" {
			path = filepath.Join(cfg.DataDir, "customs.db")
		}
		return sqlite.Open(ctx, path, logger)
	}
}

// OpenBlobs opens the blob store in the data directory.
func OpenBlobs(cfg config.Config, logger *slog.Logger) (blob.Store, error) {
	return blobfs.New(filepath.Join(cfg.DataDir, "blobs"), blobfs.Options{Logger: logger})
}

// New opens the stores named by cfg (which must be valid), creates the admin
// user on first start and builds the HTTP handler.
func New(ctx context.Context, cfg config.Config, opts Options) (*Server, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	s := &Server{cfg: cfg, logger: opts.Logger, out: opts.Out, version: opts.Version}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", cfg.DataDir, err)
	}
	var err error
	if s.Store, err = OpenStore(ctx, cfg, s.logger); err != nil {
		return nil, fmt.Errorf("opening the %s database: %w", cfg.Database.Driver, err)
	}
	if s.Blobs, err = OpenBlobs(cfg, s.logger); err != nil {
		s.Store.Close()
		return nil, fmt.Errorf("opening blob storage: %w", err)
	}
	s.metrics = prometheus.NewRegistry()
	s.Audit = audit.NewWriter(audit.WriterOptions{Store: s.Store, Logger: s.logger.With("component", "audit"), Registerer: s.metrics,
		Skip: cfg.Audit.Skip})
	if err := recordAuditSettings(ctx, s.Store, s.Audit, cfg.Audit); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.initAuth(ctx, opts.AdminPassword); err != nil {
		s.Close()
		return nil, err
	}
	if s.uploadSecret, err = loadOrCreateSecret(filepath.Join(cfg.DataDir, "upload-secret")); err != nil {
		s.Close()
		return nil, fmt.Errorf("upload session secret: %w", err)
	}
	if err := s.initTLS(); err != nil {
		s.Close()
		return nil, err
	}
	s.GC = gc.New(gc.Options{
		Store: s.Store, Blobs: s.Blobs, Logger: s.logger.With("component", "gc"),
		GracePeriod: cfg.GC.GracePeriod.Std(), UploadMaxAge: cfg.GC.UploadMaxAge.Std(),
	})
	if s.Vulndb, err = OpenVulnDB(cfg, s.Store, s.logger.With("component", "vulndb")); err != nil {
		s.Close()
		return nil, fmt.Errorf("vulnerability database: %w", err)
	}
	if s.Scanner, err = s.openScanner(); err != nil {
		s.Close()
		return nil, fmt.Errorf("scanner: %w", err)
	}
	s.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics.MustRegister(newStorageCollector(s.Store))
	s.initDeciders()
	s.handler = s.routes()
	return s, nil
}

// initDeciders makes the registry's and the runtime's deciders over the
// stored policies, scans and system allowlist.
func (s *Server) initDeciders() {
	outcome := func(v string) policy.Outcome {
		if v == "allow" {
			return policy.Allowed
		}
		return policy.Denied
	}
	s.RegistryDecider = decide.New(decide.Options{Store: s.Store, Allowlists: s.Store, Select: pulldoor.Selects,
		Config: policy.Config{Default: outcome(s.cfg.Policy.RegistryDefault)}, Logger: s.logger.With("component", "decide", "door", "registry")})
	// The Kubernetes doors ask the runtime decider on every admission
	// request: its cache keeps decisions as long as admission.cache says.
	s.pullDoor = pulldoor.New(pulldoor.Options{Decider: s.RegistryDecider, Manifests: s.Store,
		Logger: s.logger.With("component", "pulldoor")})
	s.RuntimeDecider = decide.New(decide.Options{Store: s.Store, Allowlists: s.Store,
		Config: policy.Config{Default: outcome(s.cfg.Policy.Default)}, Logger: s.logger.With("component", "decide", "door", "runtime"),
		Cache: policy.NewCache(policy.CacheConfig{AllowTTL: s.cfg.Admission.Cache.AllowTTL.Std(), DenyTTL: s.cfg.Admission.Cache.DenyTTL.Std()})})
}

func (s *Server) initAuth(ctx context.Context, adminPassword string) error {
	keys, err := auth.OpenKeyDir(filepath.Join(s.cfg.DataDir, "keys"), auth.KeyDirOptions{Logger: s.logger.With("component", "keys")})
	if err != nil {
		return fmt.Errorf("token signing keys: %w", err)
	}
	s.keys = keys
	pepper, err := loadOrCreateSecret(filepath.Join(s.cfg.DataDir, "robot-pepper"))
	if err != nil {
		return fmt.Errorf("robot secret pepper: %w", err)
	}
	dir, dirTTL, err := s.directory()
	if err != nil {
		return err
	}
	s.Auth, err = auth.NewService(auth.Options{
		Users:             s.Store,
		Projects:          s.Store,
		Members:           s.Store,
		Robots:            s.Store,
		RobotPepper:       pepper,
		UserGroups:        s.Store,
		Directory:         dir,
		DirectoryCacheTTL: dirTTL,
		Limiter:           auth.NewLoginLimiter(auth.LimiterOptions{}),
		Recorder:          s.Audit,
		Keys:              keys,
		Service:           s.cfg.Auth.Service,
		Issuer:            s.cfg.Auth.Issuer,
		TokenTTL:          s.cfg.Auth.TokenTTL.Std(),
		ExternalURL:       s.cfg.ExternalURL,
		TrustProxyHeaders: s.cfg.Auth.TrustProxyHeaders,
		Logger:            s.logger.With("component", "auth"),
	})
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if s.oidc, err = s.oidcHandler(); err != nil {
		return err
	}
	generated, err := auth.EnsureAdmin(ctx, s.Store, adminPassword, s.logger)
	if err != nil {
		return fmt.Errorf("creating the admin user: %w", err)
	}
	if generated != "" {
		fmt.Fprintf(s.out, "\ncustoms created the user \"admin\" with this password (shown once; set CUSTOMS_ADMIN_PASSWORD to choose it):\n\n    %s\n\n", generated)
	}
	return nil
}

func (s *Server) initTLS() error {
	switch {
	case s.cfg.TLS.CertFile != "":
		r, err := certs.NewReloader(s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile, s.cfg.TLS.ReloadInterval.Std(), func(err error) {
			if err != nil {
				s.logger.Error("reloading TLS certificate failed; keeping the previous one", "err", err)
			} else {
				s.logger.Info("TLS certificate reloaded", "cert", s.cfg.TLS.CertFile)
			}
		})
		if err != nil {
			return err
		}
		s.tls = &tls.Config{GetCertificate: r.GetCertificate, MinVersion: tls.VersionTLS12}
	case s.cfg.TLS.Generate:
		hosts := s.cfg.TLS.Hosts
		if len(hosts) == 0 {
			hosts = certs.DefaultHosts()
		}
		g, err := certs.Generate(filepath.Join(s.cfg.DataDir, "tls"), hosts, time.Now())
		if err != nil {
			return fmt.Errorf("generating TLS certificate: %w", err)
		}
		r, err := certs.NewReloader(g.CertFile, g.KeyFile, time.Minute, nil)
		if err != nil {
			return err
		}
		s.tls = &tls.Config{GetCertificate: r.GetCertificate, MinVersion: tls.VersionTLS12}
		s.caFile = g.CAFile
	}
	return nil
}

// routes builds the one handler: registry, token service, API, health and
// metrics.
func (s *Server) routes() http.Handler {
	reg := registry.New(registry.Options{
		Store:            s.Store,
		Projects:         s.Store,
		Blobs:            s.Blobs,
		Guard:            s.Auth,
		UploadSecret:     s.uploadSecret,
		Logger:           s.logger,
		LoggerFrom:       reqlog.From,
		AllowSparse:      s.cfg.Registry.AllowSparse,
		MaxManifestBytes: s.cfg.Registry.MaxManifestBytes,
		// Spares pulls the blob-store read of manifest bytes.
		ManifestCacheBytes: s.cfg.Registry.ManifestCacheBytes,
		Metrics:            s.metrics,
		Events:             fanOut{registryaudit.New(s.Audit), scanOnPush{s.Scanner}},
		// Project policies refuse pulls; an image none matches gets
		// policy.registryDefault (allow unless configured otherwise).
		PullGate: s.pullDoor,
	})
	mux := http.NewServeMux()
	mux.Handle("/v2/", reg)
	mux.Handle("/v2", http.RedirectHandler("/v2/", http.StatusMovedPermanently))
	mux.Handle("/service/token", s.Auth.TokenHandler())
	if s.oidc != nil {
		mux.Handle("/api/v1/auth/oidc/", s.oidc)
	}
	mux.Handle("/api/", api.New(api.Options{Store: s.Store, Auth: s.Auth, Logger: s.logger, Version: s.version,
		Recorder: s.Audit, AuditLog: s.Store, Vulndb: s.Vulndb, Scans: s.Scanner, ScanStore: s.Store, Policies: s.Store, Allowlists: s.Store,
		Evaluators: api.Evaluators{Registry: s.pullDoor, Hosts: s.ownHosts(), Runtime: s.RuntimeDecider, Tags: s.Store},
		Workloads:  s.Store, TokenKeys: s.keys, TokenKeyMinAge: s.Auth.RefreshTTL()}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{Registry: s.metrics}))
	return instrument(withAuditClient(mux, s.Auth.ClientIP), s.logger, newHTTPMetrics(s.metrics))
}

// readyz answers 200 when the server accepts traffic and its database
// answers, 503 otherwise (during startup and shutdown).
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	s.readyMu.RLock()
	ready := s.ready
	s.readyMu.RUnlock()
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "not ready: starting or shutting down\n")
		return
	}
	if err := s.Store.Ping(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "not ready: database does not answer\n")
		return
	}
	io.WriteString(w, "ready\n")
}

func (s *Server) setReady(v bool) {
	s.readyMu.Lock()
	s.ready = v
	s.readyMu.Unlock()
}

// AdmissionAddr returns the address the admission webhook listens on once
// Serve started it ("" before, or when admission.addr is empty).
func (s *Server) AdmissionAddr() string {
	a, _ := s.admissionAddr.Load().(string)
	return a
}

// Handler returns the server's HTTP handler (for tests that serve it
// themselves).
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves on ln until ctx is cancelled, then shuts down gracefully:
// it stops accepting, lets in-flight requests (uploads) finish within the
// configured shutdown timeout, and stops the background workers.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	scheme := "http"
	if s.tls != nil {
		srv.TLSConfig = s.tls
		ln = tls.NewListener(ln, s.tls)
		scheme = "https"
	}
	if s.caFile != "" {
		fmt.Fprint(s.out, certs.TrustInstructions(s.caFile, ln.Addr().String()))
	}
	var adm *admissionListener
	if s.cfg.Admission.Addr != "" {
		var err error
		if adm, err = s.startAdmission(ctx, ln.Addr()); err != nil {
			return err
		}
		s.admissionAddr.Store(adm.addr.String())
	}

	workers, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	if iv := s.cfg.GC.Interval.Std(); iv > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); s.runGCLoop(workers, iv) }()
	}
	if iv := s.cfg.Vulndb.UpdateInterval.Std(); iv > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); s.runVulnUpdateLoop(workers, iv) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); s.runScanner(workers) }()
	wg.Add(1)
	go func() { defer wg.Done(); s.keys.Watch(workers, keyReloadInterval) }()
	if adm != nil {
		if err := s.startWorkloadAudit(workers, &wg, adm.webhook); err != nil {
			s.logger.Error("workload audit not started", "err", err)
		}
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.setReady(true)
	s.logger.Info("customs is serving", "addr", ln.Addr().String(), "scheme", scheme, "data_dir", s.cfg.DataDir, "database", s.cfg.Database.Driver)

	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	s.setReady(false)
	if d := s.cfg.ShutdownDelay.Std(); d > 0 && serveErr == nil {
		s.logger.Info("stopping: /readyz answers 503; still serving while load balancers drain", "delay", d)
		select {
		case serveErr = <-errc:
		case <-time.After(d):
		}
	}
	s.logger.Info("shutting down: finishing in-flight requests", "timeout", s.cfg.ShutdownTimeout.Std())
	shutCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout.Std())
	defer cancel()
	shutErr := srv.Shutdown(shutCtx)
	if adm != nil {
		shutErr = errors.Join(shutErr, adm.shutdown(shutCtx))
	}
	stopWorkers()
	wg.Wait()
	s.Vulndb.Close()
	// Every request and worker has finished: what they recorded is queued.
	auditCtx, cancelAudit := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout.Std())
	defer cancelAudit()
	auditErr := s.Audit.Close(auditCtx)
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	if shutErr != nil {
		s.logger.Warn("shutdown timed out; some requests were cut off", "err", shutErr)
	}
	return errors.Join(serveErr, shutErr, auditErr)
}

// keyReloadInterval is how often Serve checks the token key directory for
// files placed, replaced or removed by hand or by another replica: a new
// key signs within this time (docs/access.md).
const keyReloadInterval = 30 * time.Second

func (s *Server) runGCLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.GC.Run(ctx); err != nil && ctx.Err() == nil {
				s.logger.Error("scheduled garbage collection failed", "err", err)
			}
		}
	}
}

// Close releases the stores.
func (s *Server) Close() error {
	// Serve closed the writer already, unless it never ran.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if s.Vulndb != nil {
		s.Vulndb.Close()
	}
	return errors.Join(s.Audit.Close(ctx), s.Store.Close())
}

// ownHosts are the registry host names, besides a request's Host, that
// name this server for the what-if view: externalURL's host and
// admission.registryHosts.
func (s *Server) ownHosts() []string {
	hosts := append([]string(nil), s.cfg.Admission.RegistryHosts...)
	if u, err := url.Parse(s.cfg.ExternalURL); err == nil && u.Host != "" {
		hosts = append(hosts, u.Host)
	}
	return hosts
}
