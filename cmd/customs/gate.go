package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/apiclient"
	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/decide"
	"github.com/customs-dev/customs/internal/policy"
	"github.com/customs-dev/customs/internal/scan/report"
	"github.com/customs-dev/customs/internal/store"
)

// Exit codes of customs gate (seed 004's Task: 0 pass, 1 fail).
const (
	gatePass  = 0 // every policy allows the image (or only warns)
	gateDeny  = 1 // a policy denies the image
	gateError = 2 // the gate could not decide: bad flags, unknown image, scan pending, server or auth trouble
)

// gateFormats are the output formats of customs gate.
var gateFormats = []string{"table", "json", "junit", "sarif"}

// gateOptions are customs gate's flags.
type gateOptions struct {
	threshold   string
	wait        time.Duration
	policies    []string
	format      string
	environment string
	namespace   string
}

// newGateCmd is `customs gate`: seed 004's CI step for any CI system.
func newGateCmd() *cobra.Command {
	o := &gateOptions{}
	cmd := &cobra.Command{
		Use:   "gate IMAGE --threshold none|low|medium|high|critical [--policy FILE]...",
		Short: "CI gate: wait for an image's scan and fail on findings at or above a threshold or on policy violations",
		Long: `Resolve IMAGE (PROJECT/REPOSITORY:TAG, PROJECT/REPOSITORY@DIGEST, either with
the registry host in front, or a bare DIGEST) on the customs server, wait for
its scan (with --wait; progress on standard error), and decide with the policy
engine, on your machine, on the server's scan:

  --threshold S  denies findings of severity S or higher (unknown severity
                 counts as critical) that the project's CVE allowlist does
                 not allow (customs allowlist add ID --project P); "none"
                 checks nothing and exits 0 at once, as seed 004's Task does.
  --policy FILE  policy documents (as customs policy apply takes them),
                 evaluated for --environment / --namespace; an image that no
                 policy of the files matches is denied.

Both may be given: the image must pass each. The findings per severity and
every decision (policy, rule, advisories, packages, installed and fixed
versions, and the command that would allow the image) are printed as --format
says: table, json, junit (one test case per policy rule and blocking finding)
or sarif (the scan's findings, SARIF 2.1.0).

Credentials: --username/CUSTOMS_USERNAME and CUSTOMS_PASSWORD (a robot account
with the pull permission is enough), or those of customs login.

Exit codes: 0 the image passes, 1 a policy denies it, 2 the gate could not
decide (bad flag or policy file, unknown image, scan pending or failed to
arrive within --wait, server unreachable, credentials refused).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &exitError{code: gateError, err: fmt.Errorf("give one IMAGE (got %d arguments)", len(args))}
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: gateError, err: err} })
	cf := bindClientFlags(cmd.Flags())
	cmd.Flags().StringVar(&o.threshold, "threshold", "", "deny findings at or above this severity: none, low, medium, high or critical")
	cmd.Flags().DurationVar(&o.wait, "wait", 0, "how long to wait for a queued or running scan (0: do not wait; a pending scan exits 2)")
	cmd.Flags().StringArrayVar(&o.policies, "policy", nil, "policy file to evaluate (repeatable)")
	cmd.Flags().StringVar(&o.format, "format", "table", "output format: "+strings.Join(gateFormats, ", "))
	cmd.Flags().StringVar(&o.environment, "environment", "", "environment the image is deployed to, for --policy scopes")
	cmd.Flags().StringVar(&o.namespace, "namespace", "", "Kubernetes namespace the image is deployed to, for --policy scopes")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		code, err := runGate(cmd.Context(), o, cf, args[0], cmd.OutOrStdout())
		if code == gatePass && err == nil {
			return nil
		}
		return &exitError{code: code, err: err}
	}
	return cmd
}

// gateEngine is one engine the gate evaluates, and what it came from.
type gateEngine struct {
	source    string // "--threshold high", "--policy FILE..."
	eng       *policy.Engine
	threshold *policy.Policy // the --threshold policy, compiled by thresholdEngine
}

// gateDecision is one engine's decision.
type gateDecision struct {
	Source   string           `json:"source"`
	Decision *policy.Decision `json:"decision"`
}

// gateResult is the JSON output of customs gate.
type gateResult struct {
	Image       string         `json:"image"`
	Repository  string         `json:"repository"`
	Digest      string         `json:"digest"`
	Threshold   string         `json:"threshold,omitempty"`
	Policies    []string       `json:"policies,omitempty"`
	Environment string         `json:"environment,omitempty"`
	Namespace   string         `json:"namespace,omitempty"`
	Outcome     policy.Outcome `json:"outcome"`
	ExitCode    int            `json:"exitCode"`
	Counts      report.Counts  `json:"counts"`
	Decisions   []gateDecision `json:"decisions"`
	Report      *report.Report `json:"report"`
}

// runGate does customs gate's work and returns its exit code.
func runGate(ctx context.Context, o *gateOptions, cf *clientFlags, image string, out io.Writer) (int, error) {
	fail := func(err error) (int, error) { return gateError, err }
	if !contains(gateFormats, o.format) {
		return fail(apperr.Errorf(apperr.EINVALID, "--format %q is not one of %s", o.format, strings.Join(gateFormats, ", ")))
	}
	if o.threshold == "" && len(o.policies) == 0 {
		return fail(apperr.Errorf(apperr.EINVALID, "give --threshold (none, low, medium, high, critical) or --policy FILE"))
	}
	if o.wait < 0 {
		return fail(apperr.Errorf(apperr.EINVALID, "--wait %s is negative", o.wait))
	}
	engines, err := gateEngines(o)
	if err != nil {
		return fail(err)
	}
	host, ref, err := gateImageRef(image)
	if err != nil {
		return fail(err)
	}
	if len(engines) == 0 {
		// --threshold none alone: nothing to check, as seed 004's Task.
		fmt.Fprintf(os.Stderr, "gate: threshold none, %s not checked\n", image)
		return gatePass, nil
	}

	c, err := cf.client()
	if err != nil {
		return fail(err)
	}
	if host == "" {
		if u, err := url.Parse(c.BaseURL); err == nil && u.Host != "" {
			host = u.Host
		} else {
			host = "localhost"
		}
	}
	img, err := waitForImage(ctx, c, ref, o.wait)
	if err != nil {
		return fail(err)
	}
	rep, err := c.ScanReport(ctx, img.Digest)
	if err != nil {
		return fail(fmt.Errorf("reading the scan report of %s: %w", img.Digest, err))
	}
	if !rep.Status.Final() {
		return fail(fmt.Errorf("scan pending: the scan of %s is %s again (queued while the gate read it); run the gate again", img.Digest, rep.Status))
	}

	in, err := gateInput(host, img.Repository, ref, rep, o)
	if err != nil {
		return fail(err)
	}
	if len(engines) > 0 && engines[0].threshold != nil {
		// The threshold applies with the project's CVE allowlist, as the
		// project setting does at the registry door, so that the
		// allowlist command a denial suggests is the one that helps.
		if engines[0].eng, err = thresholdEngine(ctx, c, engines[0].threshold, in.Project); err != nil {
			return fail(err)
		}
	}
	res := &gateResult{Image: in.Image.String(), Repository: img.Repository, Digest: img.Digest, Threshold: o.threshold,
		Policies: o.policies, Environment: o.environment, Namespace: o.namespace, Outcome: policy.Allowed,
		Counts: report.CountFindings(rep.Findings), Report: rep}
	for _, ge := range engines {
		d, err := ge.eng.Evaluate(ctx, in)
		if err != nil {
			return fail(fmt.Errorf("evaluating %s: %w", ge.source, err))
		}
		res.Decisions = append(res.Decisions, gateDecision{Source: ge.source, Decision: d})
		switch {
		case d.Outcome == policy.Denied:
			res.Outcome = policy.Denied
		case d.Outcome == policy.Warned && res.Outcome == policy.Allowed:
			res.Outcome = policy.Warned
		}
	}
	if res.Outcome == policy.Denied {
		res.ExitCode = gateDeny
	}
	if err := writeGate(out, o.format, res); err != nil {
		return fail(err)
	}
	if res.ExitCode == gateDeny {
		return gateDeny, fmt.Errorf("gate failed: %s is denied", res.Image)
	}
	return gatePass, nil
}

// gateEngines checks the threshold and compiles the policy files into an
// engine of their own (so that the files' scopes do not replace the
// threshold's cluster-wide policy): none for --threshold none without
// files. The threshold's engine (first) is compiled by thresholdEngine
// once the image's project is known.
func gateEngines(o *gateOptions) ([]gateEngine, error) {
	var out []gateEngine
	if o.threshold != "" {
		p, err := policy.ThresholdPolicy(o.threshold)
		if err != nil {
			return nil, apperr.Errorf(apperr.EINVALID, "--threshold: %v", err)
		}
		if p.Spec.Vulnerabilities != nil {
			out = append(out, gateEngine{source: "--threshold " + o.threshold, threshold: p})
		}
	}
	if len(o.policies) > 0 {
		var ps []*policy.Policy
		for _, f := range o.policies {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, apperr.Errorf(apperr.EINVALID, "--policy: %v", err)
			}
			p, err := policy.Parse(f, data)
			if err != nil {
				return nil, err
			}
			ps = append(ps, p...)
		}
		eng, err := policy.Compile(ps, policy.Config{Default: policy.Denied})
		if err != nil {
			return nil, err
		}
		out = append(out, gateEngine{source: "--policy " + strings.Join(o.policies, " --policy "), eng: eng})
	}
	return out, nil
}

// thresholdEngine compiles the threshold policy th as project's settings
// policy, with the project's CVE allowlist as the server holds it (so
// "customs allowlist add ID --project P" lets a finding through the gate as
// through the registry door). Without the right to read that allowlist
// the threshold applies without it, with a note on standard error.
func thresholdEngine(ctx context.Context, c *apiclient.Client, th *policy.Policy, project string) (*policy.Engine, error) {
	p := *th
	vr := *th.Spec.Vulnerabilities
	p.Spec.Vulnerabilities = &vr
	p.Metadata.Name = policy.ProjectPolicyName(project)
	p.Metadata.Description = th.Metadata.Description + ", with project " + project + "'s CVE allowlist"
	p.Spec.Scope.Projects = []string{project}
	al, err := c.Allowlist(ctx, project)
	switch {
	case apperr.Is(err, apperr.ENOTFOUND) || apperr.Is(err, apperr.EDENIED):
		fmt.Fprintf(os.Stderr, "gate: project %s's CVE allowlist is not readable with these credentials (%s); the threshold applies without it\n",
			project, apperr.Message(err))
	case err != nil:
		return nil, fmt.Errorf("reading project %s's CVE allowlist: %w", project, err)
	}
	for _, e := range al.Entries {
		pe := policy.AllowlistEntry{ID: e.ID, Package: e.Package, Repository: e.Repository, Reason: e.Reason, AddedBy: e.AddedBy}
		if e.Expires != "" {
			t, err := time.Parse(time.RFC3339, e.Expires)
			if err != nil {
				return nil, fmt.Errorf("project %s's allowlist entry %s: expires %q is not an RFC 3339 time", project, e.ID, e.Expires)
			}
			pe.Expires = &t
		}
		vr.Allowlist = append(vr.Allowlist, pe)
	}
	return policy.Compile([]*policy.Policy{&p}, policy.Config{Default: policy.Allowed})
}

// gateImageRef splits IMAGE into the registry host written in it ("" when
// none) and the reference the server's image API takes: a bare digest,
// or PROJECT/REPOSITORY:TAG or PROJECT/REPOSITORY@DIGEST (a reference
// without tag or digest means :latest).
func gateImageRef(image string) (host, ref string, err error) {
	if strings.HasPrefix(image, "sha256:") || strings.HasPrefix(image, "sha512:") {
		if _, err := digest.Parse(image); err != nil {
			return "", "", apperr.Errorf(apperr.EINVALID, "%q is not a digest: %v", image, err)
		}
		return "", image, nil
	}
	if first, _, ok := strings.Cut(image, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		host = first
	}
	repo, r, err := imageRef(image)
	if err != nil {
		return "", "", err
	}
	sep := ":"
	if strings.Contains(r, ":") {
		sep = "@"
	}
	if _, err := policy.ParseImage("localhost/" + repo + sep + r); err != nil {
		return "", "", apperr.Errorf(apperr.EINVALID, "%q is not an image reference: %v", image, err)
	}
	return host, repo + sep + r, nil
}

// waitForImage resolves ref on the server and waits up to wait for its
// scan to end, printing the progress on standard error. It returns the
// image (its Status final: done, or failed or unsupported, which the
// policies decide about). A scan still pending when wait is over (at once
// for 0) is an error that says "scan pending".
func waitForImage(ctx context.Context, c *apiclient.Client, ref string, wait time.Duration) (*api.ImageVulnerabilities, error) {
	img, err := c.Image(ctx, ref)
	switch {
	case apperr.Is(err, apperr.ENOTFOUND):
		return nil, fmt.Errorf("unknown image %s: %w", ref, err)
	case err != nil:
		return nil, err
	case report.Status(img.Status).Final():
		return img, nil
	case wait <= 0:
		return nil, fmt.Errorf("scan pending: %s (wait for it with --wait, e.g. --wait 10m)", imageProgress(img))
	}
	ref = img.Repository + "@" + img.Digest // the digest, should the tag move meanwhile
	err = pollUntil(ctx, wait, func(ctx context.Context) (bool, string, error) {
		got, err := c.Image(ctx, ref)
		if apperr.Is(err, apperr.EUNAVAILABLE) && ctx.Err() == nil {
			// A server restarting (a rolling upgrade) is waited for too.
			return false, "customs unavailable, retrying: " + apperr.Message(err), nil
		}
		if err != nil {
			return false, "", err
		}
		img = got
		return report.Status(img.Status).Final(), imageProgress(img), nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan pending: %s: %w", imageProgress(img), err)
	}
	return img, nil
}

// imageProgress says where a pending scan stands.
func imageProgress(img *api.ImageVulnerabilities) string {
	s := "scan of " + img.Repository + "@" + img.Digest + " " + img.Status
	switch {
	case img.Position > 0:
		s += fmt.Sprintf(" (position %d in the scan queue)", img.Position)
	case img.Stage != "":
		s += ": " + img.Stage
	}
	if img.Reason != "" {
		s += " (" + img.Reason + ")"
	}
	return s
}

// gateInput is the policy input of the gate: the image as written (with
// the registry host), its digest and project, where it is deployed, and
// its scan.
func gateInput(host, repo, ref string, rep *report.Report, o *gateOptions) (*policy.Input, error) {
	name := host + "/" + repo
	if r, ok := strings.CutPrefix(ref, repo+":"); ok {
		name += ":" + r
	}
	name += "@" + rep.Digest
	img, err := policy.ParseImage(name)
	if err != nil {
		return nil, err
	}
	project, _, _ := strings.Cut(repo, "/")
	scan, err := scanSummary(rep)
	if err != nil {
		return nil, err
	}
	return &policy.Input{Image: img, Digest: rep.Digest, Project: project, Environment: o.environment, Namespace: o.namespace,
		Scan: scan}, nil
}

// scanSummary converts a scan report into the policy engine's input with
// the registry door's own conversion (decide.Summary, which reads a stored
// report), so that the gate decides as the doors do.
func scanSummary(r *report.Report) (*policy.ScanSummary, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return decide.Summary(&store.ScanReport{Digest: r.Digest, Status: string(r.Status), Reason: r.Reason,
		VulnRevision: r.VulnDBRevision, MatchedAt: r.MatchedAt, Data: data})
}

// writeGate writes res in format.
func writeGate(w io.Writer, format string, res *gateResult) error {
	switch format {
	case "json":
		return writeJSON(w, res)
	case "sarif":
		return report.Encode(w, res.Report, report.FormatSARIF, report.Options{Subject: res.Image, ToolVersion: version})
	case "junit":
		return writeGateJUnit(w, res)
	}
	return writeGateTable(w, res)
}

// writeGateTable writes the scan's findings as customs image report does,
// then each decision with its reasons.
func writeGateTable(w io.Writer, res *gateResult) error {
	if err := report.EncodeTable(w, res.Report, report.Options{Subject: res.Image}); err != nil {
		return err
	}
	for _, gd := range res.Decisions {
		d := gd.Decision
		fmt.Fprintf(w, "\n%s: %s", gd.Source, strings.ToUpper(string(d.Outcome)))
		if d.Policy != nil && d.Rule != "" {
			fmt.Fprintf(w, " by %s, rule %s", d.Policy, d.Rule)
		} else if d.Default {
			fmt.Fprint(w, " (no policy applies; the default decided)")
		}
		fmt.Fprintln(w)
		for _, v := range d.Violations {
			fmt.Fprintf(w, "  [%s] %s %s: %s\n", v.Mode, v.Policy.Name, v.Rule, cleanText(v.Message))
			for _, b := range v.Findings {
				fixed := "no fix"
				if len(b.Fixed) > 0 {
					fixed = "fixed in " + strings.Join(b.Fixed, ", ")
				}
				fmt.Fprintf(w, "    %-8s %s %s %s, %s\n", b.Severity, cleanText(b.ID), cleanText(b.Package), cleanText(b.Installed), cleanText(fixed))
			}
			if v.Remedy != "" {
				fmt.Fprintf(w, "    to allow: %s\n", cleanText(v.Remedy))
			}
		}
		for _, n := range d.Notes {
			fmt.Fprintf(w, "  note: %s\n", cleanText(n))
		}
	}
	verdict := "PASS"
	if res.ExitCode == gateDeny {
		verdict = "FAIL"
	}
	_, err := fmt.Fprintf(w, "\ngate %s: %s (exit %d)\n", verdict, res.Image, res.ExitCode)
	return err
}

// cleanText replaces control and bidirectional-formatting characters, so
// text from an image or an advisory cannot drive the terminal.
func cleanText(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return '?'
		}
		return r
	}, s)
}

// JUnit XML: one <testsuite>, one <testcase> per applied policy that
// allowed, per violated rule, and per blocking finding of a
// vulnerabilities rule, so that CI UIs list each failure.
type (
	junitSuite struct {
		XMLName  xml.Name    `xml:"testsuite"`
		Name     string      `xml:"name,attr"`
		Tests    int         `xml:"tests,attr"`
		Failures int         `xml:"failures,attr"`
		Errors   int         `xml:"errors,attr"`
		Skipped  int         `xml:"skipped,attr"`
		Props    []junitProp `xml:"properties>property,omitempty"`
		Cases    []junitCase `xml:"testcase"`
	}
	junitProp struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	}
	junitCase struct {
		Name      string        `xml:"name,attr"`
		ClassName string        `xml:"classname,attr"`
		Failure   *junitFailure `xml:"failure,omitempty"`
		SystemOut string        `xml:"system-out,omitempty"`
	}
	junitFailure struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	}
)

// writeGateJUnit writes res as a JUnit XML report.
func writeGateJUnit(w io.Writer, res *gateResult) error {
	s := junitSuite{Name: "customs gate " + res.Image, Props: []junitProp{
		{"image", res.Image}, {"digest", res.Digest}, {"outcome", string(res.Outcome)},
		{"findings", fmt.Sprintf("%d critical, %d high, %d medium, %d low, %d none, %d unknown",
			res.Counts.Critical, res.Counts.High, res.Counts.Medium, res.Counts.Low, res.Counts.None, res.Counts.Unknown)},
	}}
	add := func(c junitCase) {
		s.Tests++
		if c.Failure != nil {
			s.Failures++
		}
		s.Cases = append(s.Cases, c)
	}
	for _, gd := range res.Decisions {
		d := gd.Decision
		if len(d.Violations) == 0 {
			name := "allowed"
			if d.Policy != nil {
				name = d.Policy.Name + ": allowed"
			}
			add(junitCase{Name: name, ClassName: gd.Source, SystemOut: d.Message()})
			continue
		}
		for _, v := range d.Violations {
			class := gd.Source + " / " + v.Policy.Name + "." + string(v.Rule)
			var fail *junitFailure
			enforced := v.Mode == policy.Enforce
			if len(v.Findings) == 0 {
				c := junitCase{Name: v.Policy.Name + " " + string(v.Rule), ClassName: class}
				if enforced {
					fail = &junitFailure{Message: cleanText(v.Message), Type: string(v.Rule), Text: cleanText(v.Remedy)}
					c.Failure = fail
				} else {
					c.SystemOut = string(v.Mode) + ": " + cleanText(v.Message)
				}
				add(c)
				continue
			}
			for _, b := range v.Findings {
				fixed := "no fix available"
				if len(b.Fixed) > 0 {
					fixed = "fixed in " + strings.Join(b.Fixed, ", ")
				}
				msg := fmt.Sprintf("%s %s in %s %s, %s", b.Severity, b.ID, b.Package, b.Installed, fixed)
				c := junitCase{Name: cleanText(b.ID + " " + b.Package + " " + b.Installed), ClassName: class}
				if enforced {
					c.Failure = &junitFailure{Message: cleanText(msg), Type: "vulnerability", Text: cleanText(v.Message)}
				} else {
					c.SystemOut = string(v.Mode) + ": " + cleanText(msg)
				}
				add(c)
			}
		}
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(s); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// contains reports whether list holds s.
func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
