package admission

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
)

// DefaultEnvironmentLabel is the namespace label that names a namespace's
// environment.
const DefaultEnvironmentLabel = "customs.dev/environment"

// NamespaceLabeler reads a namespace's labels from the cluster (package
// kube implements it with cluster credentials).
type NamespaceLabeler interface {
	NamespaceLabels(ctx context.Context, namespace string) (map[string]string, error)
}

// Environments maps namespaces to environments: a namespace's label (when
// a labeler is configured and the label is set) names it; otherwise the
// mapping of environment names to namespace globs decides, exact names
// before globs, then the glob with the most literal characters, then the
// environment name in alphabetical order. A namespace matched by nothing
// has no environment ("").
type Environments struct {
	label   string
	labeler NamespaceLabeler
	rules   []envRule // ordered: exact first, then by specificity
}

type envRule struct {
	glob, env string
	literal   int  // literal characters
	exact     bool // no wildcard
}

// NewEnvironments checks the mapping (environment -> namespace globs, '*'
// and '?' as in path.Match) and returns the Environments; label "" means
// DefaultEnvironmentLabel, labeler nil means labels are not read.
func NewEnvironments(mapping map[string][]string, label string, labeler NamespaceLabeler) (*Environments, error) {
	if label == "" {
		label = DefaultEnvironmentLabel
	}
	e := &Environments{label: label, labeler: labeler}
	seen := map[string]string{}
	for env, globs := range mapping {
		if env == "" {
			return nil, fmt.Errorf("environments: an environment name is empty")
		}
		if len(globs) == 0 {
			return nil, fmt.Errorf("environments.%s: lists no namespaces", env)
		}
		for _, g := range globs {
			if err := checkNamespaceGlob(g); err != nil {
				return nil, fmt.Errorf("environments.%s: %v", env, err)
			}
			if other, dup := seen[g]; dup {
				return nil, fmt.Errorf("environments: namespace %q is mapped to both %q and %q", g, other, env)
			}
			seen[g] = env
			lit := len(g) - strings.Count(g, "*") - strings.Count(g, "?")
			e.rules = append(e.rules, envRule{glob: g, env: env, literal: lit, exact: !strings.ContainsAny(g, "*?[")})
		}
	}
	sort.Slice(e.rules, func(i, j int) bool {
		a, b := e.rules[i], e.rules[j]
		if a.exact != b.exact {
			return a.exact
		}
		if a.literal != b.literal {
			return a.literal > b.literal
		}
		if a.env != b.env {
			return a.env < b.env
		}
		return a.glob < b.glob
	})
	return e, nil
}

// checkNamespaceGlob accepts a namespace name or a path.Match pattern over
// one.
func checkNamespaceGlob(g string) error {
	if g == "" || len(g) > 63*2 {
		return fmt.Errorf("%q is not a namespace name or glob", g)
	}
	if _, err := path.Match(g, ""); err != nil {
		return fmt.Errorf("%q is not a valid glob: %v", g, err)
	}
	for _, r := range g {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '*' || r == '?' || r == '[' || r == ']' || r == '^' || r == '!') {
			return fmt.Errorf("%q holds %q, which no namespace name can hold", g, r)
		}
	}
	return nil
}

// Of returns the environment of namespace and where it came from
// ("label", "mapping" or "" when none). A labeler error is returned with
// the mapping's answer, so the caller can decide (admission logs it and
// uses the mapping).
func (e *Environments) Of(ctx context.Context, namespace string) (env, source string, err error) {
	if namespace == "" {
		return "", "", nil
	}
	if e.labeler != nil {
		labels, lerr := e.labeler.NamespaceLabels(ctx, namespace)
		if lerr == nil {
			if v := labels[e.label]; v != "" {
				return v, "label", nil
			}
		}
		err = lerr
	}
	for _, r := range e.rules {
		if r.exact && r.glob == namespace {
			return r.env, "mapping", err
		}
		if !r.exact {
			if ok, _ := path.Match(r.glob, namespace); ok {
				return r.env, "mapping", err
			}
		}
	}
	return "", "", err
}

// Exemptions are the namespaces admission does not check.
type Exemptions struct{ globs []string }

// NewExemptions checks the namespace names and globs.
func NewExemptions(globs []string) (*Exemptions, error) {
	for _, g := range globs {
		if err := checkNamespaceGlob(g); err != nil {
			return nil, fmt.Errorf("exemptNamespaces: %v", err)
		}
	}
	return &Exemptions{globs: append([]string(nil), globs...)}, nil
}

// Exempt reports whether namespace is exempt, and the entry that exempts
// it.
func (x *Exemptions) Exempt(namespace string) (bool, string) {
	if namespace == "" {
		return false, ""
	}
	for _, g := range x.globs {
		if g == namespace {
			return true, g
		}
		if ok, _ := path.Match(g, namespace); ok {
			return true, g
		}
	}
	return false, ""
}
