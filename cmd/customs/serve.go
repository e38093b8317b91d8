package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/config"
	"github.com/customs-dev/customs/internal/scan/extract"
	"github.com/customs-dev/customs/internal/server"
)

// configFlags binds the flags that override configuration keys.
type configFlags struct {
	file string
	keys map[string]*string // flag name -> value, for flags that set a config key
}

// flagKeys maps serve flags to configuration keys.
var flagKeys = map[string]string{
	"addr":         "addr",
	"data-dir":     "dataDir",
	"external-url": "externalURL",
	"db-driver":    "database.driver",
	"db-dsn":       "database.dsn",
	"tls-cert":     "tls.certFile",
	"tls-key":      "tls.keyFile",
	"tls-generate": "tls.generate",
	"log-level":    "log.level",
	"log-format":   "log.format",
}

func bindConfigFlags(fs *pflag.FlagSet) *configFlags {
	cf := &configFlags{keys: map[string]*string{}}
	fs.StringVarP(&cf.file, "config", "c", os.Getenv("CUSTOMS_CONFIG"), "YAML configuration file (env CUSTOMS_CONFIG)")
	for flag, key := range flagKeys {
		cf.keys[flag] = fs.String(flag, "", fmt.Sprintf("overrides %s (env %s)", key, config.EnvName(key)))
	}
	fs.Lookup("tls-generate").NoOptDefVal = "true"
	return cf
}

// load returns the validated configuration: defaults < file < env < flags.
func (cf *configFlags) load(fs *pflag.FlagSet) (config.Config, error) {
	cfg, err := config.Load(cf.file, os.Environ())
	if err != nil {
		return cfg, apperr.Errorf(apperr.EINVALID, "%v", err)
	}
	for flag, key := range flagKeys {
		if fs.Changed(flag) {
			if err := cfg.Set(key, *cf.keys[flag]); err != nil {
				return cfg, apperr.Errorf(apperr.EINVALID, "--%s: %v", flag, err)
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, apperr.Errorf(apperr.EINVALID, "invalid configuration:\n%v", err)
	}
	return cfg, nil
}

func newLogger(cfg config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(cfg.Log.Level)))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func newServeCmd() *cobra.Command {
	var addrFile string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the customs server (registry, API, token service) with embedded defaults",
		Long: `Run the customs server. With no configuration it listens on :5000 (plain HTTP),
keeps data in ./customs-data (blobs on the filesystem, metadata in SQLite) and
creates the user "admin" on first start, with the password from
CUSTOMS_ADMIN_PASSWORD or a random one printed once.`,
		Args: cobra.NoArgs,
	}
	cf := bindConfigFlags(cmd.Flags())
	cmd.Flags().StringVar(&addrFile, "addr-file", "", "write the address actually listened on to this file once serving (useful with --addr 127.0.0.1:0)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := cf.load(cmd.Flags())
		if err != nil {
			return err
		}
		logger := newLogger(cfg)
		extract.RouteLogs(logger) // osv-scalibr's global logger: the one global customs does not own
		ctx := cmd.Context()
		srv, err := server.New(ctx, cfg, server.Options{
			Logger:        logger,
			Out:           cmd.OutOrStdout(),
			AdminPassword: os.Getenv("CUSTOMS_ADMIN_PASSWORD"),
			Version:       version,
		})
		if err != nil {
			return err
		}
		defer srv.Close()
		ln, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", cfg.Addr, err)
		}
		if addrFile != "" {
			if err := writeFileAtomic(addrFile, ln.Addr().String()+"\n"); err != nil {
				ln.Close()
				return fmt.Errorf("--addr-file: %w", err)
			}
		}
		return srv.Serve(ctx, ln)
	}
	return cmd
}

func writeFileAtomic(path, content string) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
