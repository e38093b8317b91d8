package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/customs-dev/customs/internal/apperr"
	"github.com/customs-dev/customs/internal/policy"
)

// newPolicyTestCmd is `customs policy test`: policies evaluated on mock
// inputs, fully offline, as `opa eval` is used against an image review.
func newPolicyTestCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "test POLICY-FILE... --input FILE...",
		Short: "Evaluate policy files on mock inputs, offline (no server)",
		Long: `Compile the policies of the given files (YAML, several documents per file) and
evaluate each input against them, as the server would, without a server or a
database. An input file holds one input object or a JSON array of them (the
input document is described in docs/policy.md: image, environment, namespace,
project, scan, signatures).

Prints one decision per input (--format text, or json for the structured
decisions). Exit codes: 0 every input allowed (or only warned), 1 an input was
denied, 2 a policy or input is invalid.`,
		Args: cobra.MinimumNArgs(1),
	}
	var inputs []string
	cmd.Flags().StringArrayVarP(&inputs, "input", "i", nil, "input JSON file (repeatable)")
	format := cmd.Flags().String("format", "text", "output format: text or json")
	def := cmd.Flags().String("default", string(policy.Denied), "outcome for an input no policy matches: denied or allowed")
	regoTimeout := cmd.Flags().Duration("rego-timeout", 0, "time limit of each Rego evaluation (default: the engine's)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		fail := func(err error) error { return &exitError{code: 2, err: err} }
		if len(inputs) == 0 {
			return fail(apperr.Errorf(apperr.EINVALID, "give at least one --input FILE"))
		}
		if *format != "text" && *format != "json" {
			return fail(apperr.Errorf(apperr.EINVALID, "--format %q is not text or json", *format))
		}
		var ps []*policy.Policy
		for _, f := range args {
			data, err := os.ReadFile(f)
			if err != nil {
				return fail(err)
			}
			p, err := policy.Parse(f, data)
			if err != nil {
				return fail(err)
			}
			ps = append(ps, p...)
		}
		cfg := policy.Config{Default: policy.Outcome(*def), RegoTimeout: *regoTimeout}
		if err := cfg.Validate(); err != nil {
			return fail(err)
		}
		eng, err := policy.Compile(ps, cfg)
		if err != nil {
			return fail(err)
		}
		type result struct {
			Input    string           `json:"input"`
			Decision *policy.Decision `json:"decision"`
		}
		var results []result
		denied := 0
		for _, f := range inputs {
			ins, err := readPolicyInputs(f)
			if err != nil {
				return fail(err)
			}
			for i, in := range ins {
				name := f
				if len(ins) > 1 {
					name = fmt.Sprintf("%s[%d]", f, i)
				}
				d, err := eng.Evaluate(cmd.Context(), in)
				if err != nil {
					return fail(fmt.Errorf("%s: %w", name, err))
				}
				if !d.Allowed() {
					denied++
				}
				results = append(results, result{Input: name, Decision: d})
			}
		}
		out := cmd.OutOrStdout()
		if *format == "json" {
			if err := writeJSON(out, results); err != nil {
				return fail(err)
			}
		} else {
			for _, r := range results {
				fmt.Fprintf(out, "%s: %s %s\n", r.Input, r.Decision.Outcome, r.Decision.Image)
				if msg := r.Decision.Message(); msg != "" {
					fmt.Fprintf(out, "  %s\n", msg)
				}
			}
		}
		if denied > 0 {
			return &exitError{code: 1, err: fmt.Errorf("%d of %d input(s) denied", denied, len(results))}
		}
		return nil
	}
	return cmd
}

// readPolicyInputs reads one input object or a JSON array of them.
func readPolicyInputs(file string) ([]*policy.Input, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var raws []json.RawMessage
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '[' {
		if err := json.Unmarshal(t, &raws); err != nil {
			return nil, fmt.Errorf("%s: %v", file, err)
		}
	} else {
		raws = []json.RawMessage{data}
	}
	ins := make([]*policy.Input, 0, len(raws))
	for i, r := range raws {
		in, err := policy.ParseInput(r)
		if err != nil {
			if len(raws) > 1 {
				return nil, fmt.Errorf("%s[%d]: %w", file, i, err)
			}
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		ins = append(ins, in)
	}
	return ins, nil
}
