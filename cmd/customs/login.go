package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/internal/apperr"
)

func newLoginCmd() *cobra.Command {
	var username string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login [SERVER]",
		Short: "Log in to a customs server; later commands use it without --server or --username",
		Long: `Log in to a customs server as a user (or a robot account, robot$...).

The password comes from the first line of stdin with --password-stdin, else
from CUSTOMS_PASSWORD, else from a prompt on the terminal. customs does not
keep the password: it stores a refresh token issued by the server in
$XDG_CONFIG_HOME/customs/config.json (mode 0600), exchanges it for
short-lived API tokens as needed, and remembers SERVER as the default for
later commands. The token stops working when the password changes (or the
robot's secret is rotated) and when the account is disabled or deleted;
'customs logout' deletes it from this machine.

SERVER defaults to CUSTOMS_SERVER, then the server last logged in to, then
` + defaultServer + `. Without a scheme, localhost gets http:// and other hosts https://.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadCLIConfig()
			if err != nil {
				return err
			}
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			server = resolveServer(server, cfg)
			if username == "" {
				username = os.Getenv("CUSTOMS_USERNAME")
			}
			if username == "" {
				return apperr.Errorf(apperr.EINVALID, "give the user name with -u (or CUSTOMS_USERNAME)")
			}
			password, err := readSecret(cmd.InOrStdin(), cmd.ErrOrStderr(), passwordStdin, "CUSTOMS_PASSWORD", "Password: ")
			if err != nil {
				return err
			}
			c := &apiclient.Client{BaseURL: server}
			refresh, err := c.Login(cmd.Context(), username, password)
			if err != nil {
				return err
			}
			c.RefreshToken = refresh
			me, err := c.Me(cmd.Context())
			if err != nil {
				return err
			}
			cfg.Servers[server] = serverCreds{Username: me.Name, RefreshToken: refresh}
			cfg.Current = server
			if err := cfg.save(); err != nil {
				return err
			}
			role := ""
			if me.Admin {
				role = " (system administrator)"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Logged in to %s as %s%s.\n", server, me.Name, role)
			return nil
		},
	}
	cmd.Flags().StringVarP(&username, "username", "u", "", "user or robot name (env CUSTOMS_USERNAME)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of stdin")
	return cmd
}

func newLogoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Forget the credentials stored for a server by customs login",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadCLIConfig()
			if err != nil {
				return err
			}
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			server = resolveServer(server, cfg)
			if _, ok := cfg.Servers[server]; !ok {
				return apperr.Errorf(apperr.ENOTFOUND, "not logged in to %s", server)
			}
			delete(cfg.Servers, server)
			if cfg.Current == server {
				cfg.Current = ""
			}
			if err := cfg.save(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Logged out of %s.\n", server)
			return nil
		},
	}
}

// resolveServer returns the server a command talks to: the one given, else
// CUSTOMS_SERVER, else the one last logged in to, else defaultServer.
func resolveServer(given string, cfg *cliConfig) string {
	switch {
	case given != "":
		return normalizeServer(given)
	case os.Getenv("CUSTOMS_SERVER") != "":
		return normalizeServer(os.Getenv("CUSTOMS_SERVER"))
	case cfg != nil && cfg.Current != "":
		return cfg.Current
	}
	return defaultServer
}
