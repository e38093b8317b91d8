package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/rbac"
	"github.com/customs-dev/customs/internal/store"
)

// newMemberCmd is `customs project member`, with the project command's
// client flags.
func newMemberCmd(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "member",
		Short: "Give users (or directory groups) roles in a project: " + rolesList(),
		Long: "Give users (or, with --group, directory groups) roles in a project.\n\nRoles, most privileged first: " +
			rolesList() + ".\nWhat each may do: docs/permissions.md.",
	}
	var group bool
	kind := func() string {
		if group {
			return store.MemberGroup
		}
		return ""
	}
	cmd.PersistentFlags().BoolVar(&group, "group", false, "the member is a directory group, not a user")

	list := &cobra.Command{
		Use:   "list PROJECT",
		Short: "List a project's members",
		Args:  cobra.ExactArgs(1),
		RunE: clientCmd(cf, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			ms, err := c.Members(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKIND\tROLE\tSINCE")
			for _, m := range ms {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Name, m.Kind, m.Role, m.CreatedAt.Format("2006-01-02 15:04:05"))
			}
			return tw.Flush()
		}),
	}

	var role string
	parse := func() (rbac.Role, error) {
		if role == "" {
			return 0, apperr.Errorf(apperr.EINVALID, "--role is required (one of %s)", rolesList())
		}
		r, err := rbac.ParseRole(role)
		if err != nil {
			return 0, apperr.Errorf(apperr.EINVALID, "--role: %v", err)
		}
		return r, nil
	}
	add := &cobra.Command{
		Use:   "add PROJECT NAME --role ROLE",
		Short: "Make a user (or --group) a member of a project with a role",
		Args:  cobra.ExactArgs(2),
		RunE: clientCmd(cf, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			r, err := parse()
			if err != nil {
				return err
			}
			m, err := c.AddMember(cmd.Context(), args[0], kind(), args[1], r)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s is now %s in project %s\n", m.Kind, m.Name, m.Role, args[0])
			return nil
		}),
	}
	add.Flags().StringVar(&role, "role", "", "the member's role: "+rolesList())
	set := &cobra.Command{
		Use:   "set PROJECT NAME --role ROLE",
		Short: "Change a member's role",
		Args:  cobra.ExactArgs(2),
		RunE: clientCmd(cf, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			r, err := parse()
			if err != nil {
				return err
			}
			m, err := c.SetMemberRole(cmd.Context(), args[0], kind(), args[1], r)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s is now %s in project %s\n", m.Kind, m.Name, m.Role, args[0])
			return nil
		}),
	}
	set.Flags().StringVar(&role, "role", "", "the member's new role: "+rolesList())
	remove := &cobra.Command{
		Use:   "remove PROJECT NAME",
		Short: "Remove a member from a project (registry tokens already issued last until they expire)",
		Args:  cobra.ExactArgs(2),
		RunE: clientCmd(cf, func(cmd *cobra.Command, c *apiclient.Client, args []string) error {
			if err := c.RemoveMember(cmd.Context(), args[0], kind(), args[1]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s removed from project %s\n", args[1], args[0])
			return nil
		}),
	}
	cmd.AddCommand(list, add, set, remove)
	return cmd
}

// rolesList names the roles, most privileged first.
func rolesList() string {
	s := ""
	for i, r := range rbac.Roles() {
		if i > 0 {
			s += ", "
		}
		s += r.String()
	}
	return s
}
