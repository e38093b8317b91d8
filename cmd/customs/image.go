package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/scan/report"
)

// newImageCmd is `customs image`: the server's scans of the images it
// holds (the standalone scanner is `customs scan`).
func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Scan images held by a customs server and read their reports"}
	cmd.AddCommand(newImageScanCmd(), newImageReportCmd())
	return cmd
}

// imageRef splits "project/repo:tag" or "project/repo@sha256:…" into the
// repository and the reference (a tag or a digest). A leading host
// ("registry.example.com/project/repo:tag") is dropped: the server asked
// is the one of --server.
func imageRef(s string) (repo, ref string, err error) {
	if i := strings.Index(s, "@"); i >= 0 {
		repo, ref = s[:i], s[i+1:]
	} else if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		repo, ref = s[:i], s[i+1:]
	} else {
		repo, ref = s, "latest"
	}
	if first, rest, ok := strings.Cut(repo, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		repo = rest
	}
	if repo == "" || ref == "" || !strings.Contains(repo, "/") {
		return "", "", apperr.Errorf(apperr.EINVALID, "%q is not PROJECT/REPOSITORY[:TAG|@DIGEST]", s)
	}
	return repo, ref, nil
}

// reportFlags are the output flags of the image commands.
type reportFlags struct {
	format, output, failOn string
}

func bindReportFlags(cmd *cobra.Command) *reportFlags {
	rf := &reportFlags{}
	cmd.Flags().StringVar(&rf.format, "format", "table", "output format: table, json, sarif, cyclonedx or spdx")
	cmd.Flags().StringVarP(&rf.output, "output", "o", "", "write the report to this file instead of standard output")
	cmd.Flags().StringVar(&rf.failOn, "fail-on", "", "exit 1 when a finding is at or above this severity (critical, high, medium, low, none, unknown)")
	return rf
}

// write encodes r as asked and applies --fail-on.
func (rf *reportFlags) write(r *report.Report, subject string) error {
	f, err := report.ParseFormat(rf.format)
	if err != nil {
		return &exitError{code: scanExitError, err: err}
	}
	var th report.Threshold
	if rf.failOn != "" {
		if th, err = report.ParseThreshold(rf.failOn); err != nil {
			return &exitError{code: scanExitError, err: err}
		}
	}
	out := os.Stdout
	if rf.output != "" {
		fh, err := os.Create(rf.output)
		if err != nil {
			return &exitError{code: scanExitError, err: err}
		}
		defer fh.Close()
		out = fh
	}
	if err := report.Encode(out, r, f, report.Options{Subject: subject}); err != nil {
		return &exitError{code: scanExitError, err: err}
	}
	if r.Status == report.StatusFailed || r.Status == report.StatusUnsupported {
		return &exitError{code: scanExitError, err: fmt.Errorf("scan of %s %s: %s", r.Digest, r.Status, r.Reason)}
	}
	if rf.failOn != "" {
		if n := len(th.Exceeding(r)); n > 0 {
			return &exitError{code: scanExitFindings, err: fmt.Errorf("%d finding(s) at or above %s", n, th)}
		}
	}
	return nil
}

func newImageScanCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "scan PROJECT/REPOSITORY[:TAG|@DIGEST]",
		Short: "Ask the server to scan an image it holds, wait for the report and print it",
		Long: `Queue a scan of an image held by the server (it reads the image's layers again,
unlike the re-match after a vulnerability database update), wait for it with
--wait, and print the report. Needs the scan permission in the project.

Exit codes: 0 ok, 1 --fail-on met, 2 the scan failed or another error.`,
		Args: cobra.ExactArgs(1),
	}
	cf := bindClientFlags(cmd.Flags())
	rf := bindReportFlags(cmd)
	wait := cmd.Flags().Duration("wait", 10*time.Minute, "how long to wait for the report (0: queue the scan and return)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		repo, ref, err := imageRef(args[0])
		if err != nil {
			return err
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		req, err := c.RequestScan(ctx, repo, ref)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "scan of %s@%s queued\n", req.Repository, req.Digest)
		if *wait <= 0 {
			return nil
		}
		r, err := waitForReport(ctx, c, req.Digest, *wait)
		if err != nil {
			return &exitError{code: scanExitError, err: err}
		}
		return rf.write(r, req.Repository+"@"+req.Digest)
	}
	return cmd
}

func newImageReportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report PROJECT/REPOSITORY[:TAG|@DIGEST] | DIGEST",
		Short: "Print the server's current scan report of an image",
		Args:  cobra.ExactArgs(1),
	}
	cf := bindClientFlags(cmd.Flags())
	rf := bindReportFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := cf.client()
		if err != nil {
			return err
		}
		d, subject := args[0], args[0]
		if !strings.HasPrefix(d, "sha256:") && !strings.HasPrefix(d, "sha512:") {
			repo, ref, err := imageRef(args[0])
			if err != nil {
				return err
			}
			if !strings.Contains(ref, ":") {
				return apperr.Errorf(apperr.EINVALID, "give a digest (%s@sha256:…) or use customs image scan, which resolves tags", repo)
			}
			d = ref
		}
		r, err := c.ScanReport(cmd.Context(), d)
		if err != nil {
			return err
		}
		if !r.Status.Final() {
			return &exitError{code: scanExitError, err: fmt.Errorf("the scan of %s is %s", d, r.Status)}
		}
		return rf.write(r, subject)
	}
	return cmd
}

// waitForReport polls the report of digest d until its scan is over,
// printing its progress to standard error when it changes.
func waitForReport(ctx context.Context, c *apiclient.Client, d string, timeout time.Duration) (*report.Report, error) {
	var r *report.Report
	err := pollUntil(ctx, timeout, func(ctx context.Context) (bool, string, error) {
		var err error
		r, err = c.ScanReport(ctx, d)
		switch {
		case apperr.Is(err, apperr.ENOTFOUND):
			return false, "", nil
		case err != nil:
			return false, "", err
		}
		return r.Status.Final(), "scan " + string(r.Status), nil
	})
	if err != nil {
		return nil, fmt.Errorf("no report of %s: %w", d, err)
	}
	return r, nil
}

// pollInterval is how often pollUntil asks.
const pollInterval = 300 * time.Millisecond

// pollUntil calls step until it reports done, an error, or timeout passes
// (an error saying so). Each progress line step returns is printed to
// standard error when it differs from the previous one: the progress of
// the CLI's waits (customs image scan, customs gate).
func pollUntil(ctx context.Context, timeout time.Duration, step func(context.Context) (done bool, progress string, err error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		done, progress, err := step(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("still waiting after %s", timeout)
			}
			return err
		}
		if done {
			return nil
		}
		if progress != "" && progress != last {
			fmt.Fprintln(os.Stderr, progress)
			last = progress
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still waiting after %s", timeout)
		case <-time.After(pollInterval):
		}
	}
}
