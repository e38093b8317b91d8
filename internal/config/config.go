// Package config defines customs' server configuration: a typed struct with
// defaults, loaded from a YAML file, overridden by CUSTOMS_* environment
// variables and then by command-line flags, and validated with errors that
// name the offending key.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Config is the whole server configuration. YAML keys are the yaml tags; the
// environment variable of a key is CUSTOMS_ followed by its dotted path in
// upper snake case (tls.certFile -> CUSTOMS_TLS_CERT_FILE).
type Config struct {
	// Addr is the registry/API listen address.
	Addr string `yaml:"addr"`
	// DataDir holds blobs, uploads, the SQLite database, keys and generated
	// certificates.
	DataDir string `yaml:"dataDir"`
	// ExternalURL is how clients reach this server (for token realms and
	// Location headers behind proxies); empty means derived from requests.
	ExternalURL string `yaml:"externalURL"`
	// ShutdownTimeout bounds how long a graceful shutdown waits for
	// in-flight requests (uploads) to finish.
	ShutdownTimeout Duration `yaml:"shutdownTimeout"`
	// ShutdownDelay is how long the server keeps serving after a stop
	// signal while /readyz already answers 503, so load balancers and
	// Kubernetes stop sending traffic before connections are refused.
	ShutdownDelay Duration `yaml:"shutdownDelay"`

	Database Database `yaml:"database"`
	TLS      TLS      `yaml:"tls"`
	Auth     Auth     `yaml:"auth"`
	GC       GC       `yaml:"gc"`
	Log      Log      `yaml:"log"`
	Registry Registry `yaml:"registry"`
	Vulndb   Vulndb   `yaml:"vulndb"`
	Scan     Scan     `yaml:"scan"`
	// Admission configures the Kubernetes admission webhooks.
	Admission Admission `yaml:"admission"`
	// Policy holds the policy engine's defaults.
	Policy Policy `yaml:"policy"`
	// Audit configures the audit trail.
	Audit Audit `yaml:"audit"`
}

// Audit configures the audit trail.
type Audit struct {
	// Skip lists actions whose successful events are not stored, for
	// high-volume actions an operator chooses not to keep (as Harbor's
	// "audit log disabled event types"): only those in SkippableActions.
	// Denied and failed events of these actions are always stored.
	Skip []string `yaml:"skip"`
}

// SkippableActions are the audit actions audit.skip may name: the ones
// recorded once per registry request.
func SkippableActions() []string { return []string{"artifact.pull", "token.issue"} }

// Database selects the metadata database.
type Database struct {
	// Driver is "sqlite" (embedded, default) or "postgres".
	Driver string `yaml:"driver"`
	// DSN is the PostgreSQL connection string, or for SQLite an optional
	// file path (default <dataDir>/customs.db).
	DSN string `yaml:"dsn"`
}

// TLS configures HTTPS. With neither files nor Generate, customs serves
// plain HTTP, as the CNCF registry does.
type TLS struct {
	// CertFile and KeyFile are PEM files, reloaded when they change.
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
	// Generate creates a CA and a server certificate in <dataDir>/tls on
	// first start and serves HTTPS with them.
	Generate bool `yaml:"generate"`
	// Hosts are the DNS names and IPs the generated certificate is valid
	// for (default: localhost, 127.0.0.1, ::1 and the machine's hostname).
	Hosts []string `yaml:"hosts"`
	// ReloadInterval is how often certificate files are checked for
	// changes (on handshake, at most once per interval).
	ReloadInterval Duration `yaml:"reloadInterval"`
}

// Auth configures the token service.
type Auth struct {
	// Service is the token audience ("service" in the Docker token flow).
	Service string `yaml:"service"`
	// Issuer is the token issuer.
	Issuer string `yaml:"issuer"`
	// TokenTTL is how long issued registry tokens are valid.
	TokenTTL Duration `yaml:"tokenTTL"`
	// TrustProxyHeaders makes X-Forwarded-Proto/Host count when deriving
	// URLs; only enable it behind a proxy that sets them.
	TrustProxyHeaders bool `yaml:"trustProxyHeaders"`
	// LDAP configures login with the passwords of an LDAP directory.
	LDAP LDAP `yaml:"ldap"`
	// OIDC configures login through an OpenID Connect provider.
	OIDC OIDC `yaml:"oidc"`
}

// GC configures garbage collection of unreferenced blobs and abandoned
// uploads.
type GC struct {
	// Interval between scheduled collections; 0 disables scheduling.
	Interval Duration `yaml:"interval"`
	// GracePeriod protects blobs touched this recently, so a push in
	// progress never loses a blob it uploaded but has not referenced yet.
	GracePeriod Duration `yaml:"gracePeriod"`
	// UploadMaxAge is how long an upload session may stay idle before it is
	// removed.
	UploadMaxAge Duration `yaml:"uploadMaxAge"`
}

