package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/server"
	"github.com/customs-dev/customs/internal/store"
	"github.com/customs-dev/customs/internal/vulndb"
	"github.com/customs-dev/customs/internal/vulndb/severity"
)

func newVulndbCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vulndb",
		Short: "Import, update and inspect the vulnerability database",
		Long: `The vulnerability database holds OSV advisories and CVE severity ratings,
imported per source (an OSV all.zip export, a directory of OSV records, or an
http(s) URL of either) into the configured metadata database. These commands
work directly on that database, like "customs gc", and are safe while
"customs serve" runs on it.`,
	}
	cmd.AddCommand(newVulndbImportCmd(), newVulndbUpdateCmd(), newVulndbStatusCmd(), newVulndbOverrideCmd())
	return cmd
}

// vulndbEnv is an open store and service for one command.
type vulndbEnv struct {
	st  store.Store
	svc *vulndb.Service
}

func (e *vulndbEnv) Close() {
	e.svc.Close()
	e.st.Close()
}

func openVulndb(cmd *cobra.Command, cf *configFlags) (*vulndbEnv, error) {
	cfg, err := cf.load(cmd.Flags())
	if err != nil {
		return nil, err
	}
	logger := newLogger(cfg)
	st, err := server.OpenStore(cmd.Context(), cfg, logger)
	if err != nil {
		return nil, err
	}
	svc, err := server.OpenVulnDB(cfg, st, logger)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &vulndbEnv{st: st, svc: svc}, nil
}

func newVulndbImportCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "import PATH|URL...",
		Short: "Import OSV exports, directories, record files or URLs now",
		Long: `Import each source in turn, each in one transaction: records new or changed
since the source's last import are written, records gone from it are removed,
and the database revision grows if anything changed. A source that cannot be
read (a corrupted zip, an HTTP error) changes nothing; a bad record is
skipped and reported, and the rest of its source imports.

A source is named after its location (or the configured source at that
location); --name names the only source given.`,
		Example: `  customs vulndb import testdata/vulndata/osv/alpine-v3.9/all.zip
  customs vulndb import https://osv-vulnerabilities.storage.googleapis.com/Go/all.zip
  customs vulndb import --name nvd ./nvd-feeds/`,
		Args: cobra.MinimumNArgs(1),
	}
	cf := bindConfigFlags(cmd.Flags())
	cmd.Flags().StringVar(&name, "name", "", "the source's name (with a single PATH or URL)")
	force := cmd.Flags().Bool("force", false, "read sources even if unchanged since their last import (HTTP validators, file content hash)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if name != "" && len(args) != 1 {
			return apperr.Errorf(apperr.EINVALID, "--name names one source; %d given", len(args))
		}
		env, err := openVulndb(cmd, cf)
		if err != nil {
			return err
		}
		defer env.Close()
		srcs := make([]vulndb.Source, len(args))
		for i, a := range args {
			srcs[i] = vulndb.Source{Name: name, Location: a, Force: *force}
		}
		return runImport(cmd, env.svc, func(ctx context.Context) ([]vulndb.Result, error) {
			return env.svc.Import(ctx, srcs...)
		})
	}
	return cmd
}

func newVulndbUpdateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Import every configured source (vulndb.sources) now",
		Long: `Import every source of vulndb.sources, as "customs serve" does every
vulndb.updateInterval. URL sources are fetched with conditional requests: an
unchanged source costs one request and no write.`,
		Args: cobra.NoArgs,
	}
	cf := bindConfigFlags(cmd.Flags())
	force := cmd.Flags().Bool("force", false, "read sources even if unchanged since their last import")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		env, err := openVulndb(cmd, cf)
		if err != nil {
			return err
		}
		defer env.Close()
		if !*force {
			return runImport(cmd, env.svc, env.svc.Update)
		}
		srcs := env.svc.Sources()
		if len(srcs) == 0 {
			return apperr.Errorf(apperr.EINVALID, "no vulnerability sources are configured (vulndb.sources)")
		}
		for i := range srcs {
			srcs[i].Force = true
		}
		return runImport(cmd, env.svc, func(ctx context.Context) ([]vulndb.Result, error) { return env.svc.Import(ctx, srcs...) })
	}
	return cmd
}

