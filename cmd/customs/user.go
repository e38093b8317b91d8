package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/internal/apperr"
)

// clientCmd is a command talking to a server with cf's credentials.
func clientCmd(cf *clientFlags, run func(cmd *cobra.Command, c *apiclient.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := cf.client()
		if err != nil {
			return err
		}
		return run(cmd, c, args)
	}
}

// readLines reads n lines from r (for passwords given on stdin).
func readLines(r io.Reader, n int) ([]string, error) {
	sc := bufio.NewScanner(r)
	var out []string
	for len(out) < n && sc.Scan() {
		out = append(out, strings.TrimRight(sc.Text(), "\r"))
	}
	if len(out) < n {
		return nil, apperr.Errorf(apperr.EINVALID, "expected %d line(s) on stdin, got %d", n, len(out))
	}
	return out, nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func newUserCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage users (system administrators), or see and change your own account"}
	cf := bindClientFlags(cmd.PersistentFlags())

	list := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: clientCmd(cf, func(cmd *cobra.Command, c *apiclient.Client, _ []string) error {
			us, err := c.Users(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSOURCE\tADMIN\tDISABLED\tCREATED")
			for _, u := range us {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, u.Source, yesNo(u.Admin), yesNo(u.Disabled), u.CreatedAt.Format("2006-01-02 15:04:05"))
			}
			return tw.Flush()
		}),
	}

	var admin, pwStdin bool
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a local user (password from --password-stdin, CUSTOMS_NEW_PASSWORD or a prompt)",
		Args:  cobra.ExactArgs(1),
		RunE: clientCmd(cf, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			pw, err := readSecret(cmd.InOrStdin(), cmd.ErrOrStderr(), pwStdin, "CUSTOMS_NEW_PASSWORD", "Password for "+args[0]+": ")
			if err != nil {
				return err
			}
			u, err := c.CreateUser(cmd.Context(), api.CreateUserRequest{Name: args[0], Password: pw, Admin: admin})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s created (admin: %s)\n", u.Name, yesNo(u.Admin))
			return nil
		}),
	}
	create.Flags().BoolVar(&admin, "admin", false, "make the user a system administrator")
	create.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from the first line of stdin")

	whoami := &cobra.Command{
		Use:   "whoami",
		Short: "Show who you are logged in as",
		Args:  cobra.NoArgs,
		RunE: clientCmd(cf, func(cmd *cobra.Command, c *apiclient.Client, _ []string) error {
			me, err := c.Me(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s (%s, admin: %s) at %s\n", me.Name, me.Kind, yesNo(me.Admin), c.BaseURL)
			return nil
		}),
	}

	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a user",
		Args:  cobra.ExactArgs(1),
		RunE: clientCmd(cf, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			u, err := c.User(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "name:     %s\nsource:   %s\nadmin:    %s\ndisabled: %s\ncreated:  %s\n",
				u.Name, u.Source, yesNo(u.Admin), yesNo(u.Disabled), u.CreatedAt.Format("2006-01-02 15:04:05"))
			return nil
		}),
	}

	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user and their project memberships",
		Args:  cobra.ExactArgs(1),
		RunE: clientCmd(cf, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			if err := c.DeleteUser(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s deleted\n", args[0])
			return nil
		}),
	}

	flag := func(use, short, done string, req func() api.UpdateUserRequest) *cobra.Command {
		return &cobra.Command{
			Use:   use + " NAME",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: clientCmd(cf, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
				if _, err := c.UpdateUser(cmd.Context(), args[0], req()); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "user %s %s\n", args[0], done)
				return nil
			}),
		}
	}
	t, f := true, false
	disable := flag("disable", "Disable a user: no more logins, their sessions end; their registry tokens stop within the token lifetime", "disabled",
		func() api.UpdateUserRequest { return api.UpdateUserRequest{Disabled: &t} })
	enable := flag("enable", "Enable a disabled user", "enabled",
		func() api.UpdateUserRequest { return api.UpdateUserRequest{Disabled: &f} })
	var setAdmin bool
	admins := flag("set-admin", "Make a user a system administrator (--admin=false: no longer)", "updated",
		func() api.UpdateUserRequest { return api.UpdateUserRequest{Admin: &setAdmin} })
	admins.Flags().BoolVar(&setAdmin, "admin", true, "system administrator or not")

	var passwdStdin bool
	passwd := &cobra.Command{
		Use:   "passwd [NAME]",
		Short: "Change your password (old and new), or as an administrator set another user's",
		Long: `Change a password. Without NAME, or with your own name, you change yours and
give the old one; an administrator naming another user sets theirs.
With --password-stdin the passwords are read from stdin, one per line (old,
then new; or only the new one for another user); otherwise from prompts.
After a change, customs login again: the stored token is bound to the old
password.`,
		Args: cobra.MaximumNArgs(1),
		RunE: clientCmd(cf, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			me, err := c.Me(cmd.Context())
			if err != nil {
				return err
			}
			name := me.Name
			if len(args) == 1 {
				name = args[0]
			}
			self := name == me.Name
			var old, nw string
			switch {
			case passwdStdin && self:
				lines, err := readLines(cmd.InOrStdin(), 2)
				if err != nil {
					return err
				}
				old, nw = lines[0], lines[1]
			case passwdStdin:
				lines, err := readLines(cmd.InOrStdin(), 1)
				if err != nil {
					return err
				}
				nw = lines[0]
			default:
				if self {
					if old, err = readSecret(cmd.InOrStdin(), cmd.ErrOrStderr(), false, "", "Old password: "); err != nil {
						return err
					}
				}
				if nw, err = readSecret(cmd.InOrStdin(), cmd.ErrOrStderr(), false, "", "New password for "+name+": "); err != nil {
					return err
				}
			}
			if err := c.ChangePassword(cmd.Context(), name, old, nw); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "password of %s changed\n", name)
			return nil
		}),
	}
	passwd.Flags().BoolVar(&passwdStdin, "password-stdin", false, "read the passwords from stdin, one per line")

	revoke := &cobra.Command{
		Use:   "revoke-sessions [NAME]",
		Short: "Log a user (without NAME: yourself) out everywhere",
		Long: `Log a user out everywhere: every login session (the OIDC session cookie of
the UI and API) and refresh token (customs login, docker's identity token)
of theirs issued before stops working at once, on every replica. Use it
for a lost or stolen laptop. System administrators may name anyone; other
users only themselves.

It does not change passwords or CLI secrets, and access tokens already
issued to registry clients stay valid until they expire (auth.tokenTTL,
5 minutes by default): when a password or CLI secret may have been copied
too, also change it (customs user passwd; a new CLI secret replaces the
old one). Changing a password, disabling and enabling a user also end
their sessions. Audited as user.sessions.revoke.

If you end your own sessions, customs login again.`,
		Args: cobra.MaximumNArgs(1),
		RunE: clientCmd(cf, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			if err := c.EndUserSessions(cmd.Context(), name); err != nil {
				return err
			}
			if name == "" {
				fmt.Fprintln(cmd.OutOrStdout(), "your sessions and refresh tokens ended, this machine's too: customs login again")
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "sessions and refresh tokens of %s ended: they log in again\n", name)
			}
			return nil
		}),
	}

	cmd.AddCommand(list, create, whoami, get, del, disable, enable, admins, passwd, revoke)
	return cmd
}
