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
	fs.StringVar(&cf.server, "server", "", "customs server URL (default: env CUSTOMS_SERVER, else the server of customs login, else "+defaultServer+")")
	fs.StringVarP(&cf.username, "username", "u", os.Getenv("CUSTOMS_USERNAME"), "user name (env CUSTOMS_USERNAME; default: the credentials of customs login)")
	fs.StringVar(&cf.password, "password", "", "password (prefer env CUSTOMS_PASSWORD: flags are visible to other users)")
	return cf
}

// client returns an API client for the chosen server: with Basic
// credentials when a user name is given, else with the refresh token that
// customs login stored for that server, else anonymous.
func (cf *clientFlags) client() (*apiclient.Client, error) {
	cfg, err := loadCLIConfig()
	if err != nil && cf.username == "" {
		return nil, err
	}
	c := &apiclient.Client{BaseURL: resolveServer(cf.server, cfg)}
	if cf.username != "" {
		c.Username, c.Password = cf.username, cf.password
		if c.Password == "" {
			c.Password = os.Getenv("CUSTOMS_PASSWORD")
		}
		return c, nil
	}
	if creds, ok := cfg.Servers[c.BaseURL]; ok {
		c.RefreshToken = creds.RefreshToken
	}
	return c, nil
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
			c, err := cf.client()
			if err != nil {
				return err
			}
			p, err := c.CreateProject(cmd.Context(), args[0], public)
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
			c, err := cf.client()
			if err != nil {
				return err
			}
			ps, err := c.Projects(cmd.Context())
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
			c, err := cf.client()
			if err != nil {
				return err
			}
			if err := c.DeleteProject(cmd.Context(), args[0]); err != nil {
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
			c, err := cf.client()
			if err != nil {
				return err
			}
			p, err := c.SetProjectPublic(cmd.Context(), args[0], setPublic)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "project %s public=%v\n", p.Name, p.Public)
			return nil
		},
	}
	set.Flags().BoolVar(&setPublic, "public", true, "public (true) or private (false)")

	var scanOnPush bool
	setScan := &cobra.Command{
		Use:   "set-scan-on-push NAME",
		Short: "Scan every manifest pushed to a project (--enabled, the default) or not (--enabled=false)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			p, err := c.SetScanOnPush(cmd.Context(), args[0], scanOnPush)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "project %s scanOnPush=%v\n", p.Name, scanOnPush)
			return nil
		},
	}
	setScan.Flags().BoolVar(&scanOnPush, "enabled", true, "scan on push (true) or not (false)")

	var sbomReferrer bool
	setSBOM := &cobra.Command{
		Use:   "set-sbom-referrer NAME",
		Short: "Store each scanned image's CycloneDX SBOM as an OCI referrer of it (--enabled, the default) or not (--enabled=false)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			p, err := c.SetSBOMReferrer(cmd.Context(), args[0], sbomReferrer)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "project %s sbomReferrer=%v\n", p.Name, sbomReferrer)
			return nil
		},
	}
	setSBOM.Flags().BoolVar(&sbomReferrer, "enabled", true, "store SBOM referrers (true) or not (false)")
	cmd.AddCommand(create, list, del, set, setScan, setSBOM, newMemberCmd(cf))
	return cmd
}
