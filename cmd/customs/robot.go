package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/rbac"
)

func newRobotCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "robot",
		Short: "Manage robot accounts: non-human identities for CI, with a generated secret",
		Long: `Manage robot accounts. A project robot (--project P) is named robot$P+NAME and
may act in its project only; a system robot (system administrators) is named
robot$NAME and holds permissions in several or all (*) projects. Robots log
in like users, with their name and secret (docker login -u 'robot$P+NAME').

Actions: ` + strings.Join(rbac.All.Strings(), ", ") + `.
Push implies pull; every permission implies read-project.`,
	}
	cf := bindClientFlags(cmd.PersistentFlags())

	var project, description, expires string
	var actions, permissions []string
	var asJSON bool
	create := &cobra.Command{
		Use:   "create NAME (--project P --action A... | --permission PROJECT:A,A...)",
		Short: "Create a robot account and print its secret (shown once)",
		Args:  cobra.ExactArgs(1),
		RunE: clientCmd(cf, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			req := api.CreateRobotRequest{Name: args[0], Description: description, Expiry: api.Expiry{ExpiresIn: expires}}
			switch {
			case project != "" && len(permissions) > 0:
				return apperr.Errorf(apperr.EINVALID, "a project robot takes --action, a system robot --permission; not both")
			case project != "":
				as, err := parseActions(actions)
				if err != nil {
					return err
				}
				req.Actions = as
			default:
				if len(actions) > 0 {
					return apperr.Errorf(apperr.EINVALID, "--action needs --project; a system robot takes --permission PROJECT:ACTION,...")
				}
				for _, p := range permissions {
					proj, list, ok := strings.Cut(p, ":")
					if !ok || proj == "" {
						return apperr.Errorf(apperr.EINVALID, "--permission %q: want PROJECT:ACTION[,ACTION...] (PROJECT may be *)", p)
					}
					as, err := parseActions(strings.Split(list, ","))
					if err != nil {
						return err
					}
					req.Permissions = append(req.Permissions, api.RobotPermission{Project: proj, Actions: as})
				}
			}
			rb, err := c.CreateRobot(cmd.Context(), project, req)
			if err != nil {
				return err
			}
			return printSecret(cmd.OutOrStdout(), rb, asJSON, "created")
		}),
	}
	create.Flags().StringVar(&project, "project", "", "create a project robot in this project")
	create.Flags().StringArrayVar(&actions, "action", nil, "an action of a project robot (repeatable; comma-separated lists too)")
	create.Flags().StringArrayVar(&permissions, "permission", nil, "PROJECT:ACTION[,ACTION...] of a system robot (repeatable; PROJECT may be *)")
	create.Flags().StringVar(&description, "description", "", "what the robot is for")
	create.Flags().StringVar(&expires, "expires", "", "lifetime, e.g. 30d or 720h (default: never expires)")
	create.Flags().BoolVar(&asJSON, "json", false, "print the robot, secret included, as JSON")

	var listProject string
	list := &cobra.Command{
		Use:   "list",
		Short: "List robot accounts (of --project, or all of them for system administrators)",
		Args:  cobra.NoArgs,
		RunE: clientCmd(cf, func(cmd *cobra.Command, c *apiclient.Client, _ []string) error {
			rs, err := c.Robots(cmd.Context(), listProject)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPERMISSIONS\tEXPIRES\tDISABLED\tDESCRIPTION")
			for _, rb := range rs {
				exp := "never"
				if rb.ExpiresAt != nil {
					exp = rb.ExpiresAt.Format("2006-01-02 15:04:05")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", rb.Name, permissionsText(rb.Permissions), exp, yesNo(rb.Disabled), rb.Description)
			}
			return tw.Flush()
		}),
	}
	list.Flags().StringVar(&listProject, "project", "", "list this project's robots")

	var rotateJSON bool
	rotate := &cobra.Command{
		Use:   "rotate NAME",
		Short: "Give a robot a new secret (printed once); the old one stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: clientCmd(cf, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			rb, err := c.RotateRobot(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printSecret(cmd.OutOrStdout(), rb, rotateJSON, "rotated")
		}),
	}
	rotate.Flags().BoolVar(&rotateJSON, "json", false, "print the robot, secret included, as JSON")

	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a robot account (revoke it for good)",
		Args:  cobra.ExactArgs(1),
		RunE: clientCmd(cf, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			if err := c.DeleteRobot(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "robot %s deleted\n", args[0])
			return nil
		}),
	}

	var enable bool
	disable := &cobra.Command{
		Use:   "disable NAME",
		Short: "Disable a robot account (--enable: enable it again)",
		Args:  cobra.ExactArgs(1),
		RunE: clientCmd(cf, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			disabled := !enable
			rb, err := c.UpdateRobot(cmd.Context(), args[0], api.UpdateRobotRequest{Disabled: &disabled})
			if err != nil {
				return err
			}
			state := "disabled"
			if !rb.Disabled {
				state = "enabled"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "robot %s %s\n", rb.Name, state)
			return nil
		}),
	}
	disable.Flags().BoolVar(&enable, "enable", false, "enable the robot instead")

	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a robot account",
		Args:  cobra.ExactArgs(1),
		RunE: clientCmd(cf, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			rb, err := c.Robot(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return writeJSON(cmd.OutOrStdout(), rb)
		}),
	}
	cmd.AddCommand(create, list, get, rotate, del, disable)
	return cmd
}

// parseActions parses action names, each flag value possibly a
// comma-separated list.
func parseActions(values []string) ([]rbac.Action, error) {
	var out []rbac.Action
	for _, v := range values {
		for _, name := range strings.Split(v, ",") {
			a, err := rbac.ParseAction(strings.TrimSpace(name))
			if err != nil {
				return nil, apperr.Errorf(apperr.EINVALID, "%v", err)
			}
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, apperr.Errorf(apperr.EINVALID, "give at least one action (for example --action pull --action push)")
	}
	return out, nil
}

func permissionsText(ps []api.RobotPermission) string {
	var parts []string
	for _, p := range ps {
		names := make([]string, len(p.Actions))
		for i, a := range p.Actions {
			names[i] = a.String()
		}
		parts = append(parts, p.Project+":"+strings.Join(names, ","))
	}
	return strings.Join(parts, " ")
}

// printSecret shows a robot's new secret: as JSON, or as text saying it is
// shown once.
func printSecret(w io.Writer, rb api.Robot, asJSON bool, what string) error {
	if asJSON {
		return writeJSON(w, rb)
	}
	_, err := fmt.Fprintf(w, "robot %s %s. Its secret, shown this once:\n\n    %s\n\nLog in with: docker login -u '%s' --password-stdin SERVER\n",
		rb.Name, what, rb.Secret, rb.Name)
	return err
}
