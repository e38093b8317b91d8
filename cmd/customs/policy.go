package main

import (
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/policy"
)

// readPolicyFile parses the policy documents of file ("-" is stdin), with
// errors naming the file's lines, and returns each in the normalised YAML
// form the server stores (so that apply and diff compare like with like).
func readPolicyFile(file string) ([]*policy.Policy, [][]byte, error) {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, policy.MaxFileSize+1))
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, nil, apperr.Wrap(err, apperr.EINVALID, fmt.Sprintf("reading %s", file))
	}
	ps, err := policy.Parse(file, data)
	if err != nil {
		return nil, nil, apperr.Wrap(err, apperr.EINVALID, err.Error())
	}
	docs := make([][]byte, len(ps))
	for i, p := range ps {
		if docs[i], err = policy.Marshal(p); err != nil {
			return nil, nil, err
		}
	}
	return ps, docs, nil
}

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Apply, show, compare and delete the server's policies"}
	cf := bindClientFlags(cmd.PersistentFlags())

	var applyFile string
	apply := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Save every policy document of FILE (- for stdin) on the server, each as a new revision when changed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ps, docs, err := readPolicyFile(applyFile)
			if err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			for i, p := range ps {
				before, err := c.Policy(cmd.Context(), p.Metadata.Name)
				if err != nil && !apperr.Is(err, apperr.ENOTFOUND) {
					return err
				}
				d, err := c.ApplyPolicy(cmd.Context(), p.Metadata.Name, string(docs[i]))
				if err != nil {
					return err
				}
				what := "configured"
				switch {
				case before.Revision == 0:
					what = "created"
				case before.Revision == d.Revision:
					what = "unchanged"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "policy %s %s (revision %d)\n", d.Name, what, d.Revision)
			}
			return nil
		},
	}
	apply.Flags().StringVarP(&applyFile, "filename", "f", "", "policy file (YAML, documents separated by ---; - for stdin)")
	_ = apply.MarkFlagRequired("filename")

	var history bool
	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Print a policy's current document (--history: every revision)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			if history {
				hist, err := c.PolicyHistory(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "REVISION\tCHANGE\tBY\tAT")
				for _, d := range hist {
					change := "apply"
					if d.Deleted {
						change = "delete"
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", d.Revision, change, d.UpdatedBy, d.UpdatedAt.Format("2006-01-02 15:04:05"))
				}
				return tw.Flush()
			}
			d, err := c.Policy(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "# revision %d by %s at %s\n%s", d.Revision, d.UpdatedBy,
				d.UpdatedAt.Format("2006-01-02T15:04:05Z07:00"), d.Document)
			return nil
		},
	}
	get.Flags().BoolVar(&history, "history", false, "list every revision instead")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the policies you may read",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			ps, rev, err := c.Policies(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPROJECT\tREVISION\tBY\tUPDATED")
			for _, d := range ps {
				proj := d.Project
				if proj == "" {
					proj = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", d.Name, proj, d.Revision, d.UpdatedBy, d.UpdatedAt.Format("2006-01-02 15:04:05"))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "policy revision %d\n", rev)
			return nil
		},
	}

	var diffFile string
	diff := &cobra.Command{
		Use:   "diff -f FILE",
		Short: "Show how FILE's policies differ from the server's; exit 1 when they differ",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ps, docs, err := readPolicyFile(diffFile)
			if err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			differ := false
			for i, p := range ps {
				name := p.Metadata.Name
				cur, err := c.Policy(cmd.Context(), name)
				if err != nil && !apperr.Is(err, apperr.ENOTFOUND) {
					return err
				}
				from := "server/" + name
				if cur.Revision == 0 {
					from = "/dev/null"
				} else {
					from = fmt.Sprintf("%s (revision %d)", from, cur.Revision)
				}
				text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
					A: difflib.SplitLines(cur.Document), B: difflib.SplitLines(string(docs[i])),
					FromFile: from, ToFile: diffFile + "/" + name, Context: 3,
				})
				if err != nil {
					return err
				}
				if text != "" {
					differ = true
					fmt.Fprint(cmd.OutOrStdout(), text)
				}
			}
			if differ {
				return errDiffers
			}
			return nil
		},
	}
	diff.Flags().StringVarP(&diffFile, "filename", "f", "", "policy file (YAML; - for stdin)")
	_ = diff.MarkFlagRequired("filename")

	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a policy (its history is kept)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			if err := c.DeletePolicy(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "policy %s deleted\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(apply, get, list, diff, del, newPolicyTestCmd(), newPolicyEvalCmd(cf))
	return cmd
}

func newAllowlistCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "allowlist", Short: "Add, list and remove entries of a project's or the system's CVE allowlist"}
	cf := bindClientFlags(cmd.PersistentFlags())
	var project string
	var system bool
	cmd.PersistentFlags().StringVar(&project, "project", "", "the project whose allowlist to change (this or --system)")
	cmd.PersistentFlags().BoolVar(&system, "system", false, "change the system allowlist, which applies to every project that uses it (administrators)")
	// which checks that exactly one list is named.
	which := func() error {
		if (project == "") == !system {
			return fmt.Errorf("name one allowlist: --project P or --system")
		}
		return nil
	}

	var e api.AllowlistEntry
	add := &cobra.Command{
		Use:   "add ADVISORY-ID... (--project P | --system) [--expires 30d] [--reason TEXT]",
		Short: "Allow advisories (CVE, GHSA, ...) in a project's images or everywhere, until they expire",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := which(); err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			// One entry per advisory, as the pull door's message suggests
			// (customs allowlist add ID1 ID2 --project P ...).
			for _, id := range args {
				e.ID = id
				var entries []api.AllowlistEntry
				var where string
				if system {
					al, err := c.AddSystemAllowlistEntry(cmd.Context(), e)
					if err != nil {
						return err
					}
					entries, where = al.Entries, fmt.Sprintf("the system allowlist (policy revision %d)", al.Revision)
				} else {
					al, err := c.AddAllowlistEntry(cmd.Context(), project, e)
					if err != nil {
						return err
					}
					entries, where = al.Entries, fmt.Sprintf("project %s (policy %s revision %d)", project, al.Policy, al.Revision)
				}
				exp := "never expires"
				for _, x := range entries {
					if x.ID == e.ID && x.Expires != "" {
						exp = "expires " + x.Expires
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s allowed in %s; %s\n", e.ID, where, exp)
			}
			return nil
		},
	}
	add.Flags().StringVar(&e.Expires, "expires", "", "when the entry stops applying: 30d, 12h, 2026-01-31 or an RFC 3339 time (default: never)")
	add.Flags().StringVar(&e.Reason, "reason", "", "why the advisory is allowed (kept with the entry and in the audit log)")
	add.Flags().StringVar(&e.Package, "package", "", "only findings in this package")
	add.Flags().StringVar(&e.Repository, "repository", "", "only images whose name matches this glob")

	list := &cobra.Command{
		Use:   "list (--project P | --system)",
		Short: "List a project's or the system's CVE allowlist",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := which(); err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			var entries []api.AllowlistEntry
			if system {
				al, err := c.SystemAllowlist(cmd.Context())
				if err != nil {
					return err
				}
				entries = al.Entries
			} else {
				al, err := c.Allowlist(cmd.Context(), project)
				if err != nil {
					return err
				}
				entries = al.Entries
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPACKAGE\tREPOSITORY\tEXPIRES\tBY\tREASON")
			for _, x := range entries {
				exp := x.Expires
				if exp == "" {
					exp = "never"
				}
				if x.Expired {
					exp += " (expired)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", x.ID, dash(x.Package), dash(x.Repository), exp, x.AddedBy, x.Reason)
			}
			return tw.Flush()
		},
	}

	remove := &cobra.Command{
		Use:   "remove ADVISORY-ID (--project P | --system)",
		Short: "Remove every entry of an advisory from a project's or the system's CVE allowlist",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := which(); err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			if system {
				if _, err := c.RemoveSystemAllowlistEntry(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s removed from the system allowlist\n", args[0])
				return nil
			}
			if _, err := c.RemoveAllowlistEntry(cmd.Context(), project, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s removed from the allowlist of project %s\n", args[0], project)
			return nil
		},
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// errDiffers ends `customs policy diff` with exit status 1, as diff(1)
// does when the files differ (the diff itself is the output).
var errDiffers = &exitError{code: 1}
