package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/audit"
	"github.com/customs-dev/customs/internal/server"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Query, export, verify and purge the audit trail",
		Long: `Every push, pull, delete, login, token issue and permission change is an audit
event carrying the hash of the one before it, so that editing or deleting a
stored event is detected by "customs audit verify".`,
	}
	cmd.AddCommand(newAuditQueryCmd(), newAuditExportCmd(), newAuditVerifyCmd(), newAuditPurgeCmd(), newAuditWorkloadsCmd())
	return cmd
}

func newAuditQueryCmd() *cobra.Command {
	var q apiclient.AuditQuery
	var output string
	cmd := &cobra.Command{
		Use:   "query",
		Short: "List audit events, newest first",
		Example: `  customs audit query --actor alice --since 24h
  customs audit query --action artifact.push --outcome denied --project library
  customs audit query -n 50 --last 1234 --output json`,
		Args: cobra.NoArgs,
	}
	cf := bindClientFlags(cmd.Flags())
	fs := cmd.Flags()
	fs.StringVar(&q.Actor, "actor", "", "only events of this user or robot")
	fs.StringVar(&q.Action, "action", "", `only this action or actions under it ("artifact" matches artifact.push)`)
	fs.StringVar(&q.Project, "project", "", "only events in this project")
	fs.StringVar(&q.Outcome, "outcome", "", "only success, failure or denied")
	fs.StringVar(&q.Resource, "resource", "", "only resources containing this text")
	fs.StringVar(&q.Since, "since", "", "only events at or after this time (2026-03-01, RFC 3339, or an age: 90m, 24h, 7d)")
	fs.StringVar(&q.Until, "until", "", "only events before this time (same forms as --since)")
	fs.IntVarP(&q.N, "limit", "n", 50, "at most this many events (up to 1000)")
	fs.Int64Var(&q.Last, "last", 0, "only events older than this event id (the next page)")
	fs.StringVarP(&output, "output", "o", "table", "table or json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if output != "table" && output != "json" {
			return apperr.Errorf(apperr.EINVALID, "--output must be table or json")
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		page, err := c.AuditEvents(cmd.Context(), q)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if output == "json" {
			return writeJSON(out, page)
		}
		if err := writeAuditTable(out, page.Events); err != nil {
			return err
		}
		if page.Next != "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "more events: add --last %s\n", page.Next)
		}
		return nil
	}
	return cmd
}

// writeAuditTable prints events as a table for people.
func writeAuditTable(w io.Writer, events []audit.Event) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME (UTC)\tACTOR\tACTION\tRESOURCE\tOUTCOME\tCLIENT\tREASON")
	for _, e := range events {
		actor := e.Actor
		if actor == "" {
			actor = "(" + e.ActorKind + ")"
		} else if e.ActorKind != audit.ActorUser {
			actor += " (" + e.ActorKind + ")"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Time.UTC().Format("2006-01-02 15:04:05"),
			oneLine(actor), oneLine(e.Action), oneLine(e.Resource), e.Outcome, oneLine(e.ClientIP), oneLine(e.Reason))
	}
	return tw.Flush()
}

// oneLine keeps a stored value from breaking the table (or the terminal):
// control characters become spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
}

// sourceFlags choose where export and verify read the trail: a running
// server (API) by default, or the database directly (offline) with
// --offline or any of --config, --data-dir, --db-driver, --db-dsn.
type sourceFlags struct {
	client  *clientFlags
	config  *configFlags
	offline bool
}

func bindSourceFlags(fs *pflag.FlagSet) *sourceFlags {
	sf := &sourceFlags{client: bindClientFlags(fs), config: bindConfigFlags(fs)}
	fs.BoolVar(&sf.offline, "offline", false, "read the database directly instead of asking a server (implied by --config, --data-dir, --db-driver, --db-dsn)")
	for _, f := range []string{"addr", "external-url", "tls-cert", "tls-key", "tls-generate"} {
		_ = fs.MarkHidden(f) // server settings that reading the database ignores
	}
	return sf
}

func (sf *sourceFlags) isOffline(fs *pflag.FlagSet) bool {
	if sf.offline {
		return true
	}
	for _, f := range []string{"config", "data-dir", "db-driver", "db-dsn"} {
		if fs.Changed(f) {
			return true
		}
	}
	return false
}

