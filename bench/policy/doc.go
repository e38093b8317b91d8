// Package policybench measures the policy engine (internal/policy) with
// `go test -bench . ./bench/policy`: built-in rules evaluated warm, the
// same decisions served from the decision cache, and the same rules
// written in Rego and evaluated by OPA through the engine, side by side.
// results.md holds the last run and the ratios.
package policybench