// maxSkippedShown bounds the bad records listed per source.
const maxSkippedShown = 20

// runImport runs an import while showing its progress on stderr, then
// prints what each source did on stdout. It fails if a source failed.
func runImport(cmd *cobra.Command, svc *vulndb.Service, run func(context.Context) ([]vulndb.Result, error)) error {
	errOut := cmd.ErrOrStderr()
	stop := showProgress(errOut, svc)
	results, err := run(cmd.Context())
	stop()
	out := cmd.OutOrStdout()
	for _, r := range results {
		switch {
		case r.Err != nil:
			fmt.Fprintf(out, "%s: FAILED, previous data kept: %s\n", r.Source, apperr.Message(r.Err))
		case r.Unchanged:
			fmt.Fprintf(out, "%s: unchanged since its last import (--force reads it anyway); revision %d\n", r.Source, r.Revision)
		default:
			fmt.Fprintf(out, "%s: %d records read, %d added, %d updated, %d removed, %d skipped; revision %d (%s)\n",
				r.Source, r.Read, r.Added, r.Updated, r.Removed, len(r.Skipped), r.Revision, r.Duration.Round(time.Millisecond))
		}
		for i, e := range r.Skipped {
			if i == maxSkippedShown {
				fmt.Fprintf(errOut, "  ... and %d more skipped records\n", len(r.Skipped)-i)
				break
			}
			fmt.Fprintf(errOut, "  skipped: %s\n", oneLine(e.Error()))
		}
	}
	if err != nil {
		failed := 0
		for _, r := range results {
			if r.Err != nil {
				failed++
			}
		}
		if failed > 0 {
			return apperr.Errorf(apperr.EINTERNAL, "%d of %d sources failed", failed, len(results))
		}
		return err
	}
	return nil
}

// progressInterval is how often progress is written: on a terminal one
// line rewritten at most every second, otherwise a line every 10 seconds.
const (
	progressTTY   = time.Second
	progressPlain = 10 * time.Second
)