// scanOffline opens the configured database and runs fn over its trail.
func (sf *sourceFlags) scanOffline(cmd *cobra.Command, fn func(c audit.Chain, events iter.Seq2[audit.Event, error]) error) error {
	cfg, err := sf.config.load(cmd.Flags())
	if err != nil {
		return err
	}
	if cfg.Database.Driver != "postgres" {
		// Opening creates a missing database; verifying a new, empty one
		// would pass and hide a mistyped path.
		path := cfg.Database.DSN
		if path == "" {
			path = filepath.Join(cfg.DataDir, "customs.db")
		}
		if _, err := os.Stat(path); err != nil {
			return apperr.Errorf(apperr.ENOTFOUND, "no customs database at %s (check --data-dir or --config)", path)
		}
	}
	st, err := server.OpenStore(cmd.Context(), cfg, newLogger(cfg))
	if err != nil {
		return err
	}
	defer st.Close()
	return st.ScanAudit(cmd.Context(), fn)
}

func newAuditExportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write every audit event, oldest first, as JSON lines to standard output",
		Long: `Write every stored audit event, oldest first, one JSON object per line, with
its id, prevHash and hash, so the chain can be checked by other tools. Reads
from a server by default, or from the database with --offline/--data-dir/--config.`,
		Example: `  customs audit export > audit.jsonl
  customs audit export --data-dir /var/lib/customs > audit.jsonl`,
		Args: cobra.NoArgs,
	}
	sf := bindSourceFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		out := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
		if sf.isOffline(cmd.Flags()) {
			enc := json.NewEncoder(out)
			err := sf.scanOffline(cmd, func(_ audit.Chain, events iter.Seq2[audit.Event, error]) error {
				for e, err := range events {
					if audit.IndexOnly(err) {
						continue // every event was read; verification reports the mismatch
					}
					if err != nil {
						return err
					}
					if err := enc.Encode(e); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			return out.Flush()
		}
		c, err := sf.client.client()
		if err != nil {
			return err
		}
		if _, err := c.AuditExport(cmd.Context(), out); err != nil {
			return err
		}
		return out.Flush()
	}
	return cmd
}

func newAuditVerifyCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check that no audit event was altered or removed; exit 1 naming the first broken event",
		Long: `Recompute the audit trail's hash chain from its first stored event (or the
anchor a purge left) and check every link and the chain's head. Exits 0 when
the trail is intact; otherwise exits 1 naming the first broken event and why
(altered, missing, out of order, or removed outside a purge).

Asks a server by default; with --offline, --data-dir, --config, --db-driver or
--db-dsn it reads the database directly, so it works with the server stopped.
Keep the printed head hash somewhere else: a trail rewritten from scratch by
someone with full write access to the database can only be told apart from
the original by its head.`,
		Example: `  customs audit verify
  customs audit verify --data-dir /var/lib/customs`,
		Args: cobra.NoArgs,
	}
	sf := bindSourceFlags(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if output != "text" && output != "json" {
			return apperr.Errorf(apperr.EINVALID, "--output must be text or json")
		}
		var rep audit.Report
		var err error
		if sf.isOffline(cmd.Flags()) {
			err = sf.scanOffline(cmd, func(c audit.Chain, events iter.Seq2[audit.Event, error]) error {
				var err error
				rep, err = audit.Verify(c, events)
				return err
			})
		} else {
			var c *apiclient.Client
			if c, err = sf.client.client(); err == nil {
				rep, err = c.AuditVerify(cmd.Context())
			}
		}
		if err != nil {
			return err
		}
		if output == "json" {
			if err := writeJSON(cmd.OutOrStdout(), rep); err != nil {
				return err
			}
		} else if rep.OK {
			fmt.Fprintln(cmd.OutOrStdout(), rep.String())
		}
		if !rep.OK {
			return apperr.Errorf(apperr.ECONFLICT, "%s", rep.String())
		}
		return nil
	}
	return cmd
}

func newAuditPurgeCmd() *cobra.Command {
	var olderThan string
	cmd := &cobra.Command{
		Use:   "purge",
		Short: "Remove audit events older than a given age (the purge itself is audited)",
		Long: `Remove the oldest audit events, up to the first one newer than --older-than.
The chain stays verifiable from the first remaining event, and the purge is
recorded as an audit.purge event naming who purged what.`,
		Example: `  customs audit purge --older-than 90d`,
		Args:    cobra.NoArgs,
	}
	cf := bindClientFlags(cmd.Flags())
	cmd.Flags().StringVar(&olderThan, "older-than", "", "remove events older than this age (e.g. 90d, 720h); required")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if olderThan == "" {
			return apperr.Errorf(apperr.EINVALID, "--older-than is required, e.g. --older-than 90d")
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		res, err := c.AuditPurge(cmd.Context(), olderThan)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "purged %d audit events older than %s; recorded as event %d\n",
			res.Deleted, res.Before.UTC().Format("2006-01-02 15:04:05 UTC"), res.Event.ID)
		return nil
	}
	return cmd
}
