package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"github.com/customs-dev/customs/internal/admission"
	"github.com/customs-dev/customs/internal/certs"
	"github.com/customs-dev/customs/internal/kube"
)

// admissionListener is the running admission webhook listener.
type admissionListener struct {
	srv    *http.Server
	addr   net.Addr
	caFile string // the generated CA; "" with given certificate files
	// webhook answers the reviews (and the audit of running workloads).
	webhook *admission.Webhook
	errc    chan error
	stop    context.CancelFunc // stops the certificate renewal loop
}

// registryHosts returns the configured registry hosts, or the defaults:
// 127.0.0.1:PORT and localhost:PORT of the registry listener, and the
// external URL's host.
func (s *Server) registryHosts(registry net.Addr) []string {
	a := s.cfg.Admission
	if len(a.RegistryHosts) > 0 {
		return a.RegistryHosts
	}
	var hosts []string
	if tcp, ok := registry.(*net.TCPAddr); ok {
		port := fmt.Sprint(tcp.Port)
		hosts = append(hosts, "127.0.0.1:"+port, "localhost:"+port)
	}
	if s.cfg.ExternalURL != "" {
		if u, err := url.Parse(s.cfg.ExternalURL); err == nil && u.Host != "" {
			hosts = append(hosts, u.Host)
		}
	}
	return hosts
}

// newWebhook builds the admission webhook from the configuration: the
// runtime decider (every stored policy; policy.default for an image none
// matches), the registry resolver behind a cache, environments (namespace
// labels when cluster credentials exist) and exemptions.
func (s *Server) newWebhook(registry net.Addr) (*admission.Webhook, error) {
	a := s.cfg.Admission
	logger := s.logger.With("component", "admission")
	hosts := s.registryHosts(registry)
	resolver := admission.NewCachingResolver(&admission.RegistryResolver{Store: s.Store, Hosts: hosts,
		Remote: a.ResolveExternal, RemoteTimeout: a.ResolveTimeout.Std()}, a.Cache.AllowTTL.Std(), a.Cache.DenyTTL.Std(), nil)
	var labeler admission.NamespaceLabeler
	client, err := kube.Connect(a.Kubeconfig, 0)
	switch {
	case errors.Is(err, kube.ErrNoCluster):
		logger.Info("admission: no cluster credentials; namespace environments come from admission.environments only")
	case err != nil:
		return nil, fmt.Errorf("admission.kubeconfig: %w", err)
	default:
		labeler = kube.NewNamespaceLabels(client, 30*time.Second, nil)
	}
	envs, err := admission.NewEnvironments(a.Environments, a.EnvironmentLabel, labeler)
	if err != nil {
		return nil, fmt.Errorf("admission: %w", err)
	}
	ex, err := admission.NewExemptions(a.ExemptNamespaces)
	if err != nil {
		return nil, fmt.Errorf("admission: %w", err)
	}
	logger.Info("admission: configured", "registryHosts", hosts, "environments", a.Environments.String(),
		"exempt", a.ExemptNamespaces, "resolveExternal", a.ResolveExternal)
	return admission.New(admission.Options{Decider: s.RuntimeDecider, Resolver: resolver, Environments: envs, Exempt: ex, Logger: logger,
		Registerer: s.metrics})
}

// startAdmission starts the admission webhook's TLS listener on
// admission.addr, with the configured certificate or one generated into
// <dataDir>/admission-tls (renewed daily when it nears expiry).
func (s *Server) startAdmission(ctx context.Context, registry net.Addr) (*admissionListener, error) {
	a := s.cfg.Admission
	wh, err := s.newWebhook(registry)
	if err != nil {
		return nil, err
	}
	logger := s.logger.With("component", "admission")
	certFile, keyFile := a.TLS.Cert, a.TLS.Key
	al := &admissionListener{errc: make(chan error, 1), webhook: wh}
	renewCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	al.stop = stop
	if certFile == "" {
		dir := filepath.Join(s.cfg.DataDir, "admission-tls")
		g, err := admission.EnsureTLS(dir, a.DNSNames, time.Now())
		if err != nil {
			stop()
			return nil, fmt.Errorf("admission TLS certificate in %s: %w", dir, err)
		}
		certFile, keyFile, al.caFile = g.CertFile, g.KeyFile, g.CAFile
		go func() {
			t := time.NewTicker(24 * time.Hour)
			defer t.Stop()
			for {
				select {
				case <-renewCtx.Done():
					return
				case <-t.C:
					g, err := admission.EnsureTLS(dir, a.DNSNames, time.Now())
					if err != nil {
						logger.Error("admission: renewing the TLS certificate failed", "err", err)
					} else if g.CAIssued {
						logger.Warn("admission: a new CA was generated; update the webhook configurations' caBundle", "ca", g.CAFile)
					} else if g.Issued {
						logger.Info("admission: serving certificate renewed", "cert", g.CertFile)
					}
				}
			}
		}()
	}
	reloader, err := certs.NewReloader(certFile, keyFile, 10*time.Second, func(err error) {
		if err != nil {
			logger.Error("admission: reloading the TLS certificate failed; serving the previous one", "err", err)
		} else {
			logger.Info("admission: TLS certificate reloaded")
		}
	})
	if err != nil {
		stop()
		return nil, fmt.Errorf("admission TLS: %w", err)
	}
	ln, err := net.Listen("tcp", a.Addr)
	if err != nil {
		stop()
		return nil, fmt.Errorf("admission: listening on %s: %w", a.Addr, err)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: reloader.GetCertificate}
	al.addr = ln.Addr()
	al.srv = &http.Server{
		Handler:           wh.Handler(),
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	// ServeTLS (rather than Serve on a TLS listener) also offers HTTP/2,
	// which the API server's webhook client prefers.
	go func() { al.errc <- al.srv.ServeTLS(ln, "", "") }()
	logger.Info("admission webhook is serving", "addr", ln.Addr().String(), "ca", al.caFile)
	return al, nil
}

// shutdown stops the listener, letting in-flight reviews finish.
func (al *admissionListener) shutdown(ctx context.Context) error {
	al.stop()
	err := al.srv.Shutdown(ctx)
	if serr := <-al.errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