// showProgress writes the running imports' progress to w until the
// returned function is called.
func showProgress(w io.Writer, svc *vulndb.Service) (stop func()) {
	f, isFile := w.(*os.File)
	tty := isFile && term.IsTerminal(int(f.Fd()))
	every := progressPlain
	if tty {
		every = progressTTY
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		wrote := false
		for {
			select {
			case <-done:
				if tty && wrote {
					fmt.Fprint(w, "\r\033[K")
				}
				return
			case <-t.C:
				for _, p := range svc.Running() {
					line := progressLine(p)
					if tty {
						fmt.Fprintf(w, "\r\033[K%s", line)
					} else {
						fmt.Fprintln(w, line)
					}
					wrote = true
				}
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// progressLine describes one running import.
func progressLine(p vulndb.Progress) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", p.Source, p.Phase)
	if p.Bytes > 0 {
		fmt.Fprintf(&b, ", %.1f MiB downloaded", float64(p.Bytes)/(1<<20))
	}
	fmt.Fprintf(&b, ", %d records read, %d new or changed", p.Read, p.Changed)
	if p.Errors > 0 {
		fmt.Fprintf(&b, ", %d bad", p.Errors)
	}
	fmt.Fprintf(&b, " (%s)", time.Since(p.Started).Round(time.Second))
	return b.String()
}

func newVulndbStatusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the sources, advisory counts per ecosystem and the revision",
		Args:  cobra.NoArgs,
	}
	cf := bindConfigFlags(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		env, err := openVulndb(cmd, cf)
		if err != nil {
			return err
		}
		defer env.Close()
		st, err := env.svc.Status(cmd.Context())
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if asJSON {
			return writeJSON(out, st)
		}
		return writeVulndbStatus(out, st)
	}
	return cmd
}

// when formats a time for the status table ("never" for the zero time).
func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func writeVulndbStatus(w io.Writer, st *vulndb.Status) error {
	fmt.Fprintf(w, "revision %d, last change %s (UTC)\n", st.Revision, when(st.UpdatedAt))
	fmt.Fprintf(w, "%d advisories, %d CVE ratings, %d overrides\n\n", st.Advisories, st.CVERatings, st.Overrides)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tRECORDS\tLAST SUCCESS (UTC)\tLAST ATTEMPT (UTC)\tLOCATION\tLAST ERROR")
	for _, s := range st.Sources {
		name := s.Name
		if !s.Configured {
			name += " (not configured)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", oneLine(name), s.Records, when(s.LastSuccess), when(s.LastAttempt),
			oneLine(s.Location), oneLine(s.LastError))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ECOSYSTEM\tADVISORIES")
	for _, e := range st.Ecosystems {
		name := e.Ecosystem
		if e.Release != "" {
			name = "  " + name
		}
		fmt.Fprintf(tw, "%s\t%d\n", oneLine(name), e.Advisories)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range st.Running {
		fmt.Fprintf(w, "\nrunning on %s: %s\n", oneLine(p.Owner), progressLine(p))
	}
	return nil
}

func newVulndbOverrideCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "override",
		Short: "Set, list and delete operator severity overrides",
		Long: `An override sets the severity of every finding of an advisory, or of every
advisory naming a CVE id as an alias, above anything the advisory or a CVE
feed says. Each change bumps the database revision, so cached decisions are
re-evaluated.`,
	}
	set := &cobra.Command{
		Use:     "set ID",
		Short:   "Set the severity of an advisory or CVE id",
		Example: `  customs vulndb override set CVE-2019-14697 --severity low --reason "i386 math is not used in our images"`,
		Args:    cobra.ExactArgs(1),
	}
	cf := bindConfigFlags(set.Flags())
	var level, reason, by string
	set.Flags().StringVar(&level, "severity", "", "critical, high, medium, low, none or unknown (required)")
	set.Flags().StringVar(&reason, "reason", "", "why (shown with every finding it rates)")
	set.Flags().StringVar(&by, "by", "", "who decides (default: the operating system user)")
	set.RunE = func(cmd *cobra.Command, args []string) error {
		lvl, err := severity.ParseLevel(level)
		if err != nil {
			return apperr.Errorf(apperr.EINVALID, "--severity: %v", err)
		}
		if by == "" {
			by = osUser()
		}
		env, err := openVulndb(cmd, cf)
		if err != nil {
			return err
		}
		defer env.Close()
		o, err := env.svc.SetOverride(cmd.Context(), args[0], lvl, reason, by)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s is now %s (set by %s); revision %d\n", o.ID, o.Level, o.CreatedBy, o.Revision)
		return nil
	}

	list := &cobra.Command{Use: "list", Short: "List the overrides", Args: cobra.NoArgs}
	lf := bindConfigFlags(list.Flags())
	var asJSON bool
	list.Flags().BoolVar(&asJSON, "json", false, "print the overrides as JSON")
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		env, err := openVulndb(cmd, lf)
		if err != nil {
			return err
		}
		defer env.Close()
		ovs, err := env.svc.Overrides(cmd.Context())
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if asJSON {
			return writeJSON(out, ovs)
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSEVERITY\tBY\tSET (UTC)\tREVISION\tREASON")
		for _, o := range ovs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", oneLine(o.ID), o.Level, oneLine(o.CreatedBy), when(o.CreatedAt), o.Revision, oneLine(o.Reason))
		}
		return tw.Flush()
	}

	del := &cobra.Command{Use: "delete ID", Short: "Delete the override of an id", Args: cobra.ExactArgs(1)}
	df := bindConfigFlags(del.Flags())
	del.RunE = func(cmd *cobra.Command, args []string) error {
		env, err := openVulndb(cmd, df)
		if err != nil {
			return err
		}
		defer env.Close()
		rev, err := env.svc.DeleteOverride(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "override of %s deleted; revision %d\n", args[0], rev)
		return nil
	}
	cmd.AddCommand(set, list, del)
	return cmd
}

// osUser names the operating system user running the command.
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "cli"
}
