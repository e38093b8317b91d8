package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/customs-dev/customs/internal/apiclient"
)

// clientFlags are the flags of commands that talk to a running server.
type clientFlags struct {
	server, username, password string
}

func bindClientFlags(fs *pflag.FlagSet) *clientFlags {
	cf := &clientFlags{}
	fs.StringVar(&cf.server, "server", envOr("CUSTOMS_SERVER", "http://localhost:5000"), "customs server URL (env CUSTOMS_SERVER)")
	fs.StringVarP(&cf.username, "username", "u", os.Getenv("CUSTOMS_USERNAME"), "user name (env CUSTOMS_USERNAME)")
	fs.StringVar(&cf.password, "password", "", "password (prefer env CUSTOMS_PASSWORD: flags are visible to other users)")
	return cf
}

func (cf *clientFlags) client() *apiclient.Client {
	pw := cf.password
	if pw == "" {
		pw = os.Getenv("CUSTOMS_PASSWORD")
	}
	return &apiclient.Client{BaseURL: cf.server, Username: cf.username, Password: pw}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newProjectCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "project", Short: "Create, list and delete projects"}
	cf := bindClientFlags(cmd.PersistentFlags())

	var public bool
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a project (repositories are pushed as NAME/...)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := cf.client().CreateProject(cmd.Context(), args[0], public)
			if err != nil {
				return err
			}
			vis := "private"
			if p.Public {
				vis = "public"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "project %s created (%s)\n", p.Name, vis)
			return nil
		},
	}
	create.Flags().BoolVar(&public, "public", false, "allow anonymous pulls")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the projects you may see",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ps, err := cf.client().Projects(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVISIBILITY\tCREATED")
			for _, p := range ps {
				vis := "private"
				if p.Public {
					vis = "public"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, vis, p.CreatedAt.Format("2006-01-02 15:04:05"))
			}
			return tw.Flush()
		},
	}

	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete an empty project",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cf.client().DeleteProject(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "project %s deleted\n", args[0])
			return nil
		},
	}

	var setPublic bool
	set := &cobra.Command{
		Use:   "set-public NAME",
		Short: "Make a project public (--public) or private (--public=false)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := cf.client().SetProjectPublic(cmd.Context(), args[0], setPublic)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "project %s public=%v\n", p.Name, p.Public)
			return nil
		},
	}
	set.Flags().BoolVar(&setPublic, "public", true, "public (true) or private (false)")
	cmd.AddCommand(create, list, del, set)
	return cmd
}
