package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/customs-dev/customs/internal/api"
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
	cmd.AddCommand(create, list, del, set, setScan, setSBOM, newProjectSetCmd(cf), newMemberCmd(cf))
	return cmd
}

// newProjectSetCmd is `customs project set NAME --FLAG…`: the project's
// settings as Harbor users know them; only the flags given change.
func newProjectSetCmd(cf *clientFlags) *cobra.Command {
	var prevent, trust, scanOnPush, useSystem bool
	var severity string
	cmd := &cobra.Command{
		Use:   "set NAME [--prevent-vulnerable[=false]] [--severity none|low|medium|high|critical] [--scan-on-push[=false]] [--content-trust[=false]] [--use-system-allowlist[=false]]",
		Short: "Change a project's settings: prevent vulnerable images from running (with a severity), scan on push, content trust",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req api.UpdateProjectRequest
			fl := cmd.Flags()
			if fl.Changed("prevent-vulnerable") {
				req.PreventVulnerable = &prevent
			}
			if fl.Changed("severity") {
				req.Severity = &severity
			}
			if fl.Changed("scan-on-push") {
				req.ScanOnPush = &scanOnPush
			}
			if fl.Changed("content-trust") {
				req.ContentTrust = &trust
			}
			if fl.Changed("use-system-allowlist") {
				req.UseSystemAllowlist = &useSystem
			}
			if req == (api.UpdateProjectRequest{}) {
				return fmt.Errorf("nothing to set: give at least one of --prevent-vulnerable, --severity, --scan-on-push, --content-trust, --use-system-allowlist")
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			p, err := c.UpdateProject(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "project %s\n", p.Name)
			if p.ScanOnPush != nil {
				fmt.Fprintf(out, "  scan on push:                %v\n", *p.ScanOnPush)
			}
			if s := p.Security; s != nil && s.Custom == "" {
				fmt.Fprintf(out, "  prevent vulnerable images:   %v (severity %s)\n", s.PreventVulnerable, s.Severity)
				fmt.Fprintf(out, "  content trust:               %v\n", s.ContentTrust)
				fmt.Fprintf(out, "  system allowlist applies:    %v\n", s.UseSystemAllowlist)
				fmt.Fprintf(out, "  settings policy:             %s (revision %d)\n", s.Policy, s.Revision)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&prevent, "prevent-vulnerable", true, "refuse pulls of images with findings at or above --severity")
	f.StringVar(&severity, "severity", "", "the threshold of --prevent-vulnerable: none, low, medium, high, critical")
	f.BoolVar(&scanOnPush, "scan-on-push", true, "scan every manifest pushed to the project")
	f.BoolVar(&trust, "content-trust", true, "allow only signed images (until customs verifies signatures this refuses every image of the project, failing closed)")
	f.BoolVar(&useSystem, "use-system-allowlist", true, "let the system allowlist apply to the project's images")
	return cmd
}