// Log configures structured logging.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// Registry configures the distribution API.
type Registry struct {
	// MaxManifestBytes caps a manifest body (the spec asks for at least
	// 4 MiB).
	MaxManifestBytes int64 `yaml:"maxManifestBytes"`
	// AllowSparse accepts image manifests whose layers, and indexes whose
	// child manifests, are not in the repository (partial mirrors). Off by
	// default: a manifest naming a missing blob is refused.
	AllowSparse bool `yaml:"allowSparse"`
	// ManifestCacheBytes bounds the in-memory cache of manifest bytes by
	// digest that spares pulls a blob-store read; 0 disables it.
	ManifestCacheBytes int64 `yaml:"manifestCacheBytes"`
}

// Default returns the embedded defaults: plain HTTP on :5000, data in
// ./customs-data, SQLite.
func Default() Config {
	return Config{
		Addr:            ":5000",
		DataDir:         "./customs-data",
		ShutdownTimeout: Duration(60 * time.Second),
		Database:        Database{Driver: "sqlite"},
		TLS:             TLS{ReloadInterval: Duration(10 * time.Second)},
		Auth: Auth{
			Service:  "customs",
			Issuer:   "customs",
			TokenTTL: Duration(5 * time.Minute),
			LDAP:     defaultLDAP(),
			OIDC:     defaultOIDC(),
		},
		GC: GC{
			Interval:     Duration(24 * time.Hour),
			GracePeriod:  Duration(24 * time.Hour),
			UploadMaxAge: Duration(7 * 24 * time.Hour),
		},
		Log:       Log{Level: "info", Format: "text"},
		Registry:  Registry{MaxManifestBytes: 4 << 20, ManifestCacheBytes: 32 << 20},
		Vulndb:    defaultVulndb(),
		Scan:      defaultScan(),
		Admission: defaultAdmission(),
		Policy:    defaultPolicy(),
	}
}

// Validate checks every field and returns all problems at once, each naming
// its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr", "%q is not host:port (for example \":5000\")", c.Addr)
	}
	if c.DataDir == "" {
		bad("dataDir", "must not be empty")
	}
	if c.ExternalURL != "" {
		u, err := url.Parse(c.ExternalURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("externalURL", "%q is not an http(s) URL", c.ExternalURL)
		}
	}
	if c.ShutdownTimeout < 0 {
		bad("shutdownTimeout", "must not be negative")
	}
	if c.ShutdownDelay < 0 {
		bad("shutdownDelay", "must not be negative")
	}
	if c.TLS.ReloadInterval < 0 {
		bad("tls.reloadInterval", "must not be negative")
	}
	switch c.Database.Driver {
	case "sqlite":
	case "postgres":
		if c.Database.DSN == "" {
			bad("database.dsn", "is required when database.driver is postgres")
		}
	default:
		bad("database.driver", "%q is not one of sqlite, postgres", c.Database.Driver)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls.certFile", "tls.certFile and tls.keyFile must be given together")
	}
	if c.TLS.Generate && c.TLS.CertFile != "" {
		bad("tls.generate", "cannot be combined with tls.certFile")
	}
	if c.Auth.Service == "" {
		bad("auth.service", "must not be empty")
	}
	if c.Auth.Issuer == "" {
		bad("auth.issuer", "must not be empty")
	}
	if c.Auth.TokenTTL < Duration(time.Minute) || c.Auth.TokenTTL > Duration(24*time.Hour) {
		bad("auth.tokenTTL", "must be between 1m and 24h, got %s", c.Auth.TokenTTL)
	}
	c.validateLDAP(bad)
	c.validateOIDC(bad)
	if c.GC.Interval < 0 {
		bad("gc.interval", "must not be negative (0 disables scheduled collection)")
	}
	if c.GC.GracePeriod < Duration(time.Minute) {
		bad("gc.gracePeriod", "must be at least 1m, got %s", c.GC.GracePeriod)
	}
	if c.GC.UploadMaxAge < Duration(time.Minute) {
		bad("gc.uploadMaxAge", "must be at least 1m, got %s", c.GC.UploadMaxAge)
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q is not one of text, json", c.Log.Format)
	}
	if c.Registry.MaxManifestBytes < 4<<20 {
		bad("registry.maxManifestBytes", "must be at least 4194304 (4 MiB, the spec's minimum), got %d", c.Registry.MaxManifestBytes)
	}
	if c.Registry.ManifestCacheBytes < 0 {
		bad("registry.manifestCacheBytes", "must not be negative (0 disables the cache), got %d", c.Registry.ManifestCacheBytes)
	}
	c.validateVulndb(bad)
	c.validateScan(bad)
	c.validateAdmission(bad)
	c.validatePolicy(bad)
	for _, a := range c.Audit.Skip {
		if !slices.Contains(SkippableActions(), a) {
			bad("audit.skip", "%q is not one of %s", a, strings.Join(SkippableActions(), ", "))
		}
	}
	return errors.Join(errs...)
}
