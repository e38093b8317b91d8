package server

import (
	"context"

	"github.com/opencontainers/go-digest"

	"github.com/customs-dev/customs/internal/auth"
	"github.com/customs-dev/customs/internal/registry"
	"github.com/customs-dev/customs/internal/scan"
	"github.com/customs-dev/customs/internal/scan/extract"
	"github.com/customs-dev/customs/internal/store"
)

// openScanner returns the scan service over the server's stores and
// vulnerability database.
func (s *Server) openScanner() (*scan.Scanner, error) {
	return scan.New(scan.Options{
		Store:            s.Store,
		Blobs:            s.Blobs,
		VulnDB:           s.Vulndb,
		Logger:           s.logger.With("component", "scan"),
		Registerer:       s.metrics,
		Workers:          s.cfg.Scan.Workers,
		MaxAttempts:      s.cfg.Scan.MaxAttempts,
		JobTimeout:       s.cfg.Scan.JobTimeout.Std(),
		RematchInterval:  s.cfg.Scan.RematchInterval.Std(),
		MaxManifestBytes: s.cfg.Registry.MaxManifestBytes,
		Extract:          extract.DefaultConfig(),
		PushSBOM:         s.cfg.Scan.PushSBOM,
		ToolVersion:      s.version,
	})
}

// runScanner runs the scan workers until ctx ends, unless scan.workers is
// 0 (this replica only queues scans).
func (s *Server) runScanner(ctx context.Context) {
	if s.cfg.Scan.Workers == 0 {
		return
	}
	if err := s.Scanner.Run(ctx); err != nil {
		s.logger.Error("scan workers stopped", "err", err)
	}
}

// fanOut tells each of its registry.Events about everything.
type fanOut []registry.Events

func (f fanOut) ManifestPushed(ctx context.Context, p auth.Principal, m *store.Manifest, tags []string) {
	for _, ev := range f {
		ev.ManifestPushed(ctx, p, m, tags)
	}
}

func (f fanOut) ManifestDeleted(ctx context.Context, p auth.Principal, repo string, d digest.Digest, tag string) {
	for _, ev := range f {
		ev.ManifestDeleted(ctx, p, repo, d, tag)
	}
}

func (f fanOut) ManifestPulled(ctx context.Context, p auth.Principal, m *store.Manifest) {
	for _, ev := range f {
		ev.ManifestPulled(ctx, p, m)
	}
}

func (f fanOut) Refused(ctx context.Context, p auth.Principal, repo string, actions []string, err error) {
	for _, ev := range f {
		ev.Refused(ctx, p, repo, actions, err)
	}
}

// scanOnPush is the registry.Events of the scanner: a pushed manifest is
// queued for scanning (scan.Scanner.Pushed decides whether).
type scanOnPush struct{ s *scan.Scanner }

func (e scanOnPush) ManifestPushed(ctx context.Context, _ auth.Principal, m *store.Manifest, _ []string) {
	e.s.Pushed(ctx, m)
}

func (scanOnPush) ManifestDeleted(context.Context, auth.Principal, string, digest.Digest, string) {}
func (scanOnPush) ManifestPulled(context.Context, auth.Principal, *store.Manifest)                {}
func (scanOnPush) Refused(context.Context, auth.Principal, string, []string, error)               {}
