package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/customs-dev/customs/internal/api"
	"github.com/customs-dev/customs/internal/apperr"
)

// newPolicyEvalCmd is `customs policy eval`: the server decides an image
// as a door would (the what-if view), with the stored policies and
// optional policy files.
func newPolicyEvalCmd(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eval --image REF [--environment E] [--namespace N] [--project P] [--policy FILE]... [--door registry|runtime] [--format text|json]",
		Short: "Ask the server how a door would decide an image (what-if)",
		Long: `Asks the server to decide an image as a door would: the registry's pull door
(project policies; the default without --environment or --namespace) or where
images run (every policy; with --environment or --namespace, or --door runtime).
An image of the server (REF names the server's host) has its tag resolved to a
digest and is decided with its stored scan. --policy files are evaluated with
the stored policies, replacing stored policies of the same name; nothing is
stored.

Exit codes, as customs policy test: 0 allowed (or only warned), 1 denied,
2 error.`,
		Args: cobra.NoArgs,
	}
	var req api.EvaluateRequest
	var files []string
	cmd.Flags().StringVar(&req.Image, "image", "", "the image reference to decide (required)")
	cmd.Flags().StringVar(&req.Environment, "environment", "", "the environment the image would run in")
	cmd.Flags().StringVar(&req.Namespace, "namespace", "", "the Kubernetes namespace the image would run in")
	cmd.Flags().StringVar(&req.Project, "project", "", "the customs project (default: a customs image's first path component)")
	cmd.Flags().StringVar(&req.Door, "door", "", "registry or runtime (default: runtime with --environment or --namespace, registry otherwise)")
	cmd.Flags().StringArrayVar(&files, "policy", nil, "a policy file evaluated with the stored policies (repeatable)")
	format := cmd.Flags().String("format", "text", "output format: text or json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		fail := func(err error) error { return &exitError{code: 2, err: err} }
		if req.Image == "" {
			return fail(apperr.Errorf(apperr.EINVALID, "--image is required"))
		}
		if *format != "text" && *format != "json" {
			return fail(apperr.Errorf(apperr.EINVALID, "--format %q is not text or json", *format))
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return fail(err)
			}
			req.Policies = append(req.Policies, string(data))
		}
		c, err := cf.client()
		if err != nil {
			return fail(err)
		}
		res, err := c.Evaluate(cmd.Context(), req)
		if err != nil {
			return fail(err)
		}
		out := cmd.OutOrStdout()
		if *format == "json" {
			if err := writeJSON(out, res); err != nil {
				return fail(err)
			}
		} else {
			d := res.Decision
			fmt.Fprintf(out, "%s: %s (%s door)\n", d.Image, d.Outcome, res.Door)
			if res.Input.Digest != "" {
				fmt.Fprintf(out, "  digest: %s\n", res.Input.Digest)
			}
			if res.Input.Project != "" {
				fmt.Fprintf(out, "  project: %s\n", res.Input.Project)
			}
			switch s := res.Input.Scan; {
			case s == nil:
				fmt.Fprintf(out, "  scan: none\n")
			default:
				c := s.Counts()
				fmt.Fprintf(out, "  scan: %s (critical %d, high %d, medium %d, low %d, unknown %d)\n", s.Status, c.Critical, c.High, c.Medium, c.Low, c.Unknown)
			}
			for _, p := range d.Policies {
				fmt.Fprintf(out, "  applied: %s\n", p)
			}
			if res.Message != "" {
				fmt.Fprintf(out, "  %s\n", res.Message)
			}
		}
		if !res.Decision.Allowed() {
			return &exitError{code: 1}
		}
		return nil
	}
	return cmd
}
