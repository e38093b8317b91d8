package main

import (
	"fmt"
	"net/url"
	"regexp"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/customs-dev/customs/internal/config"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Show and check the server configuration"}

	print := &cobra.Command{
		Use:   "print",
		Short: "Print the effective configuration (defaults < file < CUSTOMS_* env < flags) as YAML",
		Args:  cobra.NoArgs,
	}
	pf := bindConfigFlags(print.Flags())
	print.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := pf.load(cmd.Flags())
		if err != nil {
			return err
		}
		cfg.Database.DSN = redactDSN(cfg.Database.DSN)
		for _, secret := range []*string{&cfg.Auth.LDAP.BindPassword, &cfg.Auth.OIDC.ClientSecret} {
			if *secret != "" {
				*secret = "REDACTED"
			}
		}
		out, err := yaml.Marshal(cfg)
		if err != nil {
			return err
		}
		_, err = cmd.OutOrStdout().Write(out)
		return err
	}

	validate := &cobra.Command{
		Use:   "validate",
		Short: "Check a configuration (file, env and flags) and report every bad key",
		Args:  cobra.NoArgs,
	}
	vf := bindConfigFlags(validate.Flags())
	validate.RunE = func(cmd *cobra.Command, _ []string) error {
		if _, err := vf.load(cmd.Flags()); err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), "configuration is valid")
		return nil
	}

	keys := &cobra.Command{
		Use:   "keys",
		Short: "List every configuration key with its environment variable",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, k := range config.Keys() {
				fmt.Fprintf(cmd.OutOrStdout(), "%-36s %s\n", k, config.EnvName(k))
			}
			return nil
		},
	}
	cmd.AddCommand(print, validate, keys)
	return cmd
}

var dsnPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('[^']*'|\S+)`)

// redactDSN hides a password in a URL or key=value PostgreSQL DSN.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
			return u.String()
		}
	}
	return dsnPassword.ReplaceAllString(dsn, "${1}REDACTED")
}
