// Package policy decides whether a container image may be used: it parses
// policy documents, picks the policies that apply to an image, evaluates
// their rules (registries, tags, names, vulnerabilities with allowlists,
// signatures, Rego modules) and returns a structured, explained Decision.
//
// The package is pure: no I/O, no clock or globals of its own (the clock
// is in Config), no dependency on the scanner or the vulnerability
// database. The doors (registry pull, Kubernetes admission, the CI gate,
// the what-if view) convert what they know into an Input and enforce the
// Decision.
//
// # Using it from a door
//
//	docs, err := policy.Parse("policies.yaml", data)  // or from the store, one revision each
//	eng, err := policy.Compile(docs, policy.Config{Default: policy.Denied, Now: clock.Now})
//	cache := policy.NewCache(policy.CacheConfig{MaxEntries: 10000, AllowTTL: time.Minute, DenyTTL: 10 * time.Second})
//	img, err := policy.ParseImage("registry.corp.example/kuard/kuard-amd64:blue")
//	d, err := cache.Evaluate(ctx, eng, &policy.Input{Image: img, Digest: dgst, Project: "kuard",
//	        Scan: summary, SystemAllowlist: sys})
//	if d.Outcome == policy.Denied { refuse with d.Message() }
//
// An Engine is immutable and safe for concurrent use; build a new one with
// eng.Update(policies, cfg) when any policy changes (it reuses the compiled
// form of unchanged policies; Engine.Revision identifies the content, and is
// part of the cache key). Decisions returned by an Engine or a Cache are shared and
// must not be modified.
//
// Errors returned by Parse are *ParseError values (one per problem, joined)
// naming the file, line, field path and problem; errors returned by
// Evaluate name the bad Input field. A Rego module that fails or runs out of
// time is not an error: the decision fails closed and says why.
//
// docs/policy.md is the user-facing reference: document shape, scopes and
// their precedence, every rule, the Rego input and the decision.
package policy
